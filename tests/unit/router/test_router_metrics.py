"""Request counts and latencies kept off prometheus_client on the hot path, exposed at scrape time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from kingpost.v1 import inference_pb2
from kingpost_router.metrics import RequestStats
from kingpost_router.request_kind import environment_label

ECHO = {"model": "mdl_1", "model_name": "echo", "deployment": "dep_1", "environment": "production"}


def test_requests_by_code_and_the_latency_histograms_are_scraped_per_model_deployment_and_environment() -> None:
    stats = RequestStats(buckets=(0.001, 0.01))
    registry = CollectorRegistry()
    registry.register(stats)
    echo = stats.series("mdl_1", "echo", "dep_1", "production")
    for code, seconds in (("OK", 0.0005), ("OK", 0.001), ("OK", 0.005), ("RESOURCE_EXHAUSTED", 3.0)):
        echo.waited(0.0, None)
        echo.answered(code, seconds, seconds / 2)
    stats.series("", "", "", "").answered("NOT_FOUND", 0.0001, -1.0)  # an unknown model: no runner call
    sample = registry.get_sample_value
    assert sample("kingpost_router_requests_total", {**ECHO, "code": "OK"}) == 3
    assert sample("kingpost_router_requests_total", {**ECHO, "code": "RESOURCE_EXHAUSTED"}) == 1
    unresolved = {"model": "", "model_name": "", "deployment": "", "environment": ""}
    assert sample("kingpost_router_requests_total", {**unresolved, "code": "NOT_FOUND"}) == 1
    # Buckets are cumulative and `le` is inclusive, as Prometheus defines them.
    assert sample("kingpost_router_request_seconds_bucket", {**ECHO, "le": "0.001"}) == 2
    assert sample("kingpost_router_request_seconds_bucket", {**ECHO, "le": "0.01"}) == 3
    assert sample("kingpost_router_request_seconds_bucket", {**ECHO, "le": "+Inf"}) == 4
    assert sample("kingpost_router_request_seconds_count", ECHO) == 4
    assert abs(sample("kingpost_router_request_seconds_sum", ECHO) - 3.0065) < 1e-9
    assert sample("kingpost_router_model_seconds_count", ECHO) == 4
    assert sample("kingpost_router_model_seconds_count", unresolved) is None  # it never reached a runner
    assert sample("kingpost_router_queue_wait_seconds_bucket", {**ECHO, "le": "0.001"}) == 4
    assert sample("kingpost_router_cold_start_wait_seconds_count", ECHO) is None


def test_a_cold_start_wait_is_counted_as_queue_wait_too_and_deleted_deployments_are_forgotten() -> None:
    stats = RequestStats(buckets=(1.0, 10.0))
    registry = CollectorRegistry()
    registry.register(stats)
    stats.series("mdl_1", "echo", "dep_1", "production").waited(4.0, 4.0)
    stats.series("mdl_1", "echo", "dep_2", "").waited(0.5, None)
    sample = registry.get_sample_value
    assert sample("kingpost_router_cold_start_wait_seconds_bucket", {**ECHO, "le": "10.0"}) == 1
    assert sample("kingpost_router_queue_wait_seconds_bucket", {**ECHO, "le": "1.0"}) == 0
    stats.retain({"dep_2"})
    assert sample("kingpost_router_queue_wait_seconds_count", ECHO) is None
    assert sample("kingpost_router_queue_wait_seconds_count", {**ECHO, "deployment": "dep_2", "environment": ""}) == 1


def test_in_flight_is_read_from_the_router_at_scrape_time_with_the_deployments_labels() -> None:
    stats = RequestStats()
    registry = CollectorRegistry()
    registry.register(stats)
    stats.in_flight = lambda: {"dep_1": 3}
    stats.labels_of = lambda d: ("mdl_1", "echo") if d == "dep_1" else None
    labels = {"model": "mdl_1", "model_name": "echo", "deployment": "dep_1"}
    assert registry.get_sample_value("kingpost_router_in_flight", labels) == 3


def test_the_environment_label_is_the_one_the_request_named() -> None:
    def label(**fields: str) -> str:
        return environment_label(inference_pb2.PredictRequest(model_id="echo", **fields))

    assert label() == "production"
    assert label(target="production") == "production"
    assert label(target="development") == "development"
    assert label(environment="staging") == "staging"
    assert label(deployment_id="dep_1") == ""

"""A service's Prometheus metrics over OTLP (kingpost.otlp_metrics): a prometheus_client registry as the
services declare theirs, exported by the bridge to a real OTLP/gRPC receiver (tests/fixtures/otlp.py)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kingpost import otlp_metrics
from tests.fixtures.otlp import Collector, collector  # noqa: F401


def points(metric: object) -> dict[tuple[tuple[str, str], ...], object]:
    data = getattr(metric, metric.WhichOneof("data"))  # type: ignore[attr-defined]
    return {tuple(sorted((a.key, a.value.string_value) for a in p.attributes)): p for p in data.data_points}


def test_a_counter_a_gauge_and_a_histogram_arrive_with_their_labels(collector: tuple[Collector, int]) -> None:
    servicer, port = collector
    registry = CollectorRegistry()
    requests = Counter("kingpost_test_requests", "requests", ["model", "code"], registry=registry)
    in_flight = Gauge("kingpost_test_in_flight", "in flight", ["model"], registry=registry)
    seconds = Histogram("kingpost_test_seconds", "latency", ["model"], buckets=(0.1, 1.0), registry=registry)
    requests.labels("m1", "OK").inc(3)
    requests.labels("m1", "NOT_FOUND").inc()
    in_flight.labels("m1").set(2)
    for value in (0.05, 0.5, 5.0):
        seconds.labels("m1").observe(value)
    bridge = otlp_metrics.start("tester", registry, {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_METRIC_EXPORT_INTERVAL": "100"})
    assert bridge is not None
    try:
        got = servicer.metrics_receiver.wait_for("kingpost-tester", "kingpost_test_requests")
        sums = points(got)
        assert got.sum.is_monotonic and got.sum.aggregation_temporality == 2  # CUMULATIVE
        assert sums[(("code", "OK"), ("model", "m1"))].as_double == 3
        assert sums[(("code", "NOT_FOUND"), ("model", "m1"))].as_double == 1
        requests.labels("m1", "OK").inc()  # counted since: the next export says 4
        servicer.metrics_receiver.wait_for(
            "kingpost-tester", "kingpost_test_requests",
            lambda m: points(m)[(("code", "OK"), ("model", "m1"))].as_double == 4)
        gauge = servicer.metrics_receiver.wait_for("kingpost-tester", "kingpost_test_in_flight")
        assert points(gauge)[(("model", "m1"),)].as_double == 2
        histogram = points(servicer.metrics_receiver.wait_for("kingpost-tester", "kingpost_test_seconds"))
        h = histogram[(("model", "m1"),)]
        assert (h.count, h.sum, list(h.explicit_bounds), list(h.bucket_counts)) == (3, 5.55, [0.1, 1.0], [1, 1, 1])
    finally:
        bridge.stop()


def test_off_without_an_endpoint_and_a_bad_interval_is_named() -> None:
    assert otlp_metrics.start("tester", CollectorRegistry(), {}) is None
    with pytest.raises(ValueError, match="OTEL_METRIC_EXPORT_INTERVAL = 'soon': must be a number of milliseconds"):
        otlp_metrics.start("tester", CollectorRegistry(), {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
                                                           "OTEL_METRIC_EXPORT_INTERVAL": "soon"})

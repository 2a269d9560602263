"""Request counts and latencies kept off prometheus_client on the hot path, exposed at scrape time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from kingpost_router.metrics import RequestStats


def test_requests_by_code_and_the_latency_histogram_are_scraped_as_prometheus_samples() -> None:
    stats = RequestStats(buckets=(0.001, 0.01))
    registry = CollectorRegistry()
    registry.register(stats)
    for code, seconds in (("OK", 0.0005), ("OK", 0.001), ("OK", 0.005), ("NOT_FOUND", 3.0)):
        stats.observe(code, seconds)
    sample = registry.get_sample_value
    assert sample("kingpost_router_requests_total", {"code": "OK"}) == 3
    assert sample("kingpost_router_requests_total", {"code": "NOT_FOUND"}) == 1
    # Buckets are cumulative and `le` is inclusive, as Prometheus defines them.
    assert sample("kingpost_router_request_seconds_bucket", {"le": "0.001"}) == 2
    assert sample("kingpost_router_request_seconds_bucket", {"le": "0.01"}) == 3
    assert sample("kingpost_router_request_seconds_bucket", {"le": "+Inf"}) == 4
    assert sample("kingpost_router_request_seconds_count") == 4
    assert abs(sample("kingpost_router_request_seconds_sum") - 3.0065) < 1e-9

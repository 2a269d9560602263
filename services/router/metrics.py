"""The router's Prometheus metrics, all in one place."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "kingpost_router_requests_total", "Predict requests answered, by gRPC status code.", ["code"]
)
REQUEST_SECONDS = Histogram(
    "kingpost_router_request_seconds",
    "Predict latency through the router, first byte in to last byte out.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
# Read at scrape time from the router's own counters (set_function), so the hot path pays nothing.
IN_FLIGHT = Gauge("kingpost_router_in_flight", "Predict requests in flight through this router.")
RETRIES = Counter(
    "kingpost_router_retries_total",
    "Requests sent to a second replica because the first could not be reached.",
)

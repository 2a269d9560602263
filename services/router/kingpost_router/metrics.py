"""The router's Prometheus metrics, all in one place.

Per-request figures (count by code, latency histogram) are kept in plain ints and floats by
`RequestStats.observe` — a bisect and three additions, no lock — and become Prometheus samples
only when scraped (a custom collector), so the hot path does no prometheus_client work.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class RequestStats(Collector):
    """`kingpost_router_requests_total{code}` and `kingpost_router_request_seconds`."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self._bounds = buckets
        self._counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self._sum = 0.0
        self.codes: dict[str, int] = {}

    def observe(self, code: str, seconds: float) -> None:
        self._counts[bisect_left(self._bounds, seconds)] += 1
        self._sum += seconds
        codes = self.codes
        codes[code] = codes.get(code, 0) + 1

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("kingpost_router_requests",
                                       "Predict requests answered, by gRPC status code.", labels=["code"])
        for code, count in sorted(self.codes.items()):
            requests.add_metric([code], count)
        yield requests
        cumulative, buckets = 0, []
        for bound, count in zip((*self._bounds, float("inf")), self._counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), cumulative))
        yield HistogramMetricFamily(
            "kingpost_router_request_seconds",
            "Predict latency through the router, first byte in to last byte out.",
            buckets=buckets, sum_value=self._sum)


REQUESTS = RequestStats()
REGISTRY.register(REQUESTS)
# Read at scrape time from the router's own counters (set_function), so the hot path pays nothing.
IN_FLIGHT = Gauge("kingpost_router_in_flight", "Predict requests in flight through this router.")
RETRIES = Counter(
    "kingpost_router_retries_total",
    "Requests sent to a second replica because the first could not be reached.",
)
QUEUED = Gauge(
    "kingpost_router_queued",
    "Predict requests waiting for a free replica slot (or a first ready replica) in this router.",
)

"""The router's Prometheus metrics, all in one place.

Per-request figures are kept per (model, deployment, environment) in plain ints and floats — a
dict lookup, a bisect and a few additions per request, no lock — and become Prometheus samples only
when scraped (a custom collector), so the hot path does no prometheus_client work:

    series = REQUESTS.series(model_id, model_name, deployment_id, environment)   # once per request
    series.waited(queue_seconds, cold_start_seconds)   # holding a replica slot took this long
    series.answered(code, seconds, model_seconds)      # the request ended (model_seconds < 0: no runner call)

Labels: `model` (id), `model_name`, `deployment` (id), `environment` ("production", an environment's
name, "development", or "" when the caller named the deployment). A request that named no known model
or deployment is counted under empty labels, so that a caller cannot grow the label set.

Requests Envoy sends straight to replicas (issue 20) are added in at scrape time from what the router
last read from Envoy (envoy_poll.py): answers and end-to-end latency in the same series (their
`environment` is the deployment's own, envoy_stats.environment_of), in-flight per deployment.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import accumulate

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from kingpost_router.envoy_stats import Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
LABELS = ("model", "model_name", "deployment", "environment")
SeriesKey = tuple[str, str, str, str]


class _Histogram:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        # bisect_left: a value equal to a bound counts in that bound's bucket (`le` is inclusive).
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    def buckets(self) -> list[tuple[str, float]]:
        return _buckets(self.bounds, list(accumulate(self.counts)))


def _buckets(bounds: tuple[float, ...], cumulative: Iterable[int]) -> list[tuple[str, float]]:
    return [("+Inf" if bound == float("inf") else repr(float(bound)), count)
            for bound, count in zip((*bounds, float("inf")), cumulative, strict=True)]


class Series:
    """One (model, deployment, environment)'s figures."""

    __slots__ = ("codes", "latency", "queue", "cold_start", "model")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.codes: dict[str, int] = {}
        self.latency = _Histogram(bounds)
        self.queue = _Histogram(bounds)
        self.cold_start = _Histogram(bounds)
        self.model = _Histogram(bounds)

    def waited(self, queue_seconds: float, cold_start_seconds: float | None) -> None:
        self.queue.observe(queue_seconds)
        if cold_start_seconds is not None:
            self.cold_start.observe(cold_start_seconds)

    def counted(self, code: str) -> None:
        """A request counted by its code alone: a websocket connection, when it ends."""
        self.codes[code] = self.codes.get(code, 0) + 1

    def answered(self, code: str, seconds: float, model_seconds: float) -> None:
        codes = self.codes
        codes[code] = codes.get(code, 0) + 1
        self.latency.observe(seconds)
        if model_seconds >= 0:
            self.model.observe(model_seconds)


_HISTOGRAMS = (
    ("latency", "kingpost_router_request_seconds",
     "End-to-end latency: request in to last byte out through the router (errors included), or "
     "Envoy's time for the requests it sent straight to a replica."),
    ("queue", "kingpost_router_queue_wait_seconds",
     "From resolving the deployment to holding a replica slot (0 when one was free; cold starts included)."),
    ("cold_start", "kingpost_router_cold_start_wait_seconds",
     "Time held waiting for a first ready replica, for the requests that found none."),
    ("model", "kingpost_router_model_seconds",
     "Time in the runner call: from holding a replica slot to its last byte (the model's work and one hop)."),
)


class RequestStats(Collector):
    """`kingpost_router_requests_total{model,model_name,deployment,environment,code}`, the latency
    histograms above, and `kingpost_router_in_flight` per deployment."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self._bounds = buckets
        self._series: dict[SeriesKey, Series] = {}
        # Set by the router: requests in a runner call per deployment id, and the labels of a
        # deployment id (model, model_name) from its current route table.
        self.in_flight: Callable[[], Mapping[str, int]] = dict
        self.labels_of: Callable[[str], tuple[str, str] | None] = lambda _: None
        # Set by the Envoy poller: Envoy's answers per series (by code) and their latency, and its
        # requests at a replica now per deployment id.
        self.direct: Callable[[], Iterable[tuple[SeriesKey, Mapping[str, int], Histogram | None]]] = tuple
        self.direct_in_flight: Callable[[], Mapping[str, int]] = dict

    @property
    def bounds(self) -> tuple[float, ...]:
        return self._bounds

    def series(self, model: str, model_name: str, deployment: str, environment: str) -> Series:
        key = (model, model_name, deployment, environment)
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = Series(self._bounds)
        return found

    def retain(self, deployment_ids: Iterable[str]) -> None:
        """Forget the series of deployments no longer in the route table (deleted ones); the empty
        labels of unresolved requests stay."""
        keep = set(deployment_ids) | {""}
        for key in [k for k in self._series if k[2] not in keep]:
            del self._series[key]

    def collect(self) -> Iterator[Metric]:
        series = sorted(self._series.items())
        codes = {key: dict(s.codes) for key, s in series}
        latency = {key: (list(accumulate(s.latency.counts)), s.latency.sum)
                   for key, s in series if any(s.latency.counts)}
        for key, answered, histogram in self.direct():
            merged = codes.setdefault(key, {})
            for code, count in answered.items():
                merged[code] = merged.get(code, 0) + count
            if histogram is not None and histogram.count:
                h = histogram.onto(self._bounds)
                cumulative, total = latency.get(key, ([0] * len(h.cumulative), 0.0))
                latency[key] = ([a + b for a, b in zip(cumulative, h.cumulative, strict=True)], total + h.sum)
        requests = CounterMetricFamily("kingpost_router_requests",
                                       "Predict requests answered (and websocket connections ended), by gRPC "
                                       "status code.", labels=[*LABELS, "code"])
        for key, by_code in sorted(codes.items()):
            for code, count in sorted(by_code.items()):
                requests.add_metric([*key, code], count)
        yield requests
        for attribute, name, documentation in _HISTOGRAMS:
            family = HistogramMetricFamily(name, documentation, labels=LABELS)
            if attribute == "latency":  # the router's and Envoy's together
                for key, (cumulative, total) in sorted(latency.items()):
                    family.add_metric(list(key), _buckets(self._bounds, cumulative), total)
            else:
                for key, s in series:
                    histogram: _Histogram = getattr(s, attribute)
                    if any(histogram.counts):
                        family.add_metric(list(key), histogram.buckets(), histogram.sum)
            yield family
        in_flight = GaugeMetricFamily("kingpost_router_in_flight",
                                      "Requests at a replica now (in a runner call, or Envoy's), per deployment.",
                                      labels=["model", "model_name", "deployment"])
        counts = dict(self.in_flight())
        for deployment_id, count in self.direct_in_flight().items():
            counts[deployment_id] = counts.get(deployment_id, 0) + count
        for deployment_id, count in sorted(counts.items()):
            model, model_name = self.labels_of(deployment_id) or ("", "")
            in_flight.add_metric([model, model_name, deployment_id], count)
        yield in_flight


class AsyncStats(Collector):
    """The async queue per deployment (labels `model`, `model_name`, `deployment`):
    `kingpost_router_async_queued` and `…_async_in_progress` (gauges, as GetAsyncQueueStatus counts
    them: queued as this router's backlog loop counted it last second; in progress: taken by a worker
    here, in a model call or waiting for a replica slot), `…_async_queue_seconds` (histogram: created to
    its model call's start), `…_async_requests_total{status}` (terminal statuses this router set) and
    `…_async_webhooks_total{outcome}` (`delivered` or `failed`, after every try)."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self._bounds = buckets
        self.waits: dict[str, _Histogram] = {}
        self.statuses: dict[tuple[str, str], int] = {}
        self.webhooks: dict[tuple[str, str], int] = {}
        # Set by the router: deployment id → (queued, in progress).
        self.queues: Callable[[], Mapping[str, tuple[int, int]]] = dict

    def started(self, deployment_id: str, queued_seconds: float) -> None:
        wait = self.waits.get(deployment_id)
        if wait is None:
            wait = self.waits[deployment_id] = _Histogram(self._bounds)
        wait.observe(max(0.0, queued_seconds))

    def settled(self, deployment_id: str, status: str) -> None:
        self.statuses[deployment_id, status] = self.statuses.get((deployment_id, status), 0) + 1

    def webhook(self, deployment_id: str, delivered: bool) -> None:
        key = (deployment_id, "delivered" if delivered else "failed")
        self.webhooks[key] = self.webhooks.get(key, 0) + 1

    def retain(self, deployment_ids: Iterable[str]) -> None:
        keep = set(deployment_ids)
        for table in (self.waits, self.statuses, self.webhooks):
            for key in [k for k in table if (k if isinstance(k, str) else k[0]) not in keep]:
                del table[key]

    def collect(self) -> Iterator[Metric]:
        def labels(deployment_id: str) -> list[str]:
            return [*(REQUESTS.labels_of(deployment_id) or ("", "")), deployment_id]

        names = ["model", "model_name", "deployment"]
        counts = sorted(self.queues().items())
        for index, name, documentation in ((0, "queued", "Async requests waiting in the queue."),
                                           (1, "in_progress", "Async requests taken by a worker (in a model call or waiting for a slot).")):
            gauge = GaugeMetricFamily(f"kingpost_router_async_{name}", documentation, labels=names)
            for deployment_id, values in counts:
                gauge.add_metric(labels(deployment_id), values[index])
            yield gauge
        waits = HistogramMetricFamily("kingpost_router_async_queue_seconds",
                                      "Async requests' time from created to their model call's start.", labels=names)
        for deployment_id, histogram in sorted(self.waits.items()):
            waits.add_metric(labels(deployment_id), histogram.buckets(), histogram.sum)
        yield waits
        for name, table, label, documentation in (
                ("requests", self.statuses, "status", "Async requests settled, by final status."),
                ("webhooks", self.webhooks, "outcome", "Webhooks delivered or given up, after every try.")):
            family = CounterMetricFamily(f"kingpost_router_async_{name}", documentation, labels=[*names, label])
            for (deployment_id, value), count in sorted(table.items()):
                family.add_metric([*labels(deployment_id), value], count)
            yield family


REQUESTS = RequestStats()
REGISTRY.register(REQUESTS)
ASYNC = AsyncStats()
REGISTRY.register(ASYNC)


def retain(deployment_ids: Iterable[str]) -> None:
    """Forget the series of deployments that left the route table."""
    REQUESTS.retain(deployment_ids)
    ASYNC.retain(deployment_ids)
RETRIES = Counter(
    "kingpost_router_retries_total",
    "Requests sent to a second replica because the first could not be reached.",
)
# Read at scrape time from the router's slot queue (set_function), so the hot path pays nothing.
QUEUED = Gauge(
    "kingpost_router_queued",
    "Predict requests waiting for a free replica slot (or a first ready replica) in this router.",
)

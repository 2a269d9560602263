"""A service's Prometheus metrics over OTLP too, when OTEL_EXPORTER_OTLP_ENDPOINT is set (as its traces):
a thread reads the process's prometheus_client registry every OTEL_METRIC_EXPORT_INTERVAL
milliseconds (the standard variable; 60000 by default) and sends what it holds with OpenTelemetry's
OTLP/gRPC metric exporter (the standard OTEL_EXPORTER_OTLP_* variables apply), once more at stop.

What a family becomes (cumulative, as Prometheus counts):

    counter     a monotonic Sum named as the family (`kingpost_router_requests`, without `_total`)
    gauge       a Gauge            (and an `unknown` family)
    histogram   a Histogram: its buckets, count and sum (no min or max: Prometheus keeps none)
    summary, info, stateset        not sent

Each sample's labels are its data point's attributes; the resource names the service
(`service.name` = `kingpost-<service>`, as its spans). `start` is what `kingpost.service.serve`
calls; `to_metrics_data` is the conversion alone.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

INTERVAL_ENV = "OTEL_METRIC_EXPORT_INTERVAL"
DEFAULT_INTERVAL_MS = 60_000


def to_metrics_data(families: Iterable[Any], service: str, start_ns: int, now_ns: int) -> Any:
    """prometheus_client's collected families as the OTLP exporter's MetricsData."""
    from opentelemetry.sdk.metrics.export import (
        AggregationTemporality,
        Gauge,
        Histogram,
        HistogramDataPoint,
        Metric,
        MetricsData,
        NumberDataPoint,
        ResourceMetrics,
        ScopeMetrics,
        Sum,
    )
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    cumulative = AggregationTemporality.CUMULATIVE
    metrics = []
    for family in families:
        unit = family.unit or None
        if family.type == "counter":
            points = [NumberDataPoint(dict(s.labels), _started(family, s.labels, start_ns), now_ns, s.value)
                      for s in family.samples if s.name == family.name + "_total"]
            data: Any = Sum(points, cumulative, is_monotonic=True)
        elif family.type in ("gauge", "unknown"):
            data = Gauge([NumberDataPoint(dict(s.labels), start_ns, now_ns, s.value) for s in family.samples
                          if s.name == family.name])
        elif family.type == "histogram":
            data = Histogram(_histogram_points(family, start_ns, now_ns, HistogramDataPoint), cumulative)
        else:
            continue
        if data.data_points:
            metrics.append(Metric(family.name, family.documentation, unit, data))
    scope = ScopeMetrics(InstrumentationScope("kingpost.otlp_metrics"), metrics, "")
    resource = Resource.create({"service.name": f"kingpost-{service}"})
    return MetricsData([ResourceMetrics(resource, [scope], "")])


def _started(family: Any, labels: dict[str, str], default_ns: int) -> int:
    """When a series began: its `_created` sample (seconds), else when the bridge began."""
    for s in family.samples:
        if s.name == family.name + "_created" and s.labels == labels:
            return int(s.value * 1e9)
    return default_ns


def _histogram_points(family: Any, start_ns: int, now_ns: int, point: Any) -> list[Any]:
    series: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for s in family.samples:
        labels = {k: v for k, v in s.labels.items() if k != "le"}
        one = series.setdefault(tuple(sorted(labels.items())), {"labels": labels, "buckets": [], "count": 0,
                                                                  "sum": 0.0, "start": start_ns})
        if s.name == family.name + "_bucket":
            one["buckets"].append((float(s.labels["le"]), s.value))
        elif s.name == family.name + "_count":
            one["count"] = int(s.value)
        elif s.name == family.name + "_sum":
            one["sum"] = s.value
        elif s.name == family.name + "_created":
            one["start"] = int(s.value * 1e9)
    points = []
    for one in series.values():
        buckets = sorted(one["buckets"])
        bounds = [le for le, _ in buckets if le != float("inf")]
        cumulative = [int(v) for _, v in buckets]
        counts = [c - (cumulative[i - 1] if i else 0) for i, c in enumerate(cumulative)]
        points.append(point(one["labels"], one["start"], now_ns, one["count"], one["sum"], counts, bounds,
                            None, None))
    return points


class Bridge:
    """The thread that exports the registry every `interval` seconds until `stop`."""

    def __init__(self, service: str, exporter: Any, registry: Any, interval: float) -> None:
        self.service, self.exporter, self.registry, self.interval = service, exporter, registry, interval
        self.start_ns = time.time_ns()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="otlp-metrics", daemon=True)

    def export_now(self) -> None:
        try:
            data = to_metrics_data(self.registry.collect(), self.service, self.start_ns, time.time_ns())
            self.exporter.export(data)
        except Exception:  # the next interval tries again; the service goes on
            log.warning("exporting metrics over OTLP failed", exc_info=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.export_now()

    def start(self) -> Bridge:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 10)
        self.export_now()
        self.exporter.shutdown()


def start(service: str, registry: Any = None, env: dict[str, str] | None = None) -> Bridge | None:
    """Export `registry` (the process's default one) over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set;
    None otherwise. A bad OTEL_METRIC_EXPORT_INTERVAL raises ValueError naming it."""
    env = dict(os.environ) if env is None else env
    if not env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return None
    raw = env.get(INTERVAL_ENV, "").strip() or str(DEFAULT_INTERVAL_MS)
    try:
        interval_ms = float(raw)
    except ValueError:
        interval_ms = 0
    if not interval_ms > 0:
        raise ValueError(f"{INTERVAL_ENV} = {raw!r}: must be a number of milliseconds above 0")
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from prometheus_client import REGISTRY

    endpoint = env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or env["OTEL_EXPORTER_OTLP_ENDPOINT"]
    return Bridge(service, OTLPMetricExporter(endpoint=endpoint), registry or REGISTRY, interval_ms / 1000).start()

"""The scheduler's Prometheus metrics, all declared here."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

EVENTS = Counter("kingpost_scheduler_events_total", "NATS events handled", ["kind", "outcome"])
AGENT_CALLS = Counter("kingpost_scheduler_agent_calls_total", "StartReplica/StopReplica calls to agents",
                      ["method", "outcome"])
RECONCILE_SECONDS = Histogram("kingpost_scheduler_reconcile_seconds",
                              "Time to plan and apply one reconcile pass")
ROUTE_TABLE_VERSION = Gauge("kingpost_scheduler_route_table_version", "Version of the current route table")
ROUTE_TABLE_BUILDS = Counter(
    "kingpost_scheduler_route_table_builds",
    "Route tables built (after a change to what they show; a new version only if they differ)")
ROUTE_WATCHERS = Gauge("kingpost_scheduler_route_watchers", "Open WatchRoutes streams")
REPLICAS = Gauge("kingpost_scheduler_replicas", "Replicas by state", ["state"])
DEPLOYMENTS = Gauge("kingpost_scheduler_deployments", "Live deployments by status", ["status"])
COLD_START_SECONDS = Histogram(
    "kingpost_scheduler_cold_start_seconds",
    "A replica's placement to READY (total) and to the agent's STARTING (schedule).", ["phase"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
)


class DeploymentReplicas(Collector):
    """Per deployment, labelled by model, deployment and environment, as of the last reconcile pass:
    `kingpost_scheduler_desired_replicas`, `kingpost_scheduler_ready_replicas`, and
    `kingpost_scheduler_cold_starts_total` (replicas that became READY from a start, since this
    scheduler started). A deleted deployment's series go with it."""

    LABELS = ("model", "deployment", "environment")

    def __init__(self) -> None:
        self._rows: dict[str, tuple[tuple[str, str, str], int, int]] = {}
        self._cold_starts: dict[str, int] = {}

    def set(self, rows: Iterable[tuple[str, str, str, int, int]]) -> None:
        """(model_id, deployment_id, environment, desired, ready) for every live deployment."""
        self._rows = {d: ((m, d, e), desired, ready) for m, d, e, desired, ready in rows}

    def replicas(self, deployment_id: str) -> tuple[int, int]:
        """(desired, ready) as of the last reconcile pass; (0, 0) for a deployment it did not see."""
        _, desired, ready = self._rows.get(deployment_id, (None, 0, 0))
        return desired, ready

    def cold_start(self, deployment_id: str) -> None:
        self._cold_starts[deployment_id] = self._cold_starts.get(deployment_id, 0) + 1

    def collect(self) -> Iterator[Metric]:
        desired = GaugeMetricFamily("kingpost_scheduler_desired_replicas",
                                    "Replicas a deployment should have now (autoscaler and settings).",
                                    labels=self.LABELS)
        ready = GaugeMetricFamily("kingpost_scheduler_ready_replicas", "A deployment's READY replicas.",
                                  labels=self.LABELS)
        cold = CounterMetricFamily("kingpost_scheduler_cold_starts", "Replicas started until READY.",
                                   labels=self.LABELS)
        for deployment_id, (labels, want, have) in sorted(self._rows.items()):
            desired.add_metric(labels, want)
            ready.add_metric(labels, have)
            if deployment_id in self._cold_starts:
                cold.add_metric(labels, self._cold_starts[deployment_id])
        yield from (desired, ready, cold)


DEPLOYMENT_REPLICAS = DeploymentReplicas()
REGISTRY.register(DEPLOYMENT_REPLICAS)

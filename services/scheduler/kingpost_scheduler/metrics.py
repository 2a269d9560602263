"""The scheduler's Prometheus metrics, all declared here."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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

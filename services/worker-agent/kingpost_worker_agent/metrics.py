"""The worker agent's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REPLICAS = Gauge("kingpost_worker_agent_replicas", "Replicas on this node, by state.", ["state"])

# A cold start's phases: fetch (artifact on disk), process (runner started until its port answers),
# load (port answers until Ready says the model has loaded).
COLD_START_SECONDS = Histogram(
    "kingpost_worker_agent_cold_start_seconds", "Time to a ready replica, by phase.", ["phase"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
)

REPLICA_EXITS = Counter(
    "kingpost_worker_agent_replica_exits_total", "Runner processes that ended, by outcome.", ["outcome"]
)

# 1 for what this agent found at start: users "per-replica" (each replica its own uid) or "agent" (the
# agent's user); memory "cgroup2", "cgroup1", "rlimit" (RLIMIT_DATA) or "off". docs/isolation.md.
CONTAINMENT = Gauge(
    "kingpost_worker_agent_containment", "How this node contains its runners.", ["users", "memory"]
)

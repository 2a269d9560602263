"""Concurrency per deployment per second, summed across routers: the samples `decide` averages.

Routers report every second; a second in which no router reported a deployment counts as zero,
so a deployment whose traffic stopped (and whose routers stopped mentioning it) still scales down.
"""

from __future__ import annotations

import math
from collections import defaultdict

from kingpost_autoscaler.decision import Sample


class ConcurrencyWindow:
    def __init__(self, horizon_seconds: float) -> None:
        self._horizon = horizon_seconds
        # deployment → second → router → concurrency (the router's last report in that second)
        self._buckets: dict[str, dict[int, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
        self._first_seen: dict[str, float] = {}

    def record(self, router_id: str, deployment_id: str, concurrency: float, at: float) -> None:
        self._buckets[deployment_id][math.floor(at)][router_id] = concurrency
        self._first_seen.setdefault(deployment_id, at)

    def track(self, deployment_id: str, at: float) -> None:
        """Count a known deployment's silent seconds from `at` on, as zeros, so that it can scale down
        (and to zero) without ever having had traffic."""
        self._buckets[deployment_id]  # noqa: B018 (creates the entry)
        self._first_seen.setdefault(deployment_id, at)

    def deployments(self) -> list[str]:
        return list(self._buckets)

    def forget(self, deployment_id: str) -> None:
        self._buckets.pop(deployment_id, None)
        self._first_seen.pop(deployment_id, None)

    def samples(self, deployment_id: str, now: float, window: float) -> list[Sample]:
        """One sample per whole second of the last `window` seconds (none before it was first seen)."""
        if deployment_id not in self._buckets:
            return []
        buckets = self._buckets[deployment_id]
        span = min(window, self._horizon)
        start = max(math.floor(self._first_seen[deployment_id]), math.floor(now - span) + 1)
        return [Sample(at=float(second), concurrency=sum(buckets.get(second, {}).values()))
                for second in range(start, math.floor(now) + 1)]

    def prune(self, now: float) -> None:
        oldest = math.floor(now - self._horizon)
        for buckets in self._buckets.values():
            for second in [s for s in buckets if s < oldest]:
                del buckets[second]

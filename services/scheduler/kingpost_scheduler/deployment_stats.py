"""A deployment's request rate, errors and latency percentiles over a window, from the routers' /metrics.

The scheduler scrapes each router every few seconds (router_scrape.py) and keeps the cumulative
figures per deployment, summed over routers and environments; a window is the difference between the
newest scrape and the newest one at least `window` older, as Prometheus's `increase` and
`histogram_quantile` would compute it:

    history.add(now, per_deployment(samples))
    window_stats(history.before(now - 300), history.latest(), deployment_id)  →  WindowStats

Pure: no I/O, times passed in.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

REQUESTS = "kingpost_router_requests_total"
LATENCY_BUCKET = "kingpost_router_request_seconds_bucket"


@dataclass
class Counts:
    """One deployment's cumulative figures at one scrape."""

    requests: float = 0.0
    errors: float = 0.0
    # le → cumulative count, +Inf included.
    buckets: dict[float, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Snapshot:
    at: float
    deployments: Mapping[str, Counts]


@dataclass(frozen=True)
class WindowStats:
    observed_seconds: float  # what the history covered: less than the window asked for after a start
    requests: int
    errors: int
    request_rate: float
    # None without a request in the window.
    p50: float | None
    p95: float | None
    p99: float | None


def per_deployment(samples: Iterable[tuple[str, Mapping[str, str], float]]) -> dict[str, Counts]:
    """(sample name, labels, value) of one or more routers' scrapes → Counts per deployment id."""
    out: dict[str, Counts] = {}
    for name, labels, value in samples:
        deployment = labels.get("deployment", "")
        if not deployment:
            continue
        if name == REQUESTS:
            counts = out.setdefault(deployment, Counts())
            counts.requests += value
            if labels.get("code") != "OK":
                counts.errors += value
        elif name == LATENCY_BUCKET:
            counts = out.setdefault(deployment, Counts())
            le = float(labels["le"])
            counts.buckets[le] = counts.buckets.get(le, 0.0) + value
    return out


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Prometheus's histogram_quantile over cumulative (le → count) buckets: linear within the bucket
    that holds the q-th observation; the largest finite bound when it falls in +Inf."""
    ordered = sorted(buckets.items())
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def _increase(old: float, new: float) -> float:
    return new if new < old else new - old  # a router that restarted counts from zero again


def window_stats(old: Snapshot | None, new: Snapshot, deployment_id: str) -> WindowStats:
    latest = new.deployments.get(deployment_id, Counts())
    if old is None:  # no older scrape: everything the routers counted since they started
        base, seconds = Counts(), 0.0
    else:
        base, seconds = old.deployments.get(deployment_id, Counts()), new.at - old.at
    requests = _increase(base.requests, latest.requests)
    buckets = {le: _increase(base.buckets.get(le, 0.0), count) for le, count in latest.buckets.items()}
    return WindowStats(
        observed_seconds=seconds, requests=round(requests), errors=round(_increase(base.errors, latest.errors)),
        request_rate=requests / seconds if seconds > 0 else 0.0,
        p50=quantile(0.5, buckets), p95=quantile(0.95, buckets), p99=quantile(0.99, buckets))


class History:
    """Scrapes kept for `keep` seconds (the longest window answered, plus one scrape)."""

    def __init__(self, keep: float) -> None:
        self.keep = keep
        self._snapshots: deque[Snapshot] = deque()

    def add(self, at: float, deployments: Mapping[str, Counts]) -> None:
        self._snapshots.append(Snapshot(at, deployments))
        while len(self._snapshots) > 1 and self._snapshots[1].at <= at - self.keep:
            self._snapshots.popleft()

    def latest(self) -> Snapshot | None:
        return self._snapshots[-1] if self._snapshots else None

    def before(self, at: float) -> Snapshot | None:
        """The start of a window that ends at the latest scrape: the newest earlier scrape at or before
        `at`, else the oldest earlier one (a shorter window than asked); None with one scrape or none."""
        earlier = list(self._snapshots)[:-1]
        if not earlier:
            return None
        found = earlier[0]
        for snapshot in earlier:
            if snapshot.at > at:
                break
            found = snapshot
        return found

"""Which replica takes a request: the power of two choices on outstanding requests.

Two replicas drawn at random, the one with fewer requests outstanding wins. That avoids the
herd that "always the least loaded" causes when several routers share stale counts, and it
costs two draws instead of a scan. `predict_concurrency` (how many requests a replica runs at
once) is a hard limit: if both draws are full, the least loaded replica with a free slot is
taken; if every replica is full (or there is none), the answer is None and the request waits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from kingpost_router.routes import Replica

R = TypeVar("R", bound=Replica)


def choose(
    replicas: Sequence[R],
    outstanding: Mapping[str, int],
    rng: Callable[[int], int],
    predict_concurrency: int = 0,
) -> R | None:
    """`outstanding` is keyed by replica id (absent = 0); `rng(n)` returns an int in [0, n);
    `predict_concurrency` 0 means no limit."""
    n = len(replicas)
    if n == 1:
        only = replicas[0]
        if predict_concurrency <= 0 or outstanding.get(only.replica_id, 0) < predict_concurrency:
            return only
        return None
    if n == 0:
        return None
    i = rng(n)
    j = rng(n - 1)
    if j >= i:  # a second, distinct replica, uniformly
        j += 1
    a, b = replicas[i], replicas[j]
    load_a = outstanding.get(a.replica_id, 0)
    load_b = outstanding.get(b.replica_id, 0)
    best, load = (a, load_a) if load_a <= load_b else (b, load_b)
    if predict_concurrency <= 0 or load < predict_concurrency:
        return best
    least = min(replicas, key=lambda r: outstanding.get(r.replica_id, 0))
    return least if outstanding.get(least.replica_id, 0) < predict_concurrency else None

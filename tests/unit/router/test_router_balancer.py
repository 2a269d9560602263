"""Power of two choices: the less loaded of two draws, respecting predict_concurrency."""

from __future__ import annotations

import random
from collections import Counter

from kingpost_router.balancer import choose
from kingpost_router.routes import Replica

REPLICAS = tuple(Replica(f"rep_{i}", f"127.0.0.1:{9000 + i}") for i in range(4))


def draws(*values: int):
    """An rng(n) that answers the given values in turn."""
    it = iter(values)
    return lambda n: next(it)


def test_a_single_replica_takes_everything_up_to_its_limit() -> None:
    assert choose(REPLICAS[:1], {"rep_0": 3}, draws(), 4) is REPLICAS[0]


def test_the_less_loaded_of_the_two_draws_wins() -> None:
    outstanding = {"rep_0": 5, "rep_2": 1}
    assert choose(REPLICAS, outstanding, draws(0, 1)) is REPLICAS[2]  # second draw skips index 0
    assert choose(REPLICAS, outstanding, draws(2, 0)) is REPLICAS[2]


def test_the_two_draws_are_always_distinct_replicas() -> None:
    # With two replicas, distinct draws always see both, so the idle one always wins.
    rng = random.Random(1)
    picks = {choose(REPLICAS[:2], {"rep_0": 1}, rng.randrange).replica_id for _ in range(200)}
    assert picks == {"rep_1"}


def test_full_draws_fall_back_to_a_replica_with_a_free_slot() -> None:
    outstanding = {"rep_0": 2, "rep_1": 2, "rep_2": 2}
    assert choose(REPLICAS, outstanding, draws(0, 0), predict_concurrency=2) is REPLICAS[3]


def test_when_every_replica_is_full_none_takes_it() -> None:
    outstanding = {"rep_0": 3, "rep_1": 2, "rep_2": 4, "rep_3": 5}
    assert choose(REPLICAS, outstanding, draws(0, 1), predict_concurrency=2) is None
    assert choose(REPLICAS[:1], {"rep_0": 2}, draws(), predict_concurrency=2) is None
    assert choose(REPLICAS[:1], {"rep_0": 1}, draws(), predict_concurrency=2) is REPLICAS[0]
    assert choose((), {}, draws(), predict_concurrency=2) is None


def test_without_a_limit_a_busy_replica_still_takes_requests() -> None:
    assert choose(REPLICAS[:1], {"rep_0": 100}, draws(), 0) is REPLICAS[0]


def test_load_spreads_evenly_when_requests_pile_up() -> None:
    rng = random.Random(7)
    outstanding: Counter[str] = Counter()
    for _ in range(400):  # requests that never finish: the worst case for balance
        outstanding[choose(REPLICAS, outstanding, rng.randrange).replica_id] += 1
    assert max(outstanding.values()) - min(outstanding.values()) <= 2

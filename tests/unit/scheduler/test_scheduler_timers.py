"""When time alone makes a reconcile pass due: start timeouts, drains, canary stages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kingpost_scheduler import canary
from kingpost_scheduler.facts import PENDING, READY, STARTING, Replica
from kingpost_scheduler.timers import Canary, next_due

T0 = datetime(2025, 1, 1, tzinfo=UTC)
START_TIMEOUT = timedelta(seconds=300)
DRAIN = timedelta(seconds=10)


def due(now: datetime = T0, replicas: tuple[Replica, ...] = (), demoted: tuple[datetime, ...] = (),
        canaries: tuple[Canary, ...] = ()) -> datetime | None:
    return next_due(now=now, replicas=replicas, start_timeout=START_TIMEOUT, demoted_at=demoted, drain=DRAIN,
                    canaries=canaries)


def test_nothing_is_due_when_everything_serves() -> None:
    assert due(replicas=(Replica("r1", "d", "a", READY, T0, address="a:1"),)) is None
    assert due(canaries=(Canary(100, None),)) is None  # a canary waiting for readiness: an event


def test_the_earliest_deadline_wins() -> None:
    loading = Replica("r1", "d", "a", STARTING, T0)
    placed = Replica("r2", "d", "a", PENDING, T0 + timedelta(seconds=5))
    assert due(replicas=(loading, placed)) == T0 + START_TIMEOUT + timedelta(microseconds=1)
    assert due(replicas=(loading,), demoted=(T0 + timedelta(seconds=3),)) == T0 + timedelta(seconds=13)


def test_a_canary_is_due_at_each_stage_boundary_then_at_its_end() -> None:
    seen, now = [], T0
    while (at := due(now=now, canaries=(Canary(100, T0),))) is not None:
        seen.append(int((at - T0).total_seconds()))
        assert canary.progress(100, T0, at) != canary.progress(100, T0, at - timedelta(microseconds=1))
        now = at
    assert seen == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]

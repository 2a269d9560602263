"""When the reconcile pass must run again although nothing happened: the deadlines time alone reaches.

Every change to the database ends with a reconcile pass (the scheduler is its only writer), so
between changes a pass would decide the same thing again, except where a decision depends on the
time. Those are, in the pass's own rules:
- a replica PENDING or STARTING for longer than the start timeout is replaced (reconcile.plan);
- a FAILED replica of a deployment that has served is replaced (healing.replace_failed_at);
- a demoted deployment scales to zero once drained (promotion.drained);
- a canary moves to its next stage, or finishes (canary.next_change).
A node that stops heartbeating is the fourth, watched in memory (liveness.gone_quiet). The shell
runs a pass at the earliest of these, and otherwise only when something changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from kingpost_scheduler import canary, healing
from kingpost_scheduler.facts import FAILED, PENDING, STARTING, Replica

# reconcile.plan replaces a replica whose start took longer than the timeout (strictly longer).
_AFTER = timedelta(microseconds=1)


@dataclass(frozen=True)
class Canary:
    duration_seconds: int
    started_at: datetime | None


def next_due(*, now: datetime, replicas: Iterable[Replica], start_timeout: timedelta,
             demoted_at: Iterable[datetime], drain: timedelta, canaries: Iterable[Canary]) -> datetime | None:
    """The earliest deadline after which a pass may decide something new; None when none is ahead."""
    deadlines = [r.since + start_timeout + _AFTER for r in replicas if r.state in (PENDING, STARTING)]
    deadlines += [healing.replace_failed_at(r) for r in replicas if r.state == FAILED]
    deadlines += [at + drain for at in demoted_at]
    deadlines += [t for c in canaries if (t := canary.next_change(c.duration_seconds, c.started_at, now))]
    return min(deadlines, default=None)

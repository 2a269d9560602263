"""Replicas that heal: what an agent's report does to a replica, and what crashes mean for a deployment.

A replica's node restarts its runner when it ends after the replica was READY (`kill -9`, an
out-of-memory kill, `os._exit` in predict), backing off as Kubernetes' CrashLoopBackOff does
(events.proto). The scheduler's side of it:

- A RESTARTING replica is not routed (its address is dropped until READY brings the new one), and
  does not fail its deployment: it keeps its place among the replicas the deployment wants, so
  nothing else is started in its stead. It is *crash-looping* while its node holds the next start
  back (`next_restart_at` later than the event's `at`).
- A deployment serves while any replica is READY, or RESTARTING without being held back (it served
  a moment ago and is starting again now): it stays ACTIVE.
- When every replica crash-loops, the deployment is UNHEALTHY, its reason the replicas' last
  output; it is ACTIVE again as soon as one is READY.
- Only a failure to load before the deployment ever served fails it (FAILED: the build does not
  load). A replica that fails to load in a deployment that has served (on a scale-up, after a wake
  from zero) is kept FAILED for `REPLACE_FAILED_AFTER`, counted as crash-looping, then stopped and
  replaced.
- A report about a replica the scheduler does not know (or is stopping) changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from kingpost_scheduler.facts import FAILED, PENDING, READY, RESTARTING, STARTING, STOPPING, Replica

# How long a FAILED replica of a deployment that has served waits before it is replaced.
REPLACE_FAILED_AFTER = timedelta(seconds=10)
# How many of a replica's last lines an UNHEALTHY deployment's reason quotes.
REASON_LINES = 5

# The agent's states, as reports name them (events.proto's ReplicaState without its prefix).
REPORT_STARTING = "STARTING"
REPORT_READY = "READY"
REPORT_RESTARTING = "RESTARTING"
REPORT_FAILED = "FAILED"
REPORT_STOPPED = "STOPPED"


@dataclass(frozen=True)
class Report:
    """One ReplicaEvent, as the scheduler reads it."""

    state: str
    address: str = ""
    http_address: str = ""
    message: str = ""
    restarts: int = 0
    at: datetime | None = None
    next_restart_at: datetime | None = None

    @property
    def held_back(self) -> bool:
        """The node waits before the next start: the runner keeps ending soon after it starts."""
        return (self.state == REPORT_RESTARTING and self.at is not None and self.next_restart_at is not None
                and self.next_restart_at > self.at)


@dataclass(frozen=True)
class Change:
    """What to write to a replica's row: its new state and fields (None: unchanged), or forget it."""

    state: str = ""
    address: str | None = None
    http_address: str | None = None
    message: str | None = None
    restarts: int | None = None
    crash_looping: bool | None = None
    forget: bool = False
    # The replica's first READY (it was PENDING or STARTING): a cold start to log and measure.
    cold_start: bool = False


def after_report(current: Replica | None, report: Report) -> Change | None:
    """What `report` does to the replica the scheduler knows as `current`; None: nothing."""
    if current is None or current.state == STOPPING:
        return None  # not ours, or on its way out: nothing to learn
    restarts = max(current.restarts, report.restarts)
    if report.state == REPORT_READY and report.address:
        return Change(READY, address=report.address, http_address=report.http_address, restarts=restarts,
                      crash_looping=False, cold_start=current.state in (PENDING, STARTING))
    if report.state == REPORT_RESTARTING:
        return Change(RESTARTING, address="", http_address="", message=report.message or current.message,
                      restarts=restarts, crash_looping=report.held_back)
    if report.state == REPORT_FAILED:
        return Change(FAILED, address="", http_address="",
                      message=report.message or f"replica {current.id} failed",
                      crash_looping=False)
    if report.state == REPORT_STOPPED:
        return Change(forget=True)
    if report.state == REPORT_STARTING and current.state == PENDING:
        return Change(STARTING)
    return None


def serves(r: Replica) -> bool:
    """READY, or restarting at once after it served (not held back): the deployment is serving."""
    return (r.state == READY and bool(r.address)) or (r.state == RESTARTING and not r.crash_looping)


def crash_looping(r: Replica, has_served: bool) -> bool:
    """RESTARTING and held back; or FAILED to load in a deployment that has served (to be replaced)."""
    return (r.state == RESTARTING and r.crash_looping) or (r.state == FAILED and has_served)


def all_crash_looping(replicas: Sequence[Replica], has_served: bool) -> list[Replica]:
    """The replicas, when there are some (STOPPING ones aside) and every one crash-loops; else []."""
    live = [r for r in replicas if r.state != STOPPING]
    if live and all(crash_looping(r, has_served) for r in live):
        return sorted(live, key=lambda r: r.id)
    return []


def unhealthy_reason(looping: Sequence[Replica]) -> str:
    """An UNHEALTHY deployment's reason: each crash-looping replica and the tail of its last output."""
    parts = []
    for r in looping:
        what = "failed to load" if r.state == FAILED else f"crash-looping after {r.restarts} restart(s)"
        parts.append(f"replica {r.id} {what}: {tail(r.message, REASON_LINES)}".rstrip(": "))
    return "every replica is crash-looping; " + "; ".join(parts)


def tail(message: str, lines: int) -> str:
    """The first line of `message` (how it ended) and its last `lines` lines."""
    all_lines = message.strip().splitlines()
    if len(all_lines) <= lines + 1:
        return "\n".join(all_lines)
    return "\n".join([all_lines[0], "...", *all_lines[len(all_lines) - lines:]]) if lines else all_lines[0]


def replace_failed_at(r: Replica) -> datetime:
    """When a FAILED replica of a deployment that has served is stopped and replaced."""
    return r.since + REPLACE_FAILED_AFTER

"""When to start a runner again after it ended, once its replica had been ready: Kubernetes'
CrashLoopBackOff, with the first restart at once.

A runner that served steadily and then ended (a `kill -9`, an out-of-memory kill, one bad request
that made predict call `os._exit`) comes back at once: its replica answers again after one model
load. A runner that ends again soon after each restart waits 1 s, 2 s, 4 s, ... up to a minute
before the next, so a model that crashes on every request does not spend the node on reloading it;
staying ready for two minutes forgives the past. Pure: the caller passes the clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    # The delay before the second restart in a row; each one after doubles it, up to `max_delay`.
    initial_delay: float = 1.0
    max_delay: float = 60.0
    # A runner that stayed ready this long has served steadily: its next exit restarts at once.
    reset_after: float = 120.0


DEFAULT_POLICY = RestartPolicy()


@dataclass(frozen=True)
class Backoff:
    # Restarts so far, over the replica's whole life.
    restarts: int = 0
    # Exits in a row, each within `reset_after` of becoming ready again (or before it).
    streak: int = 0


@dataclass(frozen=True)
class Restart:
    backoff: Backoff
    # When to start the runner again (the caller's clock).
    at: float


def next_restart(policy: RestartPolicy, backoff: Backoff, *, ready_since: float | None, now: float) -> Restart:
    """The restart after a runner ended at `now`, having been ready since `ready_since` (None: it ended
    before it was ready again)."""
    steady = ready_since is not None and now - ready_since >= policy.reset_after
    streak = 1 if steady else backoff.streak + 1
    return Restart(Backoff(backoff.restarts + 1, streak), now + restart_delay(policy, streak))


def restart_delay(policy: RestartPolicy, streak: int) -> float:
    """0 for the first exit of a streak, then `initial_delay` doubling up to `max_delay`."""
    if streak <= 1:
        return 0.0
    doublings = min(streak - 2, 62)  # 2.0 ** 1024 overflows; the cap is reached long before
    return min(policy.max_delay, policy.initial_delay * 2.0 ** doublings)

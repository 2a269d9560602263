"""When `kingpost up` starts a service again after it died: a process manager's policy, pure.

A death is *quick* when the process ran less than `healthy_after` seconds; quick deaths in a row
back off exponentially (`first_delay`, doubling, at most `max_delay`), so a service that dies once
is back at once (the router and Envoy must answer again within seconds) and one that cannot start
does not spin. A run of `healthy_after` seconds forgives the deaths before it. From
`report_after` quick deaths in a row the service is reported as crash-looping, with its log; at
`give_up_after`, `kingpost up` gives up and stops everything, naming it.

    policy = RestartPolicy()
    decision = after_death(policy, quick_deaths=0, started_at=100.0, died_at=103.0)
    decision.restart_at  # 103.1: the first restart comes 0.1 s after the death
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    first_delay: float = 0.1
    max_delay: float = 10.0
    healthy_after: float = 30.0
    report_after: int = 3
    # With the defaults, about 40 s of restarts (0.1 + 0.2 + ... + 10 + 10 s, plus the runs).
    give_up_after: int = 10

    def __post_init__(self) -> None:
        if not 0 <= self.first_delay <= self.max_delay:
            raise ValueError(f"first_delay {self.first_delay} must be between 0 and max_delay "
                             f"{self.max_delay}")
        if not 1 <= self.report_after <= self.give_up_after:
            raise ValueError(f"report_after {self.report_after} must be between 1 and give_up_after "
                             f"{self.give_up_after}")


@dataclass(frozen=True)
class Decision:
    # Quick deaths in a row, this one included (1 after a healthy run).
    quick_deaths: int
    # When to start the process again (the clock of `died_at`); None: give up.
    restart_at: float | None
    # Say that it keeps dying, with its log.
    crash_looping: bool

    @property
    def give_up(self) -> bool:
        return self.restart_at is None


def after_death(policy: RestartPolicy, *, quick_deaths: int, started_at: float, died_at: float) -> Decision:
    """What to do about a process that started at `started_at` and died at `died_at`, after
    `quick_deaths` quick deaths in a row before this run."""
    count = 1 if died_at - started_at >= policy.healthy_after else quick_deaths + 1
    looping = count >= policy.report_after
    if count >= policy.give_up_after:
        return Decision(count, None, looping)
    delay = min(policy.max_delay, policy.first_delay * 2 ** (count - 1))
    return Decision(count, died_at + delay, looping)

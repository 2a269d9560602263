"""How many replicas a deployment should have: Knative's stable-window rule with Baseten's knobs.

    desired = clamp(ceil(average concurrency over the window / (concurrency_target × utilization)),
                    max(min_replica, 1), max_replica)

Worked number: 3 requests in flight on average, target 1, utilization 70% → each replica should carry
0.7, so ceil(3 / 0.7) = 5 replicas.

Scale-down waits: the count stays at the highest one load justified within the last
`scale_down_delay` seconds (a max over that window, as Knative's scale-down-delay does), so a short
lull does not shed replicas that the next burst needs. Scale-up is immediate.
The floor is 1 even when min_replica is 0: scaling to zero needs the router's hold queue (later).

Pure: no I/O, `now` is passed in (seconds, any monotonic origin).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class AutoscalingSettings:
    """Baseten's autoscaling settings and defaults."""

    min_replica: int = 0
    max_replica: int = 1
    concurrency_target: int = 1
    target_utilization_percentage: int = 70
    autoscaling_window: float = 60.0
    scale_down_delay: float = 900.0

    def __post_init__(self) -> None:
        problems = []
        if self.min_replica < 0:
            problems.append(f"min_replica = {self.min_replica}: must be >= 0")
        if self.max_replica < max(self.min_replica, 1):
            problems.append(f"max_replica = {self.max_replica}: must be >= max(min_replica, 1)")
        if self.concurrency_target < 1:
            problems.append(f"concurrency_target = {self.concurrency_target}: must be >= 1")
        if not 1 <= self.target_utilization_percentage <= 100:
            problems.append(
                f"target_utilization_percentage = {self.target_utilization_percentage}: must be 1..100")
        if self.autoscaling_window <= 0:
            problems.append(f"autoscaling_window = {self.autoscaling_window}: must be > 0 seconds")
        if self.scale_down_delay < 0:
            problems.append(f"scale_down_delay = {self.scale_down_delay}: must be >= 0 seconds")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def floor(self) -> int:
        return max(self.min_replica, 1)


@dataclass(frozen=True)
class Sample:
    """Total concurrency (in flight + queued, summed across routers) of one deployment at one time."""

    at: float
    concurrency: float


@dataclass(frozen=True)
class ScaleState:
    """What past ticks justified: (time, count) pairs within the scale-down delay, counts decreasing."""

    recent: tuple[tuple[float, int], ...] = ()


def average_concurrency(samples: Sequence[Sample], now: float, window: float) -> float | None:
    """Mean over the samples in (now - window, now]; None when there are none ("no data yet")."""
    inside = [s.concurrency for s in samples if now - window < s.at <= now]
    return sum(inside) / len(inside) if inside else None


def justified(settings: AutoscalingSettings, average: float) -> int:
    per_replica = settings.concurrency_target * settings.target_utilization_percentage / 100
    # Round away float noise first: 1.4 / 0.7 is 2.0000000000000004, which must stay 2.
    wanted = math.ceil(round(average / per_replica, 9))
    return min(max(wanted, settings.floor), settings.max_replica)


def decide(
    settings: AutoscalingSettings, samples: Sequence[Sample], state: ScaleState, now: float
) -> tuple[int, ScaleState]:
    average = average_concurrency(samples, now, settings.autoscaling_window)
    now_count = justified(settings, average or 0.0)
    # Keep only what is still within the delay, and drop entries a later, higher count outranks.
    recent = [(at, count) for at, count in state.recent
              if now - at < settings.scale_down_delay and count > now_count]
    # Clamped again: the settings may have been lowered since a past tick.
    desired = min(max([now_count, *(count for _, count in recent)]), settings.max_replica)
    recent.append((now, now_count))
    return desired, ScaleState(recent=tuple(recent))

"""How many replicas a deployment should have: Knative's KPA with Baseten's knobs
(kingpost.autoscaling_settings: their fields, defaults and ranges).

Every tick (and at once on a router's poke, and on a sample's arrival for steps up), per deployment:

1. Two averages of concurrency (in flight + queued, all routers): over the stable window
   (`autoscaling_window`, default 60 s) and over the panic window (10% of it, at least 6 s).
2. Each becomes a replica count: ceil(average / (concurrency_target × utilization)). Worked number:
   3 in flight, target 1, utilization 70% → each replica should carry 0.7 → ceil(3 / 0.7) = 5.
3. Panic: when the panic-window count is ≥ 2 × N (`PANIC_THRESHOLD`), the deployment panics: the
   count is the larger of both, and it never goes down while panicking. Panic ends once the
   threshold has not been crossed for a whole stable window.
4. Scale-down delay: the count is held at the highest one decided within the last
   `scale_down_delay` seconds (a max over that window, Knative's scale-down-delay), so a lull
   does not shed replicas the next burst needs and the last replica goes only after the delay
   with no traffic. Scale-up is never delayed.
5. Rates of change are bounded relative to the current count N (the last decision, at least 1):
   up to ceil(N × 1000) (`MAX_SCALE_UP_RATE`), down to floor(N / 2) (`MAX_SCALE_DOWN_RATE`) per
   decision; so 8 → 4 → 2 → 1 → 0 takes four decisions (8 s at the 2-s tick) once the delay is over.
6. Clamp to [min_replica, max_replica]; 0 only when min_replica is 0.

No samples at all is "no metrics yet": `decide` returns None and the count stays as it is.
A fresh state (`ScaleState.start`) remembers the count it started from as if decided then, so a
new deployment or a restarted autoscaler keeps its replicas for a full delay before going down.

Pure: no I/O, `now` is passed in (seconds, any monotonic origin).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from kingpost.autoscaling_settings import AutoscalingSettings

MAX_SCALE_UP_RATE = 1000.0
MAX_SCALE_DOWN_RATE = 2.0
PANIC_THRESHOLD = 2.0
PANIC_WINDOW_FRACTION = 0.10
MIN_PANIC_WINDOW = 6.0


def per_replica(settings: AutoscalingSettings) -> float:
    """Concurrency one replica should carry."""
    return settings.concurrency_target * settings.target_utilization_percentage / 100


def panic_window(settings: AutoscalingSettings) -> float:
    window = settings.autoscaling_window
    return min(window, max(MIN_PANIC_WINDOW, window * PANIC_WINDOW_FRACTION))


def clamp(settings: AutoscalingSettings, count: int) -> int:
    return min(max(count, settings.min_replica), settings.max_replica)


@dataclass(frozen=True)
class Sample:
    """Total concurrency (in flight + queued, summed across routers) of one deployment at one time."""

    at: float
    concurrency: float


@dataclass(frozen=True)
class ScaleState:
    """What a deployment's past decisions leave behind."""

    # The last decided count (the base for rate limits and the panic threshold).
    current: int = 0
    # (time, count) decided before the delay hold, within the scale-down delay; counts decreasing.
    recent: tuple[tuple[float, int], ...] = ()
    # When the panic threshold was last crossed; None when not panicking.
    panic_since: float | None = None
    # The count panic has reached; panic never goes below it.
    panic_count: int = 0

    @classmethod
    def start(cls, current: int, now: float) -> ScaleState:
        """A deployment first seen with `current` replicas: held as if decided at `now`."""
        return cls(current=current, recent=((now, current),))

    @property
    def panicking(self) -> bool:
        return self.panic_since is not None


def average_concurrency(samples: Sequence[Sample], now: float, window: float) -> float | None:
    """Mean over the samples in (now - window, now]; None when there are none ("no data yet")."""
    inside = [s.concurrency for s in samples if now - window < s.at <= now]
    return sum(inside) / len(inside) if inside else None


def wanted(settings: AutoscalingSettings, average: float) -> int:
    # Round away float noise first: 1.4 / 0.7 is 2.0000000000000004, which must stay 2.
    return max(0, math.ceil(round(average / per_replica(settings), 9)))


def justified(settings: AutoscalingSettings, average: float) -> int:
    """The count a steady `average` concurrency justifies, within the settings' bounds."""
    return clamp(settings, wanted(settings, average))


def decide(
    settings: AutoscalingSettings, samples: Sequence[Sample], state: ScaleState, now: float
) -> tuple[int | None, ScaleState]:
    """The count to run now, or None with the state unchanged when there are no samples yet."""
    stable = average_concurrency(samples, now, settings.autoscaling_window)
    if stable is None:
        return None, state
    panic = average_concurrency(samples, now, panic_window(settings))
    base = max(state.current, 1)
    stable_count = wanted(settings, stable)
    panic_count = wanted(settings, panic if panic is not None else stable)

    panic_since = state.panic_since
    if panic_count / base >= PANIC_THRESHOLD:
        panic_since = now
    elif panic_since is not None and now - panic_since >= settings.autoscaling_window:
        panic_since = None
    if panic_since is not None:
        desired = max(stable_count, panic_count, state.panic_count if state.panicking else state.current)
    else:
        desired = stable_count

    # The hold records what load justified (not the rate-limited count), so a step down is not
    # itself held for another delay.
    recent = [(at, count) for at, count in state.recent
              if now - at < settings.scale_down_delay and count > desired]
    held = max([desired, *(count for _, count in recent)])
    recent.append((now, desired))
    limited = min(max(held, math.floor(base / MAX_SCALE_DOWN_RATE)), math.ceil(base * MAX_SCALE_UP_RATE))
    final = clamp(settings, limited)
    return final, replace(state, current=final, recent=tuple(recent), panic_since=panic_since,
                          panic_count=final if panic_since is not None else 0)


def idle_to_deactivate(current: int, last_traffic: float, now: float, idle_seconds: float) -> bool:
    """Baseten deactivates a deployment after two weeks without traffic: at zero replicas, idle for
    `idle_seconds` (0 = never)."""
    return idle_seconds > 0 and current == 0 and now - last_traffic >= idle_seconds

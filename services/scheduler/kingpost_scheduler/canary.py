"""Canary promotions: traffic moves to the candidate in STAGES even steps over a window.

Baseten's rule: a promotion with `ramp_up_while_promoting` shifts traffic in 10 evenly
distributed stages over `ramp_up_duration_seconds`, and only once the candidate has as many ready
replicas as the current deployment's minimum (min_replica, at least 1). It can be cancelled at any
stage: all traffic goes back to the current deployment.

    waiting (stage 0, 0 %) ─▶ eligible at t0 ─▶ stage k in [t0 + (k-1)·w/10, t0 + k·w/10):
    candidate 10·k %, current the rest ─▶ at t0 + w: done (the shell swaps, as a plain promotion)

`step` is one look at a canary in progress (what the reconcile pass applies); `next_change` is when
the next look would find something new, so that the pass is run then and not in between.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from kingpost.errors import InvalidArgument

STAGES = 10

# Baseten's names, stored with the environment's settings.
RAMP_UP_WHILE_PROMOTING = "ramp_up_while_promoting"
RAMP_UP_DURATION_SECONDS = "ramp_up_duration_seconds"
# Baseten's other promotion settings, stored and answered. redeploy_on_promotion acts (promotion.plan
# copies the deployment); kingpost's promotion is a swap once the candidate is ready (or a canary), so
# a rolling deploy is answered as asked but runs as a swap, and the cleanup strategy is not applied.
REDEPLOY_ON_PROMOTION = "redeploy_on_promotion"
ROLLING_DEPLOY = "rolling_deploy"
PROMOTION_CLEANUP_STRATEGY = "promotion_cleanup_strategy"
CLEANUP_STRATEGIES = ("SCALE_TO_ZERO", "KEEP", "DEACTIVATE")
FIELDS = (RAMP_UP_WHILE_PROMOTING, RAMP_UP_DURATION_SECONDS, REDEPLOY_ON_PROMOTION, ROLLING_DEPLOY,
          PROMOTION_CLEANUP_STRATEGY)

DEFAULT_DURATION = 600
MIN_DURATION, MAX_DURATION = 10, 86400


@dataclass(frozen=True)
class PromotionSettings:
    ramp_up_while_promoting: bool = False
    ramp_up_duration_seconds: int = DEFAULT_DURATION
    redeploy_on_promotion: bool = False
    rolling_deploy: bool = False
    promotion_cleanup_strategy: str = CLEANUP_STRATEGIES[0]


def patch_promotion_settings(current: PromotionSettings, changes: Mapping[str, object]) -> PromotionSettings:
    """`current` with `changes` applied; the duration and the cleanup strategy checked."""
    out = PromotionSettings(
        ramp_up_while_promoting=bool(changes.get(RAMP_UP_WHILE_PROMOTING, current.ramp_up_while_promoting)),
        ramp_up_duration_seconds=int(changes.get(RAMP_UP_DURATION_SECONDS,  # type: ignore[call-overload]
                                                 current.ramp_up_duration_seconds)),
        redeploy_on_promotion=bool(changes.get(REDEPLOY_ON_PROMOTION, current.redeploy_on_promotion)),
        rolling_deploy=bool(changes.get(ROLLING_DEPLOY, current.rolling_deploy)),
        promotion_cleanup_strategy=str(changes.get(PROMOTION_CLEANUP_STRATEGY,
                                                   current.promotion_cleanup_strategy)),
    )
    check_duration(out.ramp_up_duration_seconds)
    if out.promotion_cleanup_strategy not in CLEANUP_STRATEGIES:
        raise InvalidArgument(f"promotion_cleanup_strategy = {out.promotion_cleanup_strategy!r}: must be one of "
                              + ", ".join(CLEANUP_STRATEGIES))
    return out


def check_duration(seconds: int) -> int:
    if not MIN_DURATION <= seconds <= MAX_DURATION:
        raise InvalidArgument(f"ramp_up_duration_seconds = {seconds}: must be {MIN_DURATION}..{MAX_DURATION} "
                              f"({STAGES} stages of at least 1 s)")
    return seconds


def duration_for(settings: PromotionSettings, requested: int | None) -> int:
    """The window of a promotion: the one asked for on the promote call (0: no canary), else the
    environment's, else 0 (a plain promotion)."""
    if requested is not None:
        return 0 if requested == 0 else check_duration(requested)
    return settings.ramp_up_duration_seconds if settings.ramp_up_while_promoting else 0


def eligible(candidate_ready: int, current_min_replica: int) -> bool:
    """Traffic shifts once the candidate has the current deployment's minimum of ready replicas."""
    return candidate_ready >= max(1, current_min_replica)


@dataclass(frozen=True)
class Progress:
    stage: int  # 0 (not started) .. STAGES
    done: bool  # the window has passed: swap

    @property
    def candidate_weight(self) -> int:
        return 100 * self.stage // STAGES


def progress(duration_seconds: int, started_at: datetime | None, now: datetime) -> Progress:
    """Where a canary of `duration_seconds` that became eligible at `started_at` stands at `now`."""
    if started_at is None:
        return Progress(0, False)
    elapsed = now - started_at
    window = timedelta(seconds=duration_seconds)
    if elapsed >= window:
        return Progress(STAGES, True)
    step = window / STAGES
    return Progress(min(STAGES, 1 + max(0, int(elapsed / step))), False)


def split(current: str, candidate: str, stage: int) -> tuple[tuple[str, int], ...]:
    """The environment's traffic split at `stage`: (deployment id, weight) entries summing to 100,
    none with weight 0."""
    weight = 100 * stage // STAGES
    if not candidate or weight <= 0:
        return ((current, 100),)
    if weight >= 100:
        return ((candidate, 100),)
    return ((current, 100 - weight), (candidate, weight))


@dataclass(frozen=True)
class Step:
    started_at: datetime | None  # when it became eligible; None while it waits for ready replicas
    stage: int  # the stage to show (unchanged once done: the swap ends the canary)
    done: bool  # the window has passed: swap


def step(duration_seconds: int, started_at: datetime | None, stage: int, candidate_ready: int,
         current_min_replica: int, now: datetime) -> Step:
    """A canary promotion at `now`: it starts once eligible, then moves through the stages."""
    if started_at is None:
        if not eligible(candidate_ready, current_min_replica):
            return Step(None, stage, False)
        started_at = now
    p = progress(duration_seconds, started_at, now)
    return Step(started_at, stage if p.done else p.stage, p.done)


def next_change(duration_seconds: int, started_at: datetime | None, now: datetime) -> datetime | None:
    """When a started canary next changes stage or finishes; None while it waits (readiness is an
    event, not a time) or once done."""
    if started_at is None:
        return None
    window = timedelta(seconds=duration_seconds)
    elapsed = now - started_at
    if elapsed >= window:
        return None
    step_length = window / STAGES
    boundary = started_at + step_length * (max(0, int(elapsed / step_length)) + 1)
    return min(boundary, started_at + window)

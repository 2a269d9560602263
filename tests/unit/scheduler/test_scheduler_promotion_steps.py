"""Promotion stepping, pure, on a fake clock: wait, abort, swap, and a canary's stages in between."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from kingpost_scheduler import lifecycle
from kingpost_scheduler.lifecycle import DeploymentFacts
from kingpost_scheduler.promotion_steps import Decision, InProgress, step

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def dep(deployment_id: str, **kw: object) -> DeploymentFacts:
    values: dict[str, object] = {"id": deployment_id, "name": deployment_id, "status": lifecycle.ACTIVE,
                                 "artifact_digest": "sha256:ab"}
    values.update(kw)
    return DeploymentFacts(**values)  # type: ignore[arg-type]


OLD, NEW = dep("old", min_replica=2), dep("new")
PLAIN = InProgress("m", "production", current="old", candidate="new")
CANARY = InProgress("m", "production", current="old", candidate="new", canary_duration_seconds=100)


def test_a_candidate_not_yet_active_waits() -> None:
    decision = step(PLAIN, dep("new", status=lifecycle.DEPLOYING), lifecycle.DEPLOYING, OLD, 0, T0)
    assert decision == Decision() and decision.waits


def test_a_candidate_that_failed_or_went_away_ends_the_promotion_with_the_reason() -> None:
    failed = dep("new", status=lifecycle.FAILED, status_reason="ModuleNotFoundError: torch")
    assert step(PLAIN, failed, lifecycle.FAILED, OLD, 0, T0).abort == (
        "deployment new failed: ModuleNotFoundError: torch")
    assert step(PLAIN, None, "", OLD, 0, T0).abort == "the deployment being promoted was deleted"
    assert step(PLAIN, dep("new", active=False), lifecycle.INACTIVE, OLD, 1, T0).abort == (
        "deployment new was deactivated during its promotion")


def test_an_active_candidate_swaps_and_demotes_the_previous_deployment() -> None:
    assert step(PLAIN, NEW, lifecycle.ACTIVE, OLD, 1, T0) == Decision(swap=True, demote="old")
    first = InProgress("m", "production", current="", candidate="new")
    assert step(first, NEW, lifecycle.ACTIVE, None, 1, T0) == Decision(swap=True, demote="")
    # Promoted in place (it was current already, e.g. with new settings): nothing to demote.
    in_place = InProgress("m", "production", current="new", candidate="new", canary_duration_seconds=100)
    assert step(in_place, NEW, lifecycle.ACTIVE, NEW, 1, T0) == Decision(swap=True, demote="")


def test_a_canary_waits_for_the_current_minimum_of_ready_replicas_then_starts() -> None:
    assert step(CANARY, NEW, lifecycle.ACTIVE, OLD, 1, T0).waits  # OLD's min_replica is 2
    started = step(CANARY, NEW, lifecycle.ACTIVE, OLD, 2, T0)
    assert started == Decision(canary_started_at=T0, canary_stage=1)


def test_a_canary_moves_one_stage_per_tenth_of_its_window_then_swaps() -> None:
    p = InProgress("m", "production", current="old", candidate="new", canary_duration_seconds=100,
                   canary_started_at=T0, canary_stage=1)
    stages = []
    for second in range(0, 101, 5):
        decision = step(p, NEW, lifecycle.ACTIVE, OLD, 2, T0 + timedelta(seconds=second))
        if decision.swap:
            stages.append("swap")
            break
        if decision.canary_stage is not None:
            p = replace(p, canary_stage=decision.canary_stage)
            stages.append(decision.canary_stage)
    assert stages == [2, 3, 4, 5, 6, 7, 8, 9, 10, "swap"]
    assert step(p, NEW, lifecycle.ACTIVE, OLD, 2, T0 + timedelta(seconds=99)).waits  # stage 10 already

"""Canary promotions, the pure rules: 10 even stages over the window, started only once the
candidate has the current deployment's minimum of ready replicas; the split each stage gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kingpost.errors import InvalidArgument
from kingpost_scheduler import canary
from kingpost_scheduler.route_table import DeploymentRow, EnvironmentRow, ModelRow, build_route_table

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_ten_even_stages_over_the_window_then_done() -> None:
    seen = []
    for second in range(0, 101):  # a 100 s window, looked at every second on a fake clock
        p = canary.progress(100, T0, T0 + timedelta(seconds=second))
        seen.append((p.stage, p.candidate_weight, p.done))
    assert seen[0] == (1, 10, False)  # eligible: the first tenth at once
    assert seen[9] == (1, 10, False) and seen[10] == (2, 20, False)
    assert seen[99] == (10, 100, False)
    assert seen[100] == (10, 100, True)  # the window has passed: swap
    stages = [s for s, _, _ in seen]
    assert stages == sorted(stages) and set(stages) == set(range(1, 11))
    assert all(stages.count(k) == 10 for k in range(1, 10))


def test_not_started_until_eligible() -> None:
    assert canary.progress(100, None, T0 + timedelta(days=1)) == canary.Progress(0, False)
    assert not canary.eligible(candidate_ready=0, current_min_replica=0)  # at least one
    assert canary.eligible(candidate_ready=1, current_min_replica=0)
    assert not canary.eligible(candidate_ready=2, current_min_replica=3)
    assert canary.eligible(candidate_ready=3, current_min_replica=3)


def test_split_per_stage_and_after_cancel() -> None:
    assert canary.split("old", "new", 0) == (("old", 100),)
    assert canary.split("old", "new", 3) == (("old", 70), ("new", 30))
    assert canary.split("old", "new", 10) == (("new", 100),)
    assert canary.split("old", "", 5) == (("old", 100),)  # cancelled: no candidate, all back


def test_route_table_carries_the_canary_split_only_for_a_live_candidate() -> None:
    deployments = [DeploymentRow(d, "m", False, True, 1, "ACTIVE") for d in ("old", "new")]
    table = build_route_table([ModelRow("m", "m")], deployments,
                              [EnvironmentRow("m", "production", "old", "new", 4)], [], [])
    assert table.models[0].environments[0].deployments == (("old", 60), ("new", 40))
    gone = build_route_table([ModelRow("m", "m")], deployments[:1],
                             [EnvironmentRow("m", "production", "old", "new", 4)], [], [])
    assert gone.models[0].environments[0].deployments == (("old", 100),)


def test_duration_from_the_promote_call_or_the_environment() -> None:
    off = canary.PromotionSettings()
    on = canary.PromotionSettings(ramp_up_while_promoting=True, ramp_up_duration_seconds=300)
    assert canary.duration_for(off, None) == 0
    assert canary.duration_for(on, None) == 300
    assert canary.duration_for(on, 0) == 0  # asked for a plain promotion
    assert canary.duration_for(off, 60) == 60
    with pytest.raises(InvalidArgument, match="ramp_up_duration_seconds"):
        canary.duration_for(off, 5)
    patched = canary.patch_promotion_settings(off, {"ramp_up_while_promoting": True})
    assert patched == canary.PromotionSettings(True, canary.DEFAULT_DURATION)
    with pytest.raises(InvalidArgument):
        canary.patch_promotion_settings(off, {"ramp_up_duration_seconds": 0})


def test_a_step_starts_the_canary_once_eligible_and_keeps_the_stage_once_done() -> None:
    waiting = canary.step(100, None, 0, candidate_ready=0, current_min_replica=1, now=T0)
    assert waiting == canary.Step(None, 0, False)
    started = canary.step(100, None, 0, candidate_ready=1, current_min_replica=1, now=T0)
    assert started == canary.Step(T0, 1, False)
    later = canary.step(100, T0, 1, candidate_ready=1, current_min_replica=1, now=T0 + timedelta(seconds=35))
    assert later == canary.Step(T0, 4, False)
    done = canary.step(100, T0, 10, candidate_ready=1, current_min_replica=1, now=T0 + timedelta(seconds=100))
    assert done == canary.Step(T0, 10, True)


def test_the_next_change_of_a_canary() -> None:
    assert canary.next_change(100, None, T0) is None
    assert canary.next_change(100, T0, T0) == T0 + timedelta(seconds=10)
    assert canary.next_change(100, T0, T0 + timedelta(seconds=10)) == T0 + timedelta(seconds=20)
    assert canary.next_change(100, T0, T0 + timedelta(seconds=95)) == T0 + timedelta(seconds=100)
    assert canary.next_change(100, T0, T0 + timedelta(seconds=100)) is None

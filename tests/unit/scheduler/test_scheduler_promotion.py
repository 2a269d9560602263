"""Promotion and the deployment actions: the transition table, its refusals, the promotion steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kingpost.errors import Conflict, InvalidArgument
from kingpost_scheduler import lifecycle, promotion
from kingpost_scheduler.lifecycle import DeploymentFacts
from kingpost_scheduler.promotion import EnvironmentFacts

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def dep(**kw: object) -> DeploymentFacts:
    values: dict[str, object] = {"id": "dep_x", "name": "deployment-1", "status": lifecycle.ACTIVE,
                                 "artifact_digest": "sha256:ab"}
    values.update(kw)
    return DeploymentFacts(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("action", "d", "allowed"), [
    (promotion.ACTIVATE, dep(active=False), True),
    (promotion.DEACTIVATE, dep(), True),
    (promotion.DELETE, dep(status=lifecycle.FAILED), True),
    (promotion.PROMOTE, dep(status=lifecycle.SCALED_TO_ZERO), True),
    (promotion.PROMOTE, dep(status=lifecycle.BUILDING, artifact_digest=""), True),
    (promotion.PROMOTE, dep(active=False), False),
    (promotion.PROMOTE, dep(status=lifecycle.FAILED), False),
    # A model that did not load at its first start may be tried again; a failed build may not.
    (promotion.ACTIVATE, dep(status=lifecycle.FAILED), True),
    (promotion.ACTIVATE, dep(status=lifecycle.FAILED, artifact_digest=""), False),
    (promotion.DELETE, dep(status=lifecycle.FAILED, artifact_digest=""), True),
    (promotion.ACTIVATE, dep(status=lifecycle.UNHEALTHY), True),
    (promotion.PROMOTE, dep(status=lifecycle.UNHEALTHY), True),
    (promotion.DELETE, dep(deleted=True), False),
])
def test_the_transition_table_decides(action: str, d: DeploymentFacts, allowed: bool) -> None:
    if allowed:
        promotion.check(action, d)
    else:
        with pytest.raises(Conflict, match=f"deployment {d.id}"):
            promotion.check(action, d)


def test_refusals_say_what_to_do_instead() -> None:
    with pytest.raises(Conflict, match="it is INACTIVE; activate it first"):
        promotion.check(promotion.PROMOTE, dep(active=False))
    with pytest.raises(Conflict, match="dep_x is production's current deployment: promote another deployment "
                                       "to production first, or delete the model"):
        promotion.check(promotion.DELETE, dep(), serves="production")
    with pytest.raises(Conflict, match="or delete the environment 'staging'"):
        promotion.check(promotion.DELETE, dep(), serves="staging")


def test_production_cannot_be_duplicated_or_deleted() -> None:
    with pytest.raises(Conflict, match="exists already"):
        promotion.check_create_environment("production", set())
    with pytest.raises(Conflict, match="exists already"):
        promotion.check_create_environment("staging", {"production", "staging"})
    with pytest.raises(InvalidArgument):
        promotion.check_create_environment("bad name", set())
    promotion.check_create_environment("staging", {"production"})
    with pytest.raises(Conflict, match="cannot be deleted"):
        promotion.check_delete_environment("production")
    promotion.check_delete_environment("staging")


def test_one_promotion_per_environment() -> None:
    busy = EnvironmentFacts("production", current="dep_a", candidate="dep_b")
    with pytest.raises(Conflict, match="in progress"):
        promotion.start_promotion(busy, dep())
    with pytest.raises(Conflict, match="already"):
        promotion.start_promotion(EnvironmentFacts("production", current="dep_x"), dep())
    promotion.start_promotion(EnvironmentFacts("production", current="dep_a"), dep())


def test_a_copy_is_made_for_development_and_for_a_deployment_of_another_environment() -> None:
    assert promotion.needs_copy(dep(is_development=True), "production", {})
    assert promotion.needs_copy(dep(), "production", {"dep_x": "staging"})
    assert not promotion.needs_copy(dep(), "production", {})
    assert promotion.needs_copy(dep(), "production", {}, redeploy=True)  # redeploy_on_promotion


def test_promotion_steps_wait_swap_or_abort() -> None:
    assert promotion.promotion_step(dep(status=lifecycle.DEPLOYING), lifecycle.DEPLOYING) == promotion.Step()
    assert promotion.promotion_step(dep(), lifecycle.ACTIVE).swap
    assert "failed: no module" in promotion.promotion_step(
        dep(status=lifecycle.FAILED, status_reason="no module"), lifecycle.FAILED).abort
    assert "deactivated" in promotion.promotion_step(dep(active=False), lifecycle.INACTIVE).abort
    assert "deleted" in promotion.promotion_step(None, "").abort


def test_a_demoted_deployment_drains_before_scaling_to_zero() -> None:
    drain = timedelta(seconds=10)
    assert not promotion.drained(None, T0, drain)
    assert not promotion.drained(T0, T0 + timedelta(seconds=9), drain)
    assert promotion.drained(T0, T0 + drain, drain)


def test_renaming_is_for_published_deployments_to_a_free_name() -> None:
    assert lifecycle.check_rename(dep(), "blue", ["deployment-2"]) == "blue"
    with pytest.raises(Conflict, match="taken"):
        lifecycle.check_rename(dep(), "deployment-2", ["deployment-2"])
    with pytest.raises(Conflict, match="taken"):
        lifecycle.check_rename(dep(), "production", [])
    with pytest.raises(Conflict, match="development deployment cannot be renamed"):
        lifecycle.check_rename(dep(is_development=True), "x", [])
    with pytest.raises(InvalidArgument):
        lifecycle.check_rename(dep(), "no spaces", [])


def test_a_plan_copies_or_reuses_and_sizes_the_candidate() -> None:
    prod = EnvironmentFacts("production", current="dep_cur")
    reused = promotion.plan(prod, dep(), {}, min_replica=0, duration_seconds=0, current_min_replica=1)
    assert reused == promotion.PromotionPlan(copy=False, restart_replicas=True, canary_duration_seconds=0,
                                             desired_replicas=1)
    copied = promotion.plan(prod, dep(is_development=True), {}, min_replica=2, duration_seconds=0,
                            current_min_replica=1)
    assert (copied.copy, copied.restart_replicas, copied.desired_replicas) == (True, False, 2)


def test_a_canary_plan_starts_as_many_replicas_as_the_current_minimum() -> None:
    prod = EnvironmentFacts("production", current="dep_cur")
    plan = promotion.plan(prod, dep(), {}, min_replica=0, duration_seconds=600, current_min_replica=3)
    assert (plan.canary_duration_seconds, plan.desired_replicas) == (600, 3)
    # Nothing serves the environment yet: there is no traffic to shift, so a plain promotion.
    empty = promotion.plan(EnvironmentFacts("production"), dep(), {}, min_replica=0, duration_seconds=600,
                           current_min_replica=None)
    assert (empty.canary_duration_seconds, empty.desired_replicas) == (0, 1)


def test_a_plan_refuses_what_cannot_start() -> None:
    with pytest.raises(Conflict, match="in progress"):
        promotion.plan(EnvironmentFacts("production", candidate="dep_b"), dep(), {}, min_replica=0,
                       duration_seconds=0, current_min_replica=None)
    with pytest.raises(Conflict, match="activate it first"):
        promotion.plan(EnvironmentFacts("production"), dep(active=False), {}, min_replica=0,
                       duration_seconds=0, current_min_replica=None)


def test_a_push_into_an_environment_is_a_plain_promotion_one_at_a_time() -> None:
    plan = promotion.deploy_into(EnvironmentFacts("staging"), min_replica=2)
    assert plan == promotion.PromotionPlan(copy=False, restart_replicas=False, canary_duration_seconds=0,
                                           desired_replicas=2)
    with pytest.raises(Conflict, match="a promotion to staging is in progress \\(deployment dep_b\\)"):
        promotion.deploy_into(EnvironmentFacts("staging", candidate="dep_b"), min_replica=0)


def test_cancel_demotes_a_candidate_that_serves_nowhere() -> None:
    env = EnvironmentFacts("production", current="dep_cur", candidate="dep_x")
    assert promotion.cancel(env, dep()) is True
    assert promotion.cancel(env, dep(environment="staging")) is False  # staging's current: it stays
    assert promotion.cancel(env, None) is False  # deleted meanwhile
    with pytest.raises(Conflict, match="no promotion to production is in progress"):
        promotion.cancel(EnvironmentFacts("production", current="dep_cur"), dep())

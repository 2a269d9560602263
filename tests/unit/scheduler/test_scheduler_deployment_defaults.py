"""What a new deployment starts with: pushed or copied by a promotion; replicas when about to serve."""

from __future__ import annotations

from kingpost.autoscaling_settings import DEFAULTS
from kingpost_scheduler import deployment_defaults, lifecycle


def test_a_push_starts_building_with_the_defaults() -> None:
    plan = lifecycle.plan_push([], publish=True, environment="", deployment_name="")
    new = deployment_defaults.pushed(plan, "bld_1")
    assert (new.name, new.is_development, new.status, new.build_id, new.artifact_digest) == (
        "deployment-1", False, lifecycle.BUILDING, "bld_1", "")
    assert (new.predict_concurrency, new.autoscaling, new.desired_replicas) == (1, DEFAULTS, 1)


def test_a_promotions_copy_keeps_the_build_and_deploys_at_once_when_built() -> None:
    built = deployment_defaults.promoted_copy("deployment-3", "bld_1", "sha256:ab", predict_concurrency=4)
    assert (built.status, built.artifact_digest, built.predict_concurrency, built.is_development) == (
        lifecycle.DEPLOYING, "sha256:ab", 4, False)
    assert built.autoscaling == DEFAULTS  # the environment's settings come with the promotion
    assert deployment_defaults.promoted_copy("deployment-3", "bld_1", "", 1).status == lifecycle.BUILDING


def test_a_deployment_about_to_serve_wants_its_minimum_and_at_least_one() -> None:
    assert deployment_defaults.about_to_serve(0) == 1
    assert deployment_defaults.about_to_serve(3) == 3

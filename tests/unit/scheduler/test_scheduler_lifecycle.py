"""Lifecycle: names, pushes, statuses, desired replica counts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kingpost.errors import Conflict, InvalidArgument
from kingpost_scheduler import lifecycle
from kingpost_scheduler.facts import READY, STARTING, Replica
from kingpost_scheduler.lifecycle import DeploymentFacts

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def dep(**kw: object) -> DeploymentFacts:
    values: dict[str, object] = {"id": "d1", "name": "development", "status": lifecycle.BUILDING}
    values.update(kw)
    return DeploymentFacts(**values)  # type: ignore[arg-type]


# Truss's own test data names models "Test Echo": display names deploy unchanged.
@pytest.mark.parametrize("name", ["m", "my-model", "Model_1.2", "Test Echo", "ünïcode", "a" * 100])
def test_valid_model_names(name: str) -> None:
    assert lifecycle.validate_model_name(name) == name


@pytest.mark.parametrize("name", ["", " x", "x ", "a" * 101, "x/y", "tab\there"])
def test_invalid_model_names_name_the_rule(name: str) -> None:
    with pytest.raises(InvalidArgument, match="1 to 100 printable characters, no '/'"):
        lifecycle.validate_model_name(name)


def test_status_follows_build_then_replicas() -> None:
    building = dep()
    assert lifecycle.deployment_status(building, []).status == lifecycle.BUILDING
    built = dep(artifact_digest="sha256:ab", status=lifecycle.DEPLOYING)
    assert lifecycle.deployment_status(built, []).status == lifecycle.DEPLOYING
    loading = Replica("r1", "d1", "a", STARTING, T0)
    assert lifecycle.deployment_status(built, [loading]).status == lifecycle.DEPLOYING
    ready = Replica("r1", "d1", "a", READY, T0, address="127.0.0.1:9000")
    assert lifecycle.deployment_status(built, [ready]).status == lifecycle.ACTIVE


def test_failed_is_sticky_with_its_reason() -> None:
    failed = dep(artifact_digest="sha256:ab", status=lifecycle.FAILED, status_reason="boom")
    ready = Replica("r1", "d1", "a", READY, T0, address="x:1")
    assert lifecycle.deployment_status(failed, [ready]) == lifecycle.Status(lifecycle.FAILED, "boom")
    assert lifecycle.desired_replicas(failed) == 0


def test_a_failed_build_fails_the_deployment_with_the_build_message() -> None:
    outcome = lifecycle.after_build(dep(), lifecycle.BUILD_FAILED, "", "config.yaml: unknown key 'x'")
    assert outcome.status == lifecycle.FAILED
    assert "config.yaml: unknown key 'x'" in outcome.reason


def test_a_succeeded_build_moves_to_deploying_and_repeats_change_nothing() -> None:
    outcome = lifecycle.after_build(dep(), lifecycle.BUILD_SUCCEEDED, "sha256:ab", "")
    assert (outcome.status, outcome.artifact_digest) == (lifecycle.DEPLOYING, "sha256:ab")
    again = lifecycle.after_build(dep(status=lifecycle.ACTIVE, artifact_digest="sha256:ab"),
                                  lifecycle.BUILD_SUCCEEDED, "sha256:ab", "")
    assert again.status == lifecycle.ACTIVE


def test_desired_replicas() -> None:
    assert lifecycle.desired_replicas(dep()) == 0  # still building
    assert lifecycle.desired_replicas(dep(artifact_digest="d", is_development=True, desired_replicas=5)) == 1
    published = dep(name="deployment-1", artifact_digest="d", min_replica=2, max_replica=4,
                    desired_replicas=0)
    assert lifecycle.desired_replicas(published) == 2
    assert lifecycle.desired_replicas(dep(artifact_digest="d", min_replica=0, desired_replicas=0)) == 0  # to zero
    assert lifecycle.desired_replicas(dep(artifact_digest="d", is_development=True, desired_replicas=0)) == 0
    assert lifecycle.desired_replicas(dep(artifact_digest="d", deleted=True)) == 0
    assert lifecycle.desired_replicas(dep(artifact_digest="d", active=False)) == 0


def test_scale_is_clamped_to_min_and_max() -> None:
    assert lifecycle.clamp_scale(10, 1, 3) == 3
    assert lifecycle.clamp_scale(0, 1, 3) == 1
    assert lifecycle.clamp_scale(2, 1, 3) == 2


def test_a_push_replaces_the_development_deployment() -> None:
    existing = [dep(id="old", is_development=True), dep(id="gone", is_development=True, deleted=True)]
    push = lifecycle.plan_push(existing, publish=False, environment="", deployment_name="")
    assert (push.name, push.is_development, push.replaces) == ("development", True, ("old",))


def test_published_deployments_are_numbered_and_numbers_are_not_reused() -> None:
    existing = [dep(id="a", name="deployment-1"), dep(id="b", name="deployment-3", deleted=True),
                dep(id="c", name="development", is_development=True)]
    push = lifecycle.plan_push(existing, publish=True, environment="", deployment_name="")
    assert (push.name, push.is_development, push.replaces) == ("deployment-4", False, ())


def test_an_environment_implies_publish() -> None:
    push = lifecycle.plan_push([], publish=False, environment="production", deployment_name="")
    assert (push.name, push.environment, push.is_development) == ("deployment-1", "production", False)


def test_a_taken_deployment_name_is_a_conflict() -> None:
    with pytest.raises(Conflict, match="taken"):
        lifecycle.plan_push([dep(name="v1")], publish=True, environment="", deployment_name="v1")


def test_scaled_to_zero_then_waking_up_until_a_replica_is_ready() -> None:
    zero = dep(name="deployment-1", artifact_digest="d", status=lifecycle.ACTIVE, desired_replicas=0)
    stopping = Replica("r1", "d1", "a", STARTING, T0)
    assert lifecycle.deployment_status(zero, [stopping]).status == lifecycle.SCALED_TO_ZERO
    waking = dep(name="deployment-1", artifact_digest="d", status=lifecycle.SCALED_TO_ZERO, desired_replicas=1)
    assert lifecycle.deployment_status(waking, []).status == lifecycle.WAKING_UP
    still = dep(name="deployment-1", artifact_digest="d", status=lifecycle.WAKING_UP, desired_replicas=1)
    assert lifecycle.deployment_status(still, [stopping]).status == lifecycle.WAKING_UP
    ready = Replica("r2", "d1", "a", READY, T0, address="127.0.0.1:9000")
    assert lifecycle.deployment_status(still, [ready]).status == lifecycle.ACTIVE


def test_the_autoscaler_scales_within_the_settings_and_development_within_one() -> None:
    published = dep(is_development=False, min_replica=1, max_replica=3)
    assert [lifecycle.scale_to(published, n) for n in (0, 2, 7)] == [1, 2, 3]
    development = dep(is_development=True, min_replica=0, max_replica=1)
    assert [lifecycle.scale_to(development, n) for n in (0, 1, 5)] == [0, 1, 1]


def test_only_a_deployment_scaled_to_zero_is_deactivated_for_idleness() -> None:
    assert lifecycle.idle_deactivates(dep(status=lifecycle.SCALED_TO_ZERO))
    assert not lifecycle.idle_deactivates(dep(status=lifecycle.ACTIVE))
    assert not lifecycle.idle_deactivates(dep(status=lifecycle.SCALED_TO_ZERO, active=False))


def test_only_a_failed_deployment_whose_build_succeeded_can_be_retried() -> None:
    assert lifecycle.retry_refusal(dep(status=lifecycle.FAILED, artifact_digest="sha256:ab")) == ""
    assert lifecycle.retry_refusal(dep(status=lifecycle.FAILED)) == "deployment d1's build failed: push a fixed Truss"
    assert lifecycle.retry_refusal(dep(status=lifecycle.ACTIVE, artifact_digest="sha256:ab")) == (
        "deployment d1 is ACTIVE, not FAILED: there is nothing to retry")

"""Rows to the API's messages: a deployment says why it is not serving, in every status."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kingpost import autoscaling_settings
from kingpost_scheduler import convert, lifecycle
from kingpost_scheduler.tables import DeploymentRecord


def record(status: str, status_reason: str = "") -> DeploymentRecord:
    return DeploymentRecord(
        id="dep_1", model_id="mdl_1", name="deployment-1", is_development=False, environment="",
        status=status, status_reason=status_reason, build_id="bld_1", artifact_digest="sha256:ab",
        predict_concurrency=1,
        **autoscaling_settings.as_dict(autoscaling_settings.DEFAULTS), desired_replicas=1, active=True,
        deleted=False, created_at=datetime(2025, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(("status", "stored", "reason"), [
    (lifecycle.BUILDING, "", "its build has not finished"),
    (lifecycle.DEPLOYING, "", "its first replica is starting"),
    (lifecycle.ACTIVE, "", ""),
    (lifecycle.SCALED_TO_ZERO, "", "no replica runs; the next request wakes it"),
    (lifecycle.WAKING_UP, "", "a replica is starting"),
    (lifecycle.INACTIVE, "", "deactivated; `kingpost deployments activate` brings it back"),
    (lifecycle.FAILED, "build failed: no module named 'torch'", "build failed: no module named 'torch'"),
])
def test_a_deployment_says_why_it_is_not_serving(status: str, stored: str, reason: str) -> None:
    shown = convert.deployment(record(status, stored), ready_replicas=0)
    assert (shown.status, shown.status_reason) == (status, reason)

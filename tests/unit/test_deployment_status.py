"""Deployment status: the proto enum and the names the API, database and CLI show, converted in one place."""

from __future__ import annotations

import pytest

from kingpost import deployment_status
from kingpost.v1.scheduler_pb2 import DeploymentStatus


def test_the_names_are_basetens_words_in_the_enums_order() -> None:
    assert deployment_status.ALL == (
        "BUILDING", "DEPLOYING", "ACTIVE", "SCALED_TO_ZERO", "WAKING_UP", "INACTIVE", "FAILED", "UNHEALTHY")
    assert deployment_status.SCALED_TO_ZERO == "SCALED_TO_ZERO"


def test_name_and_value_convert_both_ways() -> None:
    assert deployment_status.name(DeploymentStatus.DEPLOYMENT_STATUS_WAKING_UP) == "WAKING_UP"
    assert deployment_status.value("WAKING_UP") == DeploymentStatus.DEPLOYMENT_STATUS_WAKING_UP
    for status_name in deployment_status.ALL:
        assert deployment_status.name(deployment_status.value(status_name)) == status_name
    assert deployment_status.name(DeploymentStatus.DEPLOYMENT_STATUS_UNSPECIFIED) == ""


def test_an_unknown_name_is_refused_naming_it_and_the_known_ones() -> None:
    with pytest.raises(ValueError, match="'RUNNING' is not one of BUILDING, DEPLOYING, ACTIVE"):
        deployment_status.value("RUNNING")
    with pytest.raises(ValueError, match="'UNSPECIFIED' is not one of"):
        deployment_status.value("UNSPECIFIED")

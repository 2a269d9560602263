"""The one autoscaling-settings module: defaults, ranges, the PATCH and the stored shape."""

from __future__ import annotations

import pytest

from kingpost.autoscaling_settings import (
    ACCEPTED,
    DEFAULTS,
    UNCHANGED,
    AutoscalingSettings,
    apply_patch,
    as_dict,
    from_dict,
    updated,
    validate,
)
from kingpost.errors import InvalidArgument


def test_defaults_are_basetens_and_the_routers() -> None:
    assert as_dict(DEFAULTS) == {
        "min_replica": 0, "max_replica": 1, "autoscaling_window": 60, "scale_down_delay": 900,
        "concurrency_target": 1, "target_utilization_percentage": 70,
        "backpressure_policy": "queue", "cold_start_timeout_seconds": 300,
        "request_logging_sample_rate": 0.0, "request_logging_max_bytes": 1024}
    assert validate(DEFAULTS) is DEFAULTS


@pytest.mark.parametrize(("changes", "message"), [
    ({"max_replica": 0}, "max_replica = 0: must be 1 to 10"),
    ({"max_replica": 11}, "max_replica = 11: must be 1 to 10"),
    ({"concurrency_target": 0}, "concurrency_target = 0: must be 1 to 1000000"),
    ({"target_utilization_percentage": 101}, "target_utilization_percentage = 101: must be 1 to 100"),
    ({"autoscaling_window": 9}, "autoscaling_window = 9: must be 10 to 3600"),
    ({"scale_down_delay": -1}, "scale_down_delay = -1: must be 0 to 3600"),
    ({"cold_start_timeout_seconds": 0}, "cold_start_timeout_seconds = 0: must be 1 to 3600"),
    ({"backpressure_policy": "drop"}, "backpressure_policy = 'drop': must be one of 'queue' or 'reject'"),
    ({"request_logging_sample_rate": 1.5}, "request_logging_sample_rate = 1.5: must be 0 to 1"),
    ({"request_logging_max_bytes": 0}, "request_logging_max_bytes = 0: must be 1 to 16384"),
    ({"min_replica": 2}, "min_replica = 2: must not exceed max_replica = 1"),
    ({"max_replicas": 2}, "unknown autoscaling settings: max_replicas"),
])
def test_a_bad_value_names_the_field_the_value_and_the_range(changes: dict, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        updated(DEFAULTS, changes)
    assert message in caught.value.message


def test_every_problem_is_named_at_once_and_the_cap_is_the_callers() -> None:
    with pytest.raises(InvalidArgument, match="max_replica = 20: must be 1 to 10; autoscaling_window = 1"):
        updated(DEFAULTS, {"max_replica": 20, "autoscaling_window": 1})
    assert updated(DEFAULTS, {"max_replica": 20}, max_replica_cap=50).max_replica == 20


def test_a_patch_changes_only_what_it_names_and_says_what_changed() -> None:
    current = AutoscalingSettings(max_replica=4)
    result = apply_patch(current, {"backpressure_policy": "reject", "max_replica": 4}, is_development=False)
    assert result.status == ACCEPTED
    assert result.settings == AutoscalingSettings(max_replica=4, backpressure_policy="reject")
    assert result.message == "autoscaling settings updated: backpressure_policy = reject"
    assert apply_patch(result.settings, {"max_replica": 4}, is_development=False).status == UNCHANGED


def test_a_development_deployment_keeps_basetens_fields_but_takes_the_extensions() -> None:
    with pytest.raises(InvalidArgument, match="development deployment has fixed autoscaling settings"):
        apply_patch(DEFAULTS, {"max_replica": 2}, is_development=True)
    result = apply_patch(DEFAULTS, {"cold_start_timeout_seconds": 30, "max_replica": 1}, is_development=True)
    assert (result.status, result.settings.cold_start_timeout_seconds) == (ACCEPTED, 30)


def test_the_stored_shape_round_trips_and_old_rows_take_the_new_defaults() -> None:
    tuned = AutoscalingSettings(min_replica=1, max_replica=3, backpressure_policy="reject",
                                cold_start_timeout_seconds=5)
    assert from_dict(as_dict(tuned)) == tuned
    # An environment written before the extensions existed, with its promotion settings beside.
    stored = {"max_replica": 3, "promotion_settings": {"ramp_up_while_promoting": True}}
    assert from_dict(stored) == AutoscalingSettings(max_replica=3)
    assert from_dict(None) == DEFAULTS

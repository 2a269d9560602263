import pytest

from kingpost.errors import InvalidArgument
from kingpost.autoscaling_settings import AutoscalingSettings
from kingpost_autoscaler.settings import AutoscalerSettings


def test_defaults_are_basetens() -> None:
    assert AutoscalerSettings.load(None).autoscaling_defaults() == AutoscalingSettings()


def test_a_bad_default_names_the_key(tmp_path) -> None:
    config = tmp_path / "autoscaler.toml"
    config.write_text("default_target_utilization_percentage = 150\n")
    with pytest.raises(InvalidArgument, match="default_target_utilization_percentage"):
        AutoscalerSettings.load(config)


def test_max_below_min_is_refused_with_both_values() -> None:
    settings = AutoscalerSettings.load(None, default_min_replica=3, default_max_replica=2)
    with pytest.raises(InvalidArgument, match="max_replica = 2"):
        settings.autoscaling_defaults()

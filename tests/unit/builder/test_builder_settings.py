"""Builder settings: defaults under the kingpost home, a TOML file, precise errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kingpost.errors import InvalidArgument
from kingpost_builder.settings import BuilderSettings


def test_defaults(tmp_path: Path) -> None:
    settings = BuilderSettings.load(home=tmp_path)
    assert settings.artifacts_path == tmp_path / "artifacts"
    assert settings.max_upload_bytes == 1 << 30


def test_config_file(tmp_path: Path) -> None:
    config = tmp_path / "builder.toml"
    config.write_text(f'artifacts_dir = "{tmp_path}/store"\nmax_upload_bytes = 1000\n'
                      'scheduler_address = "127.0.0.1:7000"\n')
    settings = BuilderSettings.load(config)
    assert (settings.artifacts_path, settings.max_upload_bytes, settings.scheduler_address) == (
        tmp_path / "store", 1000, "127.0.0.1:7000")


def test_invalid_limit_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="'max_upload_bytes' = 0"):
        BuilderSettings.load(home=tmp_path, max_upload_bytes=0)


def test_artifact_store_is_a_directory_unless_nats_is_chosen(tmp_path: Path) -> None:
    assert BuilderSettings.load(home=tmp_path).artifact_store == "file"
    config = tmp_path / "builder.toml"
    config.write_text('artifact_store = "nats"\nartifact_bucket = "team_a-artifacts"\n')
    settings = BuilderSettings.load(config, home=tmp_path)
    assert (settings.artifact_store, settings.artifact_bucket) == ("nats", "team_a-artifacts")
    assert BuilderSettings.load(home=tmp_path).artifact_bucket == "kingpost-artifacts"


@pytest.mark.parametrize(("key", "value", "rule"), [
    ("artifact_store", "s3", "Input should be 'file' or 'nats'"),
    ("artifact_bucket", "my.bucket", "should match pattern"),
])
def test_invalid_artifact_store_settings_are_named(tmp_path: Path, key: str, value: str, rule: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        BuilderSettings.load(home=tmp_path, **{key: value})
    assert f"'{key}' = {value!r}" in str(e.value) and rule in str(e.value)

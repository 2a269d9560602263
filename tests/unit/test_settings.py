"""ServiceSettings: a TOML file, KINGPOST_* variables over it, and errors that say what is wrong."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kingpost.errors import InvalidArgument
from kingpost.flat_toml import to_toml
from kingpost.settings import ServiceSettings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("KINGPOST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KINGPOST_HOME", str(tmp_path / "home"))


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "service.toml"
    path.write_text(text)
    return path


def test_file_values_are_loaded(tmp_path: Path) -> None:
    config = write_config(tmp_path, 'grpc_port = 6001\nnats_url = "nats://127.0.0.1:5000"\n')
    settings = ServiceSettings.load(config)
    assert (settings.grpc_port, settings.nats_url) == (6001, "nats://127.0.0.1:5000")


def test_unknown_key_is_named(tmp_path: Path) -> None:
    config = write_config(tmp_path, "grpc_port = 6001\ngrcp_host = '0.0.0.0'\n")
    with pytest.raises(InvalidArgument) as e:
        ServiceSettings.load(config)
    assert "unknown key 'grcp_host'" in str(e.value)
    assert str(config) in str(e.value)
    assert e.value.http_status == 400


def test_bad_value_names_key_value_and_rule(tmp_path: Path) -> None:
    config = write_config(tmp_path, "grpc_port = 70000\n")
    with pytest.raises(InvalidArgument) as e:
        ServiceSettings.load(config)
    message = str(e.value)
    assert "'grpc_port'" in message
    assert "70000" in message
    assert "less than or equal to 65535" in message


def test_bad_value_from_a_variable_is_described_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KINGPOST_METRICS_PORT", "eighty")
    with pytest.raises(InvalidArgument) as e:
        ServiceSettings.load()
    message = str(e.value)
    assert "'metrics_port'" in message and "'eighty'" in message and "valid integer" in message


def test_variable_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path, 'grpc_port = 6001\nlog_level = "DEBUG"\n')
    monkeypatch.setenv("KINGPOST_GRPC_PORT", "7002")
    settings = ServiceSettings.load(config)
    assert settings.grpc_port == 7002
    assert settings.log_level == "DEBUG"  # keys the environment does not set still come from the file


def test_unrelated_kingpost_variables_are_not_unknown_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test suite and `kingpost up` set KINGPOST_* variables that no service declares.
    monkeypatch.setenv("KINGPOST_TEST_NATS_URL", "nats://127.0.0.1:1")
    assert ServiceSettings.load().nats_url == "nats://127.0.0.1:4222"


def test_missing_and_malformed_files_are_invalid_arguments(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="does not exist"):
        ServiceSettings.load(tmp_path / "absent.toml")
    with pytest.raises(InvalidArgument, match="not valid TOML"):
        ServiceSettings.load(write_config(tmp_path, "grpc_port = \n"))


def test_to_toml_round_trips_through_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KINGPOST_HOME")  # else the variable wins over the file's `home`
    values = {"grpc_port": 6003, "nats_url": 'nats://a"b\\c', "home": str(tmp_path), "log_level": "WARNING"}
    settings = ServiceSettings.load(write_config(tmp_path, to_toml(values)))
    assert settings.grpc_port == 6003
    assert settings.nats_url == 'nats://a"b\\c'
    assert settings.home == tmp_path
    assert settings.log_level == "WARNING"

"""Where clients find the platform: environment, then $KINGPOST_HOME/config.toml, then defaults."""

import os
import stat
from pathlib import Path

import pytest

from kingpost import client_config
from kingpost.client_config import ClientConfig, resolve
from kingpost.errors import InvalidArgument, Unauthenticated


def test_defaults_when_nothing_is_set():
    config = resolve({}, {})
    assert (config.url, config.grpc, config.api_key) == ("http://127.0.0.1:8080", "127.0.0.1:50051", "")


def test_file_overrides_defaults_and_environment_overrides_file():
    file = {"url": "http://file:1", "grpc": "file:2", "api_key": "kp_file"}
    assert resolve({}, file) == ClientConfig("http://file:1", "file:2", "kp_file")
    env = {"KINGPOST_URL": "http://env:3/", "KINGPOST_API_KEY": "kp_env"}
    config = resolve(env, file)
    # Each value on its own: grpc still comes from the file; the URL loses its trailing slash.
    assert (config.url, config.grpc, config.api_key) == ("http://env:3", "file:2", "kp_env")


def test_missing_key_tells_what_to_do():
    with pytest.raises(Unauthenticated, match=r"kingpost up.*KINGPOST_API_KEY"):
        resolve({}, {}).require_api_key()


def test_a_non_string_value_names_the_key(tmp_path):
    with pytest.raises(InvalidArgument, match="'grpc'"):
        resolve({}, {"grpc": 50051}, config_path=tmp_path / "config.toml")


def test_load_reads_config_toml_under_kingpost_home(tmp_path: Path):
    client_config.write(tmp_path, ClientConfig("http://127.0.0.1:9000", "127.0.0.1:9001", "kp_x_y"))
    config = client_config.load({"KINGPOST_HOME": str(tmp_path)})
    assert (config.url, config.grpc, config.api_key) == ("http://127.0.0.1:9000", "127.0.0.1:9001", "kp_x_y")
    # It holds the admin key: only its owner may read it.
    mode = stat.S_IMODE(os.stat(tmp_path / "config.toml").st_mode)
    assert mode == 0o600


def test_broken_config_file_is_a_clear_error(tmp_path: Path):
    (tmp_path / "config.toml").write_text("url = \n")
    with pytest.raises(InvalidArgument, match="config.toml is not valid TOML"):
        client_config.load({"KINGPOST_HOME": str(tmp_path)})

"""Router settings: the documented defaults, and a body limit the gRPC server can actually receive."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kingpost.errors import InvalidArgument
from kingpost_router.settings import RouterSettings


def test_defaults() -> None:
    settings = RouterSettings.load()
    assert settings.router_id == f"router-{socket.gethostname()}"
    assert settings.request_timeout_seconds == 600
    assert settings.max_body_bytes == 100 * 1024 * 1024


def test_a_config_file_sets_the_fields(tmp_path: Path) -> None:
    config = tmp_path / "router.toml"
    config.write_text('scheduler_address = "10.0.0.5:7001"\nrouter_id = "router-a"\nmax_body_bytes = 1024\n')
    settings = RouterSettings.load(config)
    assert (settings.scheduler_address, settings.router_id, settings.max_body_bytes) == (
        "10.0.0.5:7001", "router-a", 1024)


def test_a_body_limit_beyond_the_grpc_message_limit_is_refused_by_name() -> None:
    with pytest.raises(InvalidArgument, match="'max_body_bytes' = 1073741824: .*gRPC message limit"):
        RouterSettings.load(max_body_bytes=1 << 30)


def test_reading_envoys_stats_is_off_by_default_and_a_bad_address_is_refused_by_name() -> None:
    assert RouterSettings.load().envoy_admin_address == ""
    assert RouterSettings.load(envoy_admin_address="127.0.0.1:9901").envoy_admin_address == "127.0.0.1:9901"
    with pytest.raises(InvalidArgument, match="'envoy_admin_address' = 'localhost': .*not 'host:port'"):
        RouterSettings.load(envoy_admin_address="localhost")

"""gRPC keepalive: a server never refuses the pings a kingpost client may be configured to send."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kingpost import keepalive
from kingpost.errors import InvalidArgument
from kingpost.settings import ServiceSettings


@pytest.mark.parametrize("client_seconds", [keepalive.MIN_SECONDS, 1.5, keepalive.DEFAULT_SECONDS])
@pytest.mark.parametrize("server_seconds", [keepalive.MIN_SECONDS, keepalive.DEFAULT_SECONDS, 600.0])
def test_any_server_accepts_the_pings_of_any_client(client_seconds: float, server_seconds: float) -> None:
    client = dict(keepalive.channel_options(client_seconds))
    server = dict(keepalive.server_options(server_seconds))
    # gRPC counts a ping that comes sooner than this after the previous one as a strike, and
    # answers the third with GOAWAY "too_many_pings": it must not count a client's regular pings.
    assert server["grpc.http2.min_ping_interval_without_data_ms"] < client["grpc.keepalive_time_ms"]
    # A quiet call (a long prediction, an idle watch) keeps being pinged, and the server lets it.
    assert client["grpc.http2.max_pings_without_data"] == 0
    assert server["grpc.http2.max_pings_without_data"] == 0


def test_the_interval_is_the_processs_own_on_both_ends() -> None:
    assert dict(keepalive.channel_options(7.0))["grpc.keepalive_time_ms"] == 7000
    assert dict(keepalive.server_options(7.0))["grpc.keepalive_time_ms"] == 7000


def test_an_interval_below_the_minimum_is_refused_naming_the_setting(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("KINGPOST_")]:
        monkeypatch.delenv(name)
    config = tmp_path / "service.toml"
    config.write_text("grpc_keepalive_seconds = 0.2\n")
    with pytest.raises(InvalidArgument, match=r"'grpc_keepalive_seconds' = 0.2: .*greater than or equal to 1"
                       ):
        ServiceSettings.load(config)
    with pytest.raises(ValueError, match=r"KINGPOST_GRPC_KEEPALIVE_SECONDS='0.2': .*at least 1"):
        keepalive.seconds_from_env({"KINGPOST_GRPC_KEEPALIVE_SECONDS": "0.2"})
    with pytest.raises(ValueError, match=r"KINGPOST_GRPC_KEEPALIVE_SECONDS='soon'"):
        keepalive.seconds_from_env({"KINGPOST_GRPC_KEEPALIVE_SECONDS": "soon"})
    assert keepalive.seconds_from_env({}) == 30.0
    assert keepalive.seconds_from_env({"KINGPOST_GRPC_KEEPALIVE_SECONDS": "2.5"}) == 2.5

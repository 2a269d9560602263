"""What the services say about their NATS connection: never the password, one line per event."""

from __future__ import annotations

import logging

import pytest

from kingpost.bus.connection import ConnectionLog, shown_url


@pytest.mark.parametrize(("url", "shown"), [
    ("nats://kingpost:s3cret@127.0.0.1:4222", "nats://kingpost:***@127.0.0.1:4222"),
    ("nats://t0ken@nats:4222", "nats://***@nats:4222"),
    ("tls://user:pa:ss@nats:4222", "tls://user:***@nats:4222"),
    ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
])
def test_a_nats_url_is_shown_without_its_secret(url: str, shown: str) -> None:
    assert shown_url(url) == shown


class Client:
    is_closed = False


async def test_an_outage_is_one_line_each_way_without_the_password(caplog: pytest.LogCaptureFixture) -> None:
    client = Client()
    callbacks = ConnectionLog("nats://kingpost:s3cret@127.0.0.1:4222", client).callbacks()  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="kingpost.bus.connection"):
        await callbacks["disconnected_cb"]()
        for _ in range(5):  # each failed reconnect attempt
            await callbacks["error_cb"](ConnectionRefusedError("connection refused"))
        await callbacks["reconnected_cb"]()
        client.is_closed = True  # the service stops: closing is not an outage
        await callbacks["disconnected_cb"]()
    assert [r.getMessage() for r in caplog.records] == [
        "lost the connection to NATS at nats://kingpost:***@127.0.0.1:4222; reconnecting",
        "reconnected to NATS at nats://kingpost:***@127.0.0.1:4222",
    ]
    assert not any(r.exc_info for r in caplog.records)

"""A NATS connection's face in the logs: its URL without the secret, and one line per lost or
restored connection (nats-py's default logs a traceback for every failed reconnect attempt)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from nats.aio.client import Client

log = logging.getLogger(__name__)


def shown_url(url: str) -> str:
    """A NATS URL as logs and errors may show it: `nats://user:***@host:port`, `nats://***@host:port`
    (a token), without the secret."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at:
        return url
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}://{user + ':' if colon else ''}***@{host}"



class ConnectionLog:
    """nats-py's callbacks for `client`, as one log line per event: its default logs a traceback for
    every failed reconnect attempt (a NATS restart filled every service's log with them).

        nc = Client()
        await nc.connect(url, ..., **ConnectionLog(url, nc).callbacks())
    """

    def __init__(self, url: str, client: Client) -> None:
        self._url = shown_url(url)
        self._client = client
        self._down = False

    async def _error(self, e: Exception) -> None:
        if not self._down:  # while reconnecting, each failed attempt says the same
            log.warning("NATS at %s: %s", self._url, str(e) or type(e).__name__)

    async def _disconnected(self) -> None:
        if not self._down and not self._client.is_closed:  # closed: this service is stopping
            self._down = True
            log.warning("lost the connection to NATS at %s; reconnecting", self._url)

    async def _reconnected(self) -> None:
        self._down = False
        log.info("reconnected to NATS at %s", self._url)

    def callbacks(self) -> dict[str, Callable[..., Awaitable[None]]]:
        return {"error_cb": self._error, "disconnected_cb": self._disconnected,
                "reconnected_cb": self._reconnected}

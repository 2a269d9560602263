"""The router's NATS client, watched: one that stays disconnected from a server that accepts
connections is wedged, and the router stops so that its supervisor starts it again.

nats-py reconnects by itself, almost always within a second of the server's return; once, in the
e2e test that kills NATS under load, a router's client never did (the other services' clients
reconnected at once). The async queue's jobs wait safely in JetStream meanwhile, but nothing takes
them, so a router whose client is wedged for `limit` seconds while the server accepts TCP
connections stops (exit, then `kingpost up` or the cluster's supervisor restarts it). While the
server itself is down nothing happens: sync inference does not need NATS and goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

from kingpost.bus.connection import shown_url
from kingpost.errors import Unavailable

log = logging.getLogger(__name__)
DEFAULT_PORT = 4222


class Connection(Protocol):
    @property
    def is_connected(self) -> bool: ...


def wedged(down_since: float | None, now: float, server_accepts: bool, limit: float) -> bool:
    """Disconnected for `limit` seconds or more from a server that is there."""
    return down_since is not None and now - down_since >= limit and server_accepts


async def accepts(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return True


async def watch_nats(nc: Connection, url: str, *, limit: float = 30.0, interval: float = 5.0,
                     clock: Callable[[], float] = time.monotonic) -> None:
    """Returns never; raises Unavailable (which stops the service) once the client is wedged."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORT
    down_since: float | None = None
    while True:
        await asyncio.sleep(interval)
        if nc.is_connected:
            down_since = None
            continue
        now = clock()
        down_since = now if down_since is None else down_since
        if now - down_since >= limit and wedged(down_since, now, await accepts(host, port), limit):
            message = (f"the NATS client has not reconnected to {shown_url(url)} in {now - down_since:.0f} s "
                       "although the server accepts connections: stopping, to be started again")
            log.error(message)
            raise Unavailable(message)

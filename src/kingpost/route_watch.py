"""Follow the scheduler's route table: the one way routers and the builder learn routes and keys.

`watch_routes` reconnects forever (with backoff) and calls `on_table` with every table the
scheduler sends, starting with the whole current one. A consumer keeps the last table in memory,
so a scheduler restart delays changes but never stops traffic.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from kingpost import rpc
from kingpost.errors import KingpostError
from kingpost.v1 import scheduler_pb2, scheduler_pb2_grpc

log = logging.getLogger(__name__)


async def watch_routes(
    scheduler_address: str,
    on_table: Callable[[scheduler_pb2.RouteTable], Awaitable[None] | None],
    *,
    watcher: str,
    internal_token: str = "",
    max_backoff: float = 2.0,
    keepalive_seconds: float | None = None,
) -> None:
    """`keepalive_seconds`: how often to ping the quiet stream (default: this process's interval)."""
    backoff = 0.05
    channel = rpc.channel(scheduler_address, keepalive_seconds=keepalive_seconds)
    stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
    try:
        while True:
            try:
                async for reply in rpc.stream(
                    stub.WatchRoutes, scheduler_pb2.WatchRoutesRequest(watcher=watcher),
                    auth=rpc.internal(internal_token),
                ):
                    backoff = 0.05
                    result = on_table(reply.table)
                    if asyncio.iscoroutine(result):
                        await result
            except KingpostError as e:
                log.info("route watch on %s interrupted (%s); reconnecting", scheduler_address, e)
            await asyncio.sleep(backoff)
            backoff = min(max_backoff, backoff * 2)
    finally:
        await channel.close()

"""The route feed: the current route table with its version, and the watchers waiting for the next.

A table is built (route_table.build_route_table, from the rows it shows) in a transaction that
changed one of those rows' tables, and only then; it gets a new version, and goes to every
`WatchRoutes` stream, only when it differs from the current one. A heartbeat that changes nothing
writes nothing, so it builds nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession

from kingpost_scheduler import metrics, store
from kingpost_scheduler.route_table import RouteTable, build_route_table

# The tables whose rows the route table shows (nodes are not among them: a replica's address is).
SHOWN = frozenset({"models", "deployments", "environments", "replicas", "api_keys", "chains", "chain_deployments",
                   "webhook_secrets"})


def shows_any(changed_tables: frozenset[str]) -> bool:
    return not SHOWN.isdisjoint(changed_tables)


async def build(session: AsyncSession) -> RouteTable:
    """The route table of what `session` sees (inside a transaction: including its changes)."""
    metrics.ROUTE_TABLE_BUILDS.inc()
    return build_route_table(*await store.route_inputs(session))


class RouteFeed:
    """The current route table with a version, and a condition watchers wait on."""

    def __init__(self) -> None:
        self.table: RouteTable | None = None
        # Versions start at the wall clock in ms, so they keep rising across scheduler restarts.
        self.version = int(time.time() * 1000)
        self._changed = asyncio.Condition()

    async def update(self, table: RouteTable) -> bool:
        """Make `table` current with a new version, unless it equals the current one."""
        if table == self.table:
            return False
        async with self._changed:
            self.table = table
            self.version += 1
            metrics.ROUTE_TABLE_VERSION.set(self.version)
            self._changed.notify_all()
        return True

    async def watch(self) -> AsyncIterator[tuple[int, RouteTable]]:
        """The current table at once, then each new one (intermediate versions may be skipped)."""
        sent = 0
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: self.table is not None and self.version > sent)
                version, table = self.version, self.table
            sent = version
            assert table is not None
            yield version, table

"""The scheduler's control plane, wired: writes that end with a reconcile pass, and the loop of timers.

    handlers, events, heartbeats ─▶ write(change) ─▶ Transactions (one writer, to the end):
        change; the reconcile pass (reconciler.py); the route table, built when the transaction
        changed a table it shows (route_feed.py) ─▶ commit ─▶ the table to its watchers (when it
        differs), the pass's commands to the dispatcher (dispatch.py), its facts to heartbeats.py

The database changes only through `write` (the scheduler is its only writer), so between writes
the last pass's view is the database's. `run` ticks every `interval` (reconcile_interval_seconds)
and runs a pass only when time alone made one due: a node gone quiet, a start timeout, a drain, a
canary's stage (timers.py); otherwise it sends again the agent calls that failed, and writes the
nodes' last-seen times in their batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, overload

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kingpost.auth import KeyCache, key_digest, key_prefix
from kingpost.errors import KingpostError
from kingpost_scheduler import db, promotion, route_feed, store
from kingpost_scheduler.clients import AgentCommands
from kingpost_scheduler.dispatch import Dispatcher
from kingpost_scheduler.events import Events
from kingpost_scheduler.heartbeats import Heartbeats
from kingpost_scheduler.placement import Overcommit
from kingpost_scheduler.reconciler import Reconciler, Settled
from kingpost_scheduler.route_feed import RouteFeed
from kingpost_scheduler.route_table import RouteTable
from kingpost_scheduler.transactions import Transactions

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Control:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        agents: AgentCommands,
        node_timeout: timedelta = timedelta(seconds=15),
        start_timeout: timedelta = timedelta(seconds=300),
        interval: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
        drain: timedelta = promotion.DRAIN,
        overcommit: Overcommit = Overcommit(),
    ) -> None:
        self.clock = clock
        self.interval = interval
        self.keys = KeyCache()
        self.routes = RouteFeed()
        self.transactions = Transactions(sessions)
        self.reconciler = Reconciler(node_timeout=node_timeout, start_timeout=start_timeout, drain=drain,
                                     overcommit=overcommit)
        self.dispatcher = Dispatcher(agents, self.write, clock)
        self.events = Events(self.write, clock)
        self.heartbeats = Heartbeats(self.transactions, self.write, clock, node_timeout=node_timeout,
                                     started_at=clock(), stop_strays=self._stop_strays)
        self._next_due: datetime | None = None

    @property
    def agents(self) -> AgentCommands:
        return self.dispatcher.agents

    async def _stop_strays(self, address: str, replica_ids: Sequence[str]) -> None:
        """StopReplica for replicas a node runs that the scheduler did not place there (heartbeats.py)."""
        for replica_id in replica_ids:
            await self.dispatcher.agents.stop_replica(address, replica_id)

    @overload
    async def write(self, doing: str, change: Callable[[AsyncSession], Awaitable[T]]) -> T: ...

    @overload
    async def write(self, doing: str, change: Callable[[AsyncSession], Awaitable[T]],
                    reply: Callable[[AsyncSession, T], Awaitable[R]]) -> R: ...

    async def write(self, doing: str, change: Callable[[AsyncSession], Awaitable[Any]],
                    reply: Callable[[AsyncSession, Any], Awaitable[Any]] | None = None) -> Any:
        """`change`, then the reconcile pass, in one transaction; `reply(session, change's result)`,
        when given, reads the outcome in it too (after the pass) and is what this returns."""

        async def transaction(session: AsyncSession) -> tuple[Any, Settled, RouteTable | None]:
            result = await change(session)
            settled = await self.reconciler.run(session, self.clock(), self.heartbeats.nodes())
            rebuild = self.routes.table is None or route_feed.shows_any(db.changed_tables(session))
            table = await route_feed.build(session) if rebuild else None
            return (await reply(session, result) if reply is not None else result), settled, table

        async def committed(outcome: tuple[Any, Settled, RouteTable | None]) -> None:
            _, settled, table = outcome
            if table is not None:
                self.keys.replace(table.api_key_sha256, dict(table.invoke_only_keys))
                await self.routes.update(table)
            self._next_due = settled.next_due
            self.heartbeats.after_pass(settled.live_nodes, settled.replicas_by_node)
            self.dispatcher.send(settled.commands)

        result, _, _ = await self.transactions.write(doing, transaction, then=committed)
        return result

    async def read(self, doing: str, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        return await self.transactions.read(doing, fn)

    async def start(self, admin_key: str = "") -> None:
        """Before serving: learn the stored nodes (a pass without them would think every replica
        gone), store the admin key's digest (named "admin") unless a key with that digest exists, and
        run the first pass, which loads the first route table and so the valid keys."""
        self.heartbeats.load(await self.read("loading nodes", store.all_nodes))

        async def admin(session: AsyncSession) -> None:
            digest = key_digest(admin_key)
            if admin_key and await store.api_key_by_digest(session, digest) is None:
                await store.add_api_key(session, prefix=key_prefix(admin_key), name="admin", sha256=digest,
                                        now=self.clock())

        await self.write("starting", admin)

    async def run(self) -> None:
        """Tick every `interval` until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.tick()
            except KingpostError as e:
                log.warning("reconcile pass failed: %s", e)

    async def tick(self) -> None:
        """A pass when one is due (else the agent calls that failed, again); last-seen times."""
        now = self.clock()
        quiet = self.heartbeats.gone_quiet(now)
        if quiet:
            log.info("nodes %s sent no heartbeat for %s", quiet, self.heartbeats.node_timeout)
        if quiet or (self._next_due is not None and now >= self._next_due):
            await self.write("reconciling", _nothing)
        else:
            self.dispatcher.send()
        await self.heartbeats.persist_due(now)

    async def reconcile_once(self) -> None:
        """One pass and the agent calls it decides, awaited to the end (for tools and tests)."""
        await self.write("reconciling", _nothing)
        await self.dispatcher.finish()

    async def close(self, timeout: float = 30.0) -> None:
        """Cancel the agent calls in flight, write the last-seen times, let transactions commit."""
        await self.dispatcher.close()
        try:
            await self.heartbeats.persist_all()
        except KingpostError as e:
            log.warning("last-seen times not stored: %s", e)
        await self.transactions.close(timeout)


async def _nothing(_session: AsyncSession) -> None:
    return None

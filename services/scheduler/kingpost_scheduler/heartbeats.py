"""Node heartbeats (`kp.node.<id>`), kept in memory; the database hears only what they change.

Each node's last heartbeat time lives here. A heartbeat becomes a write (and so a reconcile pass)
only when it changes something (liveness.news: a node to store, a node the last pass did not count
live) or its node no longer lists a replica we placed there (placement.missing_from_heartbeat,
checked against the last pass's replicas and again in the write). The control loop's tick asks
`gone_quiet` for nodes past the node timeout, and `persist_due` writes last-seen times in a batch.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from kingpost.v1 import events_pb2
from kingpost_scheduler import facts, liveness, metrics, placement, records, store
from kingpost_scheduler.liveness import NodeReport
from kingpost_scheduler.tables import NodeRecord
from kingpost_scheduler.transactions import Transactions

log = logging.getLogger(__name__)

# A replica whose state changed this recently may be newer than the heartbeat that omits it.
HEARTBEAT_GRACE = timedelta(seconds=3)

Write = Callable[[str, Callable[[AsyncSession], Awaitable[None]]], Awaitable[None]]


def report_of(beat: events_pb2.NodeHeartbeat) -> NodeReport:
    return NodeReport(id=beat.node_id, address=beat.address, cpu_count=beat.cpu_count,
                      memory_bytes=beat.memory_bytes, gpus=tuple((g.name, g.memory_bytes) for g in beat.gpus))


class Heartbeats:
    def __init__(self, transactions: Transactions, write: Write, clock: Callable[[], datetime], *,
                 node_timeout: timedelta, started_at: datetime) -> None:
        self._transactions = transactions
        self._write = write
        self._clock = clock
        self.node_timeout = node_timeout
        self.persist_every = node_timeout / liveness.PERSIST_FRACTION
        self._started_at = started_at
        self.last_seen: dict[str, datetime] = {}
        self._reports: dict[str, NodeReport] = {}  # each node's latest description
        self._stored: dict[str, NodeReport] = {}  # ... and the one in the database
        self._persisted: dict[str, datetime] = {}  # last_seen as the database holds it
        self._last_batch = started_at
        # From the last reconcile pass.
        self._live: frozenset[str] = frozenset()
        self._replicas: Mapping[str, tuple[facts.Replica, ...]] = {}
        # Each node's agent's /metrics (host:port), from its latest heartbeat; not stored.
        self._metrics: dict[str, str] = {}

    def load(self, nodes: Sequence[NodeRecord]) -> None:
        """The nodes the database knows, as the scheduler starts."""
        for n in nodes:
            self._reports[n.id] = self._stored[n.id] = records.node_report(n)
            self.last_seen[n.id] = self._persisted[n.id] = n.last_seen

    def nodes(self) -> list[facts.Node]:
        """Every known node with its latest heartbeat, for the reconcile pass."""
        return [facts.Node(r.id, r.address, self.last_seen[r.id]) for r in self._reports.values()]

    def metrics_addresses(self) -> dict[str, str]:
        """node id → its agent's /metrics, for the nodes heard from within the node timeout."""
        recent = self._clock() - self.node_timeout
        return {node: address for node, address in self._metrics.items()
                if address and self.last_seen.get(node, recent) > recent}

    def after_pass(self, live: frozenset[str], replicas: Mapping[str, tuple[facts.Replica, ...]]) -> None:
        self._live, self._replicas = live, replicas

    async def on_heartbeat(self, beat: events_pb2.NodeHeartbeat) -> None:
        if not beat.node_id or not beat.address:
            metrics.EVENTS.labels("heartbeat", "ignored").inc()
            return
        now = self._clock()
        report = report_of(beat)
        self.last_seen[report.id], self._reports[report.id] = now, report
        self._metrics[report.id] = beat.metrics_address
        news = liveness.news(report, self._stored.get(report.id), report.id in self._live)
        gone = placement.missing_from_heartbeat(beat.replica_ids, self._replicas.get(report.id, ()), now,
                                                HEARTBEAT_GRACE, settled_before=self._started_at)
        if news.any or gone:
            await self._transactions.to_the_end(self._apply(report, tuple(beat.replica_ids), news, now))
        metrics.EVENTS.labels("heartbeat", "ok").inc()

    async def _apply(self, report: NodeReport, reported: tuple[str, ...], news: liveness.News,
                     now: datetime) -> None:
        async def apply(session: AsyncSession) -> None:
            if news.store:
                await store.upsert_node(session, report, now)
            ours = [records.replica_facts(r) for r in await store.replicas_on_node(session, report.id)]
            gone = placement.missing_from_heartbeat(reported, ours, now, HEARTBEAT_GRACE,
                                                    settled_before=self._started_at)
            if gone:
                log.info("node %s no longer runs %s; replacing them", report.id, gone)
                await store.delete_replicas(session, gone)

        await self._write(f"applying heartbeat of {report.id}", apply)
        if news.store:
            self._stored[report.id], self._persisted[report.id] = report, now

    def gone_quiet(self, now: datetime) -> list[str]:
        """Nodes the last pass counted live that have not been heard from for the node timeout."""
        return liveness.gone_quiet(self.last_seen, self._live, now, self.node_timeout)

    async def persist_due(self, now: datetime) -> None:
        """Write the last-seen times that moved, in one batch, at most every `persist_every`."""
        await self._persist(now, self.persist_every)

    async def persist_all(self) -> None:
        """Write every moved last-seen time now (as the scheduler stops)."""
        await self._persist(self._clock(), timedelta(0))

    async def _persist(self, now: datetime, every: timedelta) -> None:
        if now - self._last_batch < every:
            return
        self._last_batch = now
        due = liveness.to_persist(self.last_seen, self._persisted)
        if due:
            # No reconcile pass: the pass reads last-seen times from memory, not from these rows.
            await self._transactions.write("storing when nodes were last seen",
                                           lambda session: store.set_last_seen(session, due))
            self._persisted.update(due)

"""Node heartbeats (`kp.node.<id>`), kept in memory; the database hears only what they change.

Each node's last heartbeat time lives here. A heartbeat becomes a write (and so a reconcile pass)
only when it changes something (liveness.news: a node to store, a node the last pass did not count
live) or its node no longer lists a replica we placed there (placement.missing_from_heartbeat,
checked against the last pass's replicas and again in the write). The control loop's tick asks
`gone_quiet` for nodes past the node timeout, and `persist_due` writes last-seen times in a batch.

A heartbeat that lists a replica the scheduler does not have on that node (a node back from a
network partition after it was counted lost, whose replicas were placed elsewhere meanwhile) gets
that replica stopped (`stop_strays`: StopReplica, idempotent), checked against the database first:
an orphan runner would hold GPUs the scheduler has given to another replica.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from kingpost.errors import KingpostError
from kingpost.v1 import events_pb2
from kingpost_scheduler import facts, liveness, metrics, placement, records, store
from kingpost_scheduler.liveness import NodeReport
from kingpost_scheduler.tables import NodeRecord
from kingpost_scheduler.transactions import Transactions

log = logging.getLogger(__name__)

# A replica whose state changed this recently may be newer than the heartbeat that omits it.
HEARTBEAT_GRACE = timedelta(seconds=3)

Write = Callable[[str, Callable[[AsyncSession], Awaitable[None]]], Awaitable[None]]
StopStrays = Callable[[str, Sequence[str]], Awaitable[None]]  # (agent address, replica ids)


def report_of(beat: events_pb2.NodeHeartbeat) -> NodeReport:
    return NodeReport(id=beat.node_id, address=beat.address, cpu_count=beat.cpu_count,
                      memory_bytes=beat.memory_bytes, gpus=tuple((g.name, g.memory_bytes) for g in beat.gpus),
                      name=beat.name, labels=tuple(sorted(beat.labels.items())))


class Heartbeats:
    def __init__(self, transactions: Transactions, write: Write, clock: Callable[[], datetime], *,
                 node_timeout: timedelta, started_at: datetime, stop_strays: StopStrays | None = None) -> None:
        self._transactions = transactions
        self._stop_strays = stop_strays
        self._passed = False  # a reconcile pass has run: `_replicas` says what each node should run
        self._stopping: set[asyncio.Task[None]] = set()
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
        self.draining: set[str] = set()  # nodes being drained (`kingpost nodes drain`)
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
            if n.draining:
                self.draining.add(n.id)

    def nodes(self) -> list[facts.Node]:
        """Every known node with its latest heartbeat and what it reported, for the reconcile pass."""
        return [records.report_facts(r, self.last_seen[r.id], draining=r.id in self.draining)
                for r in self._reports.values()]

    def report(self, node_id: str) -> NodeReport | None:
        return self._reports.get(node_id)

    def joined(self, report: NodeReport, now: datetime) -> None:
        """A node that joins is heard from now (before it is stored, so the write's pass counts it)."""
        self.last_seen[report.id], self._reports[report.id] = now, report

    def stored(self, report: NodeReport, now: datetime) -> None:
        self._stored[report.id], self._persisted[report.id] = report, now

    def forget(self, node_id: str) -> None:
        """A removed node: nothing of it stays (a heartbeat from it later makes it known again)."""
        for known in (self.last_seen, self._reports, self._stored, self._persisted, self._metrics):
            known.pop(node_id, None)
        self.draining.discard(node_id)

    def metrics_addresses(self) -> dict[str, str]:
        """node id → its agent's /metrics, for the nodes heard from within the node timeout."""
        recent = self._clock() - self.node_timeout
        return {node: address for node, address in self._metrics.items()
                if address and self.last_seen.get(node, recent) > recent}

    def after_pass(self, live: frozenset[str], replicas: Mapping[str, tuple[facts.Replica, ...]]) -> None:
        self._live, self._replicas, self._passed = live, replicas, True

    async def on_heartbeat(self, beat: events_pb2.NodeHeartbeat) -> None:
        if not beat.node_id or not beat.address:
            metrics.EVENTS.labels("heartbeat", "ignored").inc()
            return
        now = self._clock()
        report = report_of(beat)
        self.last_seen[report.id], self._reports[report.id] = now, report
        self._metrics[report.id] = beat.metrics_address
        news = liveness.news(report, self._stored.get(report.id), report.id in self._live)
        ours = self._replicas.get(report.id, ())
        gone = placement.missing_from_heartbeat(beat.replica_ids, ours, now, HEARTBEAT_GRACE,
                                                settled_before=self._started_at)
        known = {r.id for r in ours}
        strays = self._passed and self._stop_strays is not None and any(r not in known for r in beat.replica_ids)
        if news.any or gone or strays:
            await self._transactions.to_the_end(self._apply(report, tuple(beat.replica_ids), news, now))
        metrics.EVENTS.labels("heartbeat", "ok").inc()

    async def _apply(self, report: NodeReport, reported: tuple[str, ...], news: liveness.News,
                     now: datetime) -> None:
        strays: list[str] = []

        async def apply(session: AsyncSession) -> None:
            if news.store:
                await store.upsert_node(session, report, now)
            ours = [records.replica_facts(r) for r in await store.replicas_on_node(session, report.id)]
            gone = placement.missing_from_heartbeat(reported, ours, now, HEARTBEAT_GRACE,
                                                    settled_before=self._started_at)
            if gone:
                log.info("node %s no longer runs %s; replacing them", report.id, gone)
                await store.delete_replicas(session, gone)
            mine = {r.id for r in ours}
            strays[:] = sorted(r for r in reported if r not in mine)

        await self._write(f"applying heartbeat of {report.id}", apply)
        if news.store:
            self._stored[report.id], self._persisted[report.id] = report, now
        if strays and self._passed and self._stop_strays is not None:
            log.info("node %s runs %s, which the scheduler did not place there (or placed elsewhere "
                     "while the node was lost): stopping them", report.id, strays)
            # Not awaited: an agent that does not answer must not hold up the heartbeats behind it.
            task = asyncio.create_task(self._stop(report, strays))
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    async def _stop(self, report: NodeReport, strays: list[str]) -> None:
        assert self._stop_strays is not None
        try:
            await self._stop_strays(report.address, strays)
        except KingpostError as e:  # the next heartbeat lists them again: tried again then
            log.warning("stopping %s on %s failed: %s", strays, report.id, e)

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

"""The facts the scheduler consumes from JetStream: builds finishing and replicas changing state.

Each event is one write (its reconcile pass follows in the same transaction); each handler is
idempotent, so a redelivered event changes nothing. Heartbeats are heartbeats.py's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from kingpost.v1 import events_pb2
from kingpost_scheduler import facts, metrics, records, store
from kingpost_scheduler.clients import BuildInfo, build_state_name
from kingpost_scheduler.tables import ReplicaRecord

log = logging.getLogger(__name__)

Write = Callable[[str, Callable[[AsyncSession], Awaitable[None]]], Awaitable[None]]


class Events:
    def __init__(self, write: Write, clock: Callable[[], datetime]) -> None:
        self._write = write
        self._clock = clock
        # Latest BuildEvent per build: covers an event that lands between GetBuild and the insert.
        self._builds: dict[str, BuildInfo] = {}

    def known_build(self, build_id: str) -> BuildInfo | None:
        return self._builds.get(build_id)

    def newest(self, looked_up: BuildInfo) -> BuildInfo:
        """GetBuild's answer, unless a BuildEvent already told us the build finished."""
        from_event = self._builds.get(looked_up.build_id)
        if from_event is not None and from_event.finished and not looked_up.finished:
            return BuildInfo(looked_up.build_id, from_event.state, from_event.artifact_digest,
                             from_event.message, looked_up.predict_concurrency)
        return looked_up

    async def on_build_event(self, event: events_pb2.BuildEvent) -> None:
        info = BuildInfo(event.build_id, build_state_name(event.state), event.artifact_digest, event.message)
        if info.finished or event.build_id not in self._builds:
            self._builds[event.build_id] = info

        async def apply(session: AsyncSession) -> None:
            for d in await store.deployments_for_build(session, event.build_id):
                records.apply_build(d, info)

        await self._write(f"applying build {event.build_id}", apply)
        metrics.EVENTS.labels("build", "ok").inc()

    async def on_replica_event(self, event: events_pb2.ReplicaEvent) -> None:
        async def apply(session: AsyncSession) -> None:
            replica = await store.get_replica(session, event.replica_id)
            if replica is None or replica.state == facts.STOPPING:
                return  # not ours, or on its way out: nothing to learn
            now = self._clock()
            if event.state == events_pb2.REPLICA_STATE_READY and event.address:
                if replica.state in (facts.PENDING, facts.STARTING):
                    _cold_start(replica, now)
                await store.set_replica_state(session, replica, facts.READY, now, address=event.address)
            elif event.state == events_pb2.REPLICA_STATE_FAILED:
                await store.set_replica_state(session, replica, facts.FAILED, now,
                                              message=event.message or f"replica {replica.id} failed")
            elif event.state == events_pb2.REPLICA_STATE_STOPPED:
                await store.delete_replicas(session, [replica.id])
            elif event.state == events_pb2.REPLICA_STATE_STARTING and replica.state == facts.PENDING:
                await store.set_replica_state(session, replica, facts.STARTING, now)

        await self._write(f"applying replica event for {event.replica_id}", apply)
        metrics.EVENTS.labels("replica", "ok").inc()


def _cold_start(replica: ReplicaRecord, now: datetime) -> None:
    """Log and export a replica's cold start as the scheduler saw it: `schedule` from its placement
    to the agent's STARTING (the agent's own histogram splits the rest into fetch, process, load)."""
    total = (now - replica.created_at).total_seconds()
    starting = replica.state == facts.STARTING
    schedule = (replica.updated_at - replica.created_at).total_seconds() if starting else 0.0
    metrics.COLD_START_SECONDS.labels("schedule").observe(schedule)
    metrics.COLD_START_SECONDS.labels("total").observe(total)
    metrics.DEPLOYMENT_REPLICAS.cold_start(replica.deployment_id)
    log.info("cold start of deployment %s replica %s: %.2f s (schedule %.2f s, start and load %.2f s)",
             replica.deployment_id, replica.id, total, schedule, total - schedule)

"""The facts the scheduler consumes from JetStream: builds finishing and replicas changing state.

Each event is one write (its reconcile pass follows in the same transaction); each handler is
idempotent, so a redelivered event changes nothing. Heartbeats are heartbeats.py's.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from kingpost.v1 import events_pb2
from kingpost_scheduler import facts, healing, metrics, records, store
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
            return dataclasses.replace(looked_up, state=from_event.state, artifact_digest=from_event.artifact_digest,
                                       message=from_event.message, cpu=from_event.cpu or looked_up.cpu,
                                       memory=from_event.memory or looked_up.memory,
                                       accelerator=from_event.accelerator or looked_up.accelerator)
        return looked_up

    async def on_build_event(self, event: events_pb2.BuildEvent) -> None:
        info = BuildInfo(event.build_id, build_state_name(event.state), event.artifact_digest, event.message,
                         cpu=event.cpu, memory=event.memory, accelerator=event.accelerator)
        if info.finished or event.build_id not in self._builds:
            self._builds[event.build_id] = info

        async def apply(session: AsyncSession) -> None:
            for d in await store.deployments_for_build(session, event.build_id):
                records.apply_build(d, info)

        await self._write(f"applying build {event.build_id}", apply)
        metrics.EVENTS.labels("build", "ok").inc()

    async def on_replica_event(self, event: events_pb2.ReplicaEvent) -> None:
        report = report_of(event)

        async def apply(session: AsyncSession) -> None:
            replica = await store.get_replica(session, event.replica_id)
            change = healing.after_report(records.replica_facts(replica) if replica else None, report)
            if replica is None or change is None:
                return
            if change.forget:
                await store.delete_replicas(session, [replica.id])
                return
            now = self._clock()
            if change.cold_start:
                _cold_start(replica, now)
            if change.state == facts.RESTARTING and replica.state != facts.RESTARTING:
                log.warning("deployment %s replica %s: its runner ended (restart %d%s): %s",
                            replica.deployment_id, replica.id, change.restarts or 0,
                            ", crash-looping" if change.crash_looping else "",
                            healing.tail(change.message or "", 0))
            records.apply_replica_change(replica, change, now)
            await session.flush()

        await self._write(f"applying replica event for {event.replica_id}", apply)
        metrics.EVENTS.labels("replica", "ok").inc()


def report_of(event: events_pb2.ReplicaEvent) -> healing.Report:
    """The event as healing.py reads it; a state this scheduler does not know (a newer agent's)
    is UNSPECIFIED, which changes nothing."""
    known = event.state in events_pb2.ReplicaState.values()
    return healing.Report(
        state=events_pb2.ReplicaState.Name(event.state if known else 0).removeprefix("REPLICA_STATE_"),
        address=event.address, http_address=event.http_address, message=event.message, restarts=event.restarts,
        at=event.at.ToDatetime(UTC) if event.HasField("at") else None,
        next_restart_at=event.next_restart_at.ToDatetime(UTC) if event.HasField("next_restart_at") else None)


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

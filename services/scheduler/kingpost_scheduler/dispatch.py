"""Dispatch: StartReplica and StopReplica to the nodes' agents, sent until acknowledged.

The commands are the last reconcile pass's (`reconcile.commands`: every PENDING and STOPPING
replica); each write's pass hands over a fresh list, and the control loop's tick sends again what
is not in flight (a call that failed for want of the agent is retried so). An acknowledged start
moves the replica to STARTING and a stop forgets it, each in a write of its own; an agent that
understood and refused (a bad digest, say) fails the replica, since retrying cannot help.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from kingpost.errors import DeadlineExceeded, InvalidArgument, KingpostError, Unavailable
from kingpost.v1 import agent_pb2
from kingpost_scheduler import facts, metrics, store
from kingpost_scheduler.clients import AgentCommands
from kingpost_scheduler.reconcile import Command, ReplicaSpec

log = logging.getLogger(__name__)

Write = Callable[[str, Callable[[AsyncSession], Awaitable[None]]], Awaitable[None]]


class Dispatcher:
    def __init__(self, agents: AgentCommands, write: Write, clock: Callable[[], datetime]) -> None:
        self.agents = agents
        # deployment id → the secrets its replicas get (replica_secrets.ReplicaSecrets); None: none.
        self.secrets: Callable[[str], Awaitable[Mapping[str, str]]] | None = None
        self._write = write
        self._clock = clock
        self._commands: tuple[Command, ...] = ()
        self._inflight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, commands: tuple[Command, ...] | None = None) -> None:
        """Send each command (the last pass's, unless new ones are given) that has no call in flight."""
        if commands is not None:
            self._commands = commands
        for command in self._commands:
            if command.replica_id in self._inflight:
                continue
            self._inflight.add(command.replica_id)
            call = self._stop(command) if command.start is None else self._start(command, command.start)
            task = asyncio.create_task(call)
            self._tasks.add(task)
            task.add_done_callback(self._finished(command.replica_id))

    def _finished(self, replica_id: str) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            self._inflight.discard(replica_id)

        return done

    async def _start(self, command: Command, spec: ReplicaSpec) -> None:
        request = agent_pb2.StartReplicaRequest(
            replica_id=command.replica_id, deployment_id=spec.deployment_id, model_id=spec.model_id,
            artifact_digest=spec.artifact_digest, environment=spec.environment, gpu_indices=command.gpus,
            request_logging_sample_rate=spec.request_logging_sample_rate,
            request_logging_max_bytes=spec.request_logging_max_bytes)
        refused: KingpostError | None = None
        try:
            if self.secrets is not None:
                request.secrets.update(await self.secrets(spec.deployment_id))
            await self.agents.start_replica(command.address, request)
        except (Unavailable, DeadlineExceeded) as e:
            metrics.AGENT_CALLS.labels("StartReplica", "error").inc()
            log.warning("StartReplica %s on %s failed (%s); will retry", command.replica_id, command.address,
                        e)
            return
        except KingpostError as e:
            # The agent understood and said no (a bad digest, say): retrying cannot help.
            metrics.AGENT_CALLS.labels("StartReplica", "refused").inc()
            refused = e
        else:
            metrics.AGENT_CALLS.labels("StartReplica", "ok").inc()

        async def record(session: AsyncSession) -> None:
            replica = await store.get_replica(session, command.replica_id)
            if replica is None or replica.state != facts.PENDING:
                return
            if refused is None:
                await store.set_replica_state(session, replica, facts.STARTING, self._clock())
            else:
                what = "the node refused to start the replica" if not isinstance(refused, InvalidArgument) \
                    else "the replica cannot start"
                await store.set_replica_state(session, replica, facts.FAILED, self._clock(),
                                              message=f"{what}: {refused}")

        await self._write("recording a started replica", record)

    async def _stop(self, command: Command) -> None:
        if command.address:
            try:
                await self.agents.stop_replica(command.address, command.replica_id)
            except KingpostError as e:
                metrics.AGENT_CALLS.labels("StopReplica", "error").inc()
                log.warning("StopReplica %s on %s failed (%s); will retry", command.replica_id,
                            command.address, e)
                return
            metrics.AGENT_CALLS.labels("StopReplica", "ok").inc()
        await self._write("forgetting a stopped replica",
                          lambda session: store.delete_replicas(session, [command.replica_id]))

    async def finish(self) -> None:
        """Wait for the calls in flight (and the writes that record them)."""
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel the calls in flight."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

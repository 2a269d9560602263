"""Assembles the scheduler: database (migrated), Control, NATS consumers, servicers and auth.

`main.py` runs it as a process; integration tests run it in-process with their own doubles for
the builder and the node agents.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import grpc

from kingpost.auth import AuthInterceptor
from kingpost.bus import Bus, subjects
from kingpost.bus.nats_bus import NatsBus
from kingpost.errors import KingpostError
from kingpost.v1 import (chains_pb2_grpc, events_pb2, management_pb2_grpc, nodes_pb2_grpc,
                         scheduler_pb2_grpc)
from kingpost_scheduler import db
from kingpost_scheduler.clients import AgentClient, AgentCommands, BuilderClient, BuildLookup
from kingpost_scheduler.control import Control, utcnow
from kingpost_scheduler.handlers.chains import ChainServicer
from kingpost_scheduler.handlers.internal import SchedulerServicer
from kingpost_scheduler.handlers.management import ManagementServicer
from kingpost_scheduler.handlers.cluster import JoinOffer, NodeServicer
from kingpost_scheduler.placement import Overcommit
from kingpost_scheduler.replica_secrets import ReplicaSecrets
from kingpost_scheduler.secret_box import SecretBox
from kingpost_scheduler.settings import SchedulerSettings

log = logging.getLogger(__name__)

PUBLIC_PREFIXES = ("/kingpost.v1.ManagementService/", "/kingpost.v1.ChainService/",
                   "/kingpost.v1.NodeService/")
# JoinNode checks the join token in its body itself.
SELF_CHECKED = ("/kingpost.v1.NodeService/JoinNode",)


@dataclass
class Scheduler:
    control: Control
    management: ManagementServicer
    scheduler: SchedulerServicer
    nodes: NodeServicer
    interceptor: AuthInterceptor
    bus: Bus
    _closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)
    chains: ChainServicer | None = None

    def register(self, server: grpc.aio.Server) -> None:
        management_pb2_grpc.add_ManagementServiceServicer_to_server(self.management, server)
        scheduler_pb2_grpc.add_SchedulerServiceServicer_to_server(self.scheduler, server)
        nodes_pb2_grpc.add_NodeServiceServicer_to_server(self.nodes, server)
        chains_pb2_grpc.add_ChainServiceServicer_to_server(
            self.chains or ChainServicer(self.control, self.management.PromoteDeployment), server)

    async def close(self) -> None:
        """In reverse order of start: NATS (its handlers finish), the control loop's calls and
        transactions, the clients, the database."""
        for closer in reversed(self._closers):
            try:
                await closer()
            except Exception:  # closing is best effort; the process is going away
                log.exception("closing the scheduler")


async def create(
    settings: SchedulerSettings,
    *,
    builds: BuildLookup | None = None,
    agents: AgentCommands | None = None,
    durable_prefix: str = "scheduler",
    clock: Callable[[], datetime] = utcnow,
) -> Scheduler:
    closers: list[Callable[[], Awaitable[Any]]] = []
    engine = db.make_engine(settings.resolved_database_url())
    closers.append(engine.dispose)
    try:
        await db.upgrade(engine)
        admin_key = settings.admin_key.get_secret_value()
        if builds is None:
            builder = BuilderClient(settings.builder_address, internal_token=settings.internal_token,
                                    api_key=admin_key)
            closers.append(builder.close)
            builds = builder
        if agents is None:
            agent_client = AgentClient(internal_token=settings.internal_token)
            closers.append(agent_client.close)
            agents = agent_client
        control = Control(
            db.session_factory(engine), agents=agents,
            node_timeout=timedelta(seconds=settings.node_timeout_seconds),
            start_timeout=timedelta(seconds=settings.replica_start_timeout_seconds),
            interval=settings.reconcile_interval_seconds, clock=clock,
            drain=timedelta(seconds=settings.demoted_drain_seconds),
            overcommit=Overcommit(cpu=settings.cpu_overcommit, memory=settings.memory_overcommit),
        )
        secret_box = SecretBox.from_settings(settings.secrets_key.get_secret_value(),
                                             settings.resolved_secrets_key_file())
        # Before the first pass: a replica started without its secrets would not read them.
        control.dispatcher.secrets = ReplicaSecrets(builds, secret_box, control.read).for_deployment
        closers.append(control.close)
        await control.start(admin_key)
        bus = await NatsBus.connect(settings.nats_url, "kingpost-scheduler")
        closers.append(bus.close)
        await bus.consume(subjects.BUILDS, f"{durable_prefix}-builds", events_pb2.BuildEvent,
                          control.events.on_build_event)
        await bus.consume(subjects.REPLICAS, f"{durable_prefix}-replicas", events_pb2.ReplicaEvent,
                          control.events.on_replica_event)

        async def on_heartbeat(beat: events_pb2.NodeHeartbeat) -> None:
            try:
                await control.heartbeats.on_heartbeat(beat)
            except KingpostError as e:  # the next heartbeat supersedes this one
                log.warning("heartbeat of %s not applied: %s", beat.node_id, e)

        await bus.subscribe(subjects.NODES, events_pb2.NodeHeartbeat, on_heartbeat)
        # Subscriptions are sent lazily: flush, so heartbeats published once we are up reach us.
        await bus.flush()
    except BaseException:
        for closer in reversed(closers):
            await closer()
        raise
    interceptor = AuthInterceptor(control.keys, public_prefixes=PUBLIC_PREFIXES,
                                  internal_token=settings.internal_token, self_checked=SELF_CHECKED)
    management = ManagementServicer(control, builds, bus, max_replica_cap=settings.max_replica_cap,
                                    metrics_targets=settings.metrics_targets, secret_box=secret_box)
    closers.append(management.router_metrics.close)
    offer = JoinOffer(
        nats_url=settings.join_nats_url or settings.nats_url, internal_token=settings.internal_token,
        builder_address=settings.join_builder_address or settings.builder_address,
        artifact_store=settings.join_artifact_store, artifact_bucket=settings.join_artifact_bucket,
        heartbeat_interval_seconds=min(2.0, settings.node_timeout_seconds / 5))
    nodes = NodeServicer(control, offer)
    return Scheduler(control, management, SchedulerServicer(control), nodes, interceptor, bus, closers)

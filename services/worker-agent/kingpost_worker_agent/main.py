"""`kingpost agent --config FILE`: the worker agent of one node."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import pathlib
from dataclasses import dataclass
from typing import Any

import grpc
from prometheus_client import REGISTRY

from kingpost import service
from kingpost.artifact_bucket import ArtifactBucket
from kingpost.auth import AuthInterceptor, KeyCache
from kingpost.bus.nats_bus import NatsBus
from kingpost.errors import Unavailable
from kingpost.bus.connection import shown_url
from kingpost.v1 import agent_pb2_grpc

from kingpost_worker_agent import metrics
from kingpost_worker_agent.artifacts import ArtifactStore, BuilderArtifacts, Fetcher
from kingpost_worker_agent.containment import Containment, ContainmentRequired
from kingpost_worker_agent.replica_metrics import ReplicaMetrics
from kingpost_worker_agent.heartbeat import heartbeat_loop
from kingpost_worker_agent.join import JoinRefused
from kingpost_worker_agent.join import join as join_platform
from kingpost_worker_agent.node import node_facts
from kingpost_worker_agent.ports import probe_free_port
from kingpost_worker_agent.replicas import ReplicaSupervisor
from kingpost_worker_agent.runner_users import RangeTaken
from kingpost_worker_agent.service import AgentServicer
from kingpost_worker_agent.settings import AgentSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JoinWith:
    """`kingpost agent --join HOST:PORT --token T`: the scheduler to join and the token."""

    scheduler: str
    token: str


def main(config: pathlib.Path | None, *, join: str = "", token: str = "", **overrides: Any) -> None:
    """`join`, `token`: `kingpost agent --join HOST:PORT --token T`; `overrides`: settings its other
    options set."""
    join_with = JoinWith(scheduler=join, token=token) if join else None
    settings = AgentSettings.load(config, **overrides)
    if settings.grpc_port == 0:
        # The heartbeat must name the port, so pick it here rather than let the server choose.
        settings = settings.model_copy(update={"grpc_port": probe_free_port(settings.grpc_host)})
    service.configure("agent", settings)
    # Its runners write their own lines as it does (runner_env passes KINGPOST_LOG_FORMAT on).
    os.environ["KINGPOST_LOG_FORMAT"] = settings.log_format
    service.setup_tracing("agent")
    service.run(functools.partial(run, settings, join_with))


async def run(settings: AgentSettings, join_with: JoinWith | None = None) -> None:
    facts = node_facts(settings.work_dir, settings.fake_gpus, settings.node_name, settings.labels)
    address = f"{settings.advertise_host}:{settings.grpc_port}"
    if join_with is not None:
        try:
            settings = await join_platform(settings, join_with.scheduler, join_with.token, facts, address)
        except JoinRefused as e:
            raise SystemExit(f"agent: {e}") from None
    try:
        containment = await asyncio.to_thread(
            Containment.detect, settings.work_dir, facts.node_id, runner_python=settings.runner_python,
            users=settings.runner_users, memory=settings.memory_limits, ids_start=settings.runner_ids_start,
            ids_count=settings.runner_ids_count, python_given="runner_python" in settings.model_fields_set)
    except (ContainmentRequired, RangeTaken) as e:
        raise SystemExit(f"agent: {e}") from None
    containment.report()
    bus = await NatsBus.connect(settings.nats_url, f"agent-{facts.node_id}")
    builder = BuilderArtifacts(settings.builder_address, settings.internal_token)
    fetcher: Fetcher = builder.fetch
    if settings.artifact_store == "nats":  # straight from the shared bucket: no builder needs to be up
        fetcher = (await ArtifactBucket.open(bus.js, settings.artifact_bucket)).chunks
        log.info("artifacts from the JetStream object store %r at %s",
                 settings.artifact_bucket, shown_url(settings.nats_url))
    supervisor = ReplicaSupervisor(
        node_id=facts.node_id,
        artifacts=ArtifactStore(settings.work_dir / "artifacts", fetcher),
        publisher=bus, work_dir=settings.work_dir,
        runner_python=containment.runner_python or settings.runner_python,
        advertise_host=settings.advertise_host, stop_grace_seconds=settings.stop_grace_seconds,
        standby_runners=settings.standby_runners, containment=containment,
    )
    metrics.watch_node(facts.node_id, supervisor.list)
    REGISTRY.register(ReplicaMetrics(
        lambda: [(r.spec, containment.work_area(r.spec.replica_id)) for r in supervisor.list()]))
    # Before the first heartbeat, so that it lists the runners an agent before this one left running.
    try:
        adopted = await supervisor.adopt()
    except Unavailable as e:  # another agent holds the work dir
        raise SystemExit(f"agent: {e.message}") from None
    if adopted:
        log.info("adopted %d running replica(s) from the previous agent: %s", len(adopted), adopted)
    log.info("node %s: %d CPUs, %d MiB, GPUs %s", facts.node_id, facts.cpu_count, facts.memory_bytes >> 20,
             [g.name for g in facts.gpus] or "none")

    def register(server: grpc.aio.Server) -> None:
        agent_pb2_grpc.add_AgentServiceServicer_to_server(AgentServicer(supervisor), server)

    async def heartbeats() -> None:
        await heartbeat_loop(bus, facts, address, supervisor.running_ids, settings.heartbeat_interval_seconds,
                             metrics_address=metrics.advertised(settings.advertise_host, settings.metrics_port))

    async def on_stop() -> None:
        await supervisor.shutdown()
        await builder.close()
        await bus.close()

    # AgentService is internal: no public methods, and the internal token when one is set.
    auth = AuthInterceptor(KeyCache(), public_prefixes=[], internal_token=settings.internal_token)
    await service.serve(
        name="agent", settings=settings, register=register, interceptors=[auth],
        loops=[heartbeats], on_stop=on_stop,
    )

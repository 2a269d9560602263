"""The scheduler in-process with real NATS and a real database (SQLite and PostgreSQL).

Stand-ins: a BuildService that answers GetBuild from a dict (the builder), and an AgentService
that records StartReplica/StopReplica (a node machine). The test publishes the facts the
builder and the node would publish (BuildEvent, NodeHeartbeat, ReplicaEvent) on NATS itself.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, inspect

from kingpost import rpc
from kingpost.auth import new_key
from kingpost.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated, Unavailable
from kingpost.bus.nats_bus import NatsBus
from kingpost.bus.subjects import (
    build_log_subject,
    build_subject,
    node_subject,
    replica_log_subject,
    replica_subject,
)
from kingpost.v1 import (
    agent_pb2,
    agent_pb2_grpc,
    builder_pb2,
    builder_pb2_grpc,
    events_pb2,
    management_pb2,
    management_pb2_grpc,
    scheduler_pb2,
    scheduler_pb2_grpc,
)
from kingpost_scheduler import app, db, store
from kingpost_scheduler.settings import SchedulerSettings
from kingpost_scheduler.tables import Base

T = TypeVar("T")
ADMIN_KEY = new_key()
DIGEST = "sha256:" + "ab" * 32


# --- stand-ins ----------------------------------------------------------------------------------


class BuildServiceDouble(builder_pb2_grpc.BuildServiceServicer):
    def __init__(self) -> None:
        self.builds: dict[str, builder_pb2.Build] = {}

    def add(self, state: int, *, digest: str = "", message: str = "") -> str:
        build_id = f"bld_{uuid.uuid4().hex[:10]}"
        self.builds[build_id] = builder_pb2.Build(
            build_id=build_id, state=state, artifact_digest=digest, message=message,
            truss=builder_pb2.TrussSummary(model_name="echo", predict_concurrency=3))
        return build_id

    async def GetBuild(self, request: builder_pb2.GetBuildRequest, context: grpc.aio.ServicerContext) -> Any:
        if request.build_id not in self.builds:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"build {request.build_id!r} not found")
        return builder_pb2.GetBuildResponse(build=self.builds[request.build_id])


class AgentDouble(agent_pb2_grpc.AgentServiceServicer):
    """A node: remembers what it was told to run, so its heartbeats list it."""

    def __init__(self) -> None:
        self.starts: asyncio.Queue[agent_pb2.StartReplicaRequest] = asyncio.Queue()
        self.stops: asyncio.Queue[str] = asyncio.Queue()
        self.running: set[str] = set()
        self.start_count = 0
        self.refuse = ""  # when set, StartReplica answers INVALID_ARGUMENT with this message

    async def StartReplica(self, request: agent_pb2.StartReplicaRequest, context: Any) -> Any:
        if self.refuse:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, self.refuse)
        if request.replica_id not in self.running:
            self.running.add(request.replica_id)
            self.start_count += 1
            await self.starts.put(request)
        return agent_pb2.StartReplicaResponse()

    async def StopReplica(self, request: agent_pb2.StopReplicaRequest, context: Any) -> Any:
        if request.replica_id in self.running:
            self.running.discard(request.replica_id)
            await self.stops.put(request.replica_id)
        return agent_pb2.StopReplicaResponse()


async def serve(register: Callable[[grpc.aio.Server], None], interceptors: list[Any] | None = None
                ) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server(interceptors=interceptors or [])
    register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, timeout: float = 20.0) -> T:
    """Poll `check` until it returns something truthy (a condition, not a timing assumption)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


async def next_item(queue: asyncio.Queue[T], what: str, timeout: float = 20.0) -> T:
    try:
        return await asyncio.wait_for(queue.get(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


# --- the scheduler under test --------------------------------------------------------------------


@dataclass
class Node:
    node_id: str
    address: str
    agent: AgentDouble
    server: grpc.aio.Server


@dataclass
class Harness:
    scheduler: app.Scheduler
    server: grpc.aio.Server
    address: str
    channel: grpc.aio.Channel
    management: management_pb2_grpc.ManagementServiceStub
    routes: scheduler_pb2_grpc.SchedulerServiceStub
    bus: NatsBus
    builder: BuildServiceDouble

    async def call(self, method: str, request: Any, key: str = ADMIN_KEY) -> Any:
        return await rpc.call(getattr(self.management, method), request, auth=rpc.api_key(key), attempts=1)

    async def deployment(self, model: str, deployment: str = "development") -> management_pb2.Deployment:
        reply = await self.call("GetDeployment", management_pb2.GetDeploymentRequest(
            model_id=model, deployment_id=deployment))
        return reply

    async def heartbeat(self, node: Node) -> None:
        await self.bus.publish_fast(node_subject(node.node_id), events_pb2.NodeHeartbeat(
            node_id=node.node_id, address=node.address, cpu_count=4, memory_bytes=8 << 30,
            replica_ids=sorted(node.agent.running)))
        await self.bus.flush()

    async def replica_event(self, start: agent_pb2.StartReplicaRequest, state: int, **kw: str) -> None:
        await self.bus.publish(replica_subject(start.replica_id), events_pb2.ReplicaEvent(
            replica_id=start.replica_id, deployment_id=start.deployment_id, node_id="node_a", state=state,
            **kw))

    async def build_event(self, build_id: str, state: int, digest: str = "", message: str = "") -> None:
        await self.bus.publish(build_subject(build_id), events_pb2.BuildEvent(
            build_id=build_id, state=state, artifact_digest=digest, message=message))

    async def reconcile_now(self) -> None:
        """One reconcile pass and its RPCs, run to completion (to show what does *not* happen)."""
        await self.scheduler.control.reconcile_once()


async def start_scheduler(
    settings: SchedulerSettings, builder: BuildServiceDouble, bus: NatsBus, durable_prefix: str
) -> tuple[Harness, asyncio.Task[None]]:
    scheduler = await app.create(settings, durable_prefix=durable_prefix)
    server, address = await serve(scheduler.register, [scheduler.interceptor])
    channel = rpc.channel(address)
    loop = asyncio.create_task(scheduler.control.run())
    return Harness(scheduler, server, address, channel, management_pb2_grpc.ManagementServiceStub(channel),
                   scheduler_pb2_grpc.SchedulerServiceStub(channel), bus, builder), loop


async def stop_scheduler(h: Harness, loop: asyncio.Task[None]) -> None:
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)
    await h.channel.close()
    await h.server.stop(None)
    await h.scheduler.close()


@pytest.fixture
async def builder() -> AsyncIterator[tuple[BuildServiceDouble, str]]:
    double = BuildServiceDouble()
    server, address = await serve(lambda s: builder_pb2_grpc.add_BuildServiceServicer_to_server(double, s))
    yield double, address
    await server.stop(None)


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    agent = AgentDouble()
    server, address = await serve(lambda s: agent_pb2_grpc.add_AgentServiceServicer_to_server(agent, s))
    yield Node("node_a", address, agent, server)
    await server.stop(None)


@pytest.fixture
def settings(database_url: str, nats_url: str, builder: tuple[BuildServiceDouble, str], tmp_path: Path
             ) -> SchedulerSettings:
    return SchedulerSettings(home=tmp_path, nats_url=nats_url, database_url=database_url,
                             builder_address=builder[1], admin_key=ADMIN_KEY, reconcile_interval_seconds=0.2)


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[NatsBus]:
    b = await NatsBus.connect(nats_url, "scheduler-test")
    yield b
    await b.close()


@pytest.fixture
async def harness(settings: SchedulerSettings, builder: tuple[BuildServiceDouble, str], bus: NatsBus
                  ) -> AsyncIterator[Harness]:
    h, loop = await start_scheduler(settings, builder[0], bus, f"sched-{uuid.uuid4().hex[:8]}")
    yield h
    await stop_scheduler(h, loop)


async def deploy_to_ready(h: Harness, node: Node, model: str = "echo"
                          ) -> tuple[management_pb2.CreateDeploymentResponse, agent_pb2.StartReplicaRequest]:
    build_id = h.builder.add(events_pb2.BUILD_STATE_BUILDING)
    created = await h.call("CreateDeployment", management_pb2.CreateDeploymentRequest(
        model_name=model, build_id=build_id))
    assert (created.deployment.status, created.deployment.status_reason) == (
        "BUILDING", "its build has not finished")
    await h.heartbeat(node)
    await h.build_event(build_id, events_pb2.BUILD_STATE_SUCCEEDED, DIGEST)
    start = await next_item(node.agent.starts, "StartReplica")
    await h.heartbeat(node)
    return created, start


# --- tests ---------------------------------------------------------------------------------------


async def test_push_to_active_reaches_the_route_table(harness: Harness, node: Node) -> None:
    watch = harness.routes.WatchRoutes(scheduler_pb2.WatchRoutesRequest(watcher="test"))
    first = await watch.read()
    assert first.table.version > 0

    created, start = await deploy_to_ready(harness, node)
    assert created.model.name == "echo"
    assert created.deployment.is_development and created.deployment.name == "development"
    assert (start.deployment_id, start.model_id, start.artifact_digest) == (
        created.deployment.id, created.model.id, DIGEST)
    assert (await harness.deployment("echo")).status == "DEPLOYING"

    await harness.replica_event(start, events_pb2.REPLICA_STATE_READY, address="127.0.0.1:9999",
                                http_address="127.0.0.1:9990")

    async def active() -> management_pb2.Deployment | None:
        d = await harness.deployment(created.model.id, "development")
        return d if d.status == "ACTIVE" else None

    d = await eventually(active, "the deployment to be ACTIVE")
    assert d.active_replica_count == 1 and d.predict_concurrency == 3

    while True:
        reply = await asyncio.wait_for(watch.read(), 20)
        (model,) = [m for m in reply.table.models if m.name == "echo"]
        (route,) = model.deployments
        if route.replicas:
            break
    assert reply.table.version > first.table.version
    assert model.development_deployment_id == created.deployment.id
    assert route.active and route.predict_concurrency == 3
    assert [(r.replica_id, r.address, r.http_address) for r in route.replicas] == [
        (start.replica_id, "127.0.0.1:9999", "127.0.0.1:9990")]  # the HTTP data plane's, for Envoy
    assert len(reply.table.api_key_sha256) == 1
    watch.cancel()

    models = await harness.call("ListModels", management_pb2.ListModelsRequest())
    assert [m.name for m in models.models] == ["echo"]
    status = await harness.call("GetStatus", management_pb2.GetStatusRequest())
    assert status.active_deployments == 1
    assert [(n.node_id, list(n.replica_ids)) for n in status.nodes] == [("node_a", [start.replica_id])]


async def test_a_replica_that_fails_to_load_fails_the_deployment_without_retrying(
    harness: Harness, node: Node
) -> None:
    _, start = await deploy_to_ready(harness, node)
    await harness.replica_event(start, events_pb2.REPLICA_STATE_FAILED,
                                message="ModuleNotFoundError: No module named 'torch'")

    async def failed() -> management_pb2.Deployment | None:
        d = await harness.deployment("echo")
        return d if d.status == "FAILED" else None

    d = await eventually(failed, "the deployment to be FAILED")
    assert "No module named 'torch'" in d.status_reason
    assert await next_item(node.agent.stops, "StopReplica of the failed replica") == start.replica_id
    await harness.reconcile_now()
    await harness.reconcile_now()
    assert node.agent.start_count == 1
    assert (await harness.deployment("echo")).status == "FAILED"

    # Baseten's retry (the cause fixed, a secret set, say): its replicas start again.
    retried = await harness.call("RetryDeployment", management_pb2.RetryDeploymentRequest(
        model_id="echo", deployment_id="development"))
    assert (retried.retried, retried.reason, retried.deployment.status) == (True, "", "DEPLOYING")
    again = await next_item(node.agent.starts, "StartReplica after the retry")
    assert again.replica_id != start.replica_id
    not_failed = await harness.call("RetryDeployment", management_pb2.RetryDeploymentRequest(
        model_id="echo", deployment_id="development"))
    assert not not_failed.retried and "not FAILED: there is nothing to retry" in not_failed.reason


async def test_a_build_that_already_failed_fails_the_deployment_with_its_message(harness: Harness) -> None:
    build_id = harness.builder.add(events_pb2.BUILD_STATE_FAILED,
                                   message="config.yaml: 'python_version' is bad")
    created = await harness.call("CreateDeployment", management_pb2.CreateDeploymentRequest(
        model_name="broken", build_id=build_id))
    assert created.deployment.status == "FAILED"
    assert "'python_version' is bad" in created.deployment.status_reason


async def test_a_build_that_already_succeeded_goes_straight_to_deploying(
    harness: Harness, node: Node
) -> None:
    build_id = harness.builder.add(events_pb2.BUILD_STATE_SUCCEEDED, digest=DIGEST)
    await harness.heartbeat(node)
    created = await harness.call("CreateDeployment", management_pb2.CreateDeploymentRequest(
        model_name="ready-built", build_id=build_id, publish=True))
    assert created.deployment.status == "DEPLOYING"
    assert created.deployment.name == "deployment-1" and not created.deployment.is_development
    start = await next_item(node.agent.starts, "StartReplica")
    assert start.deployment_id == created.deployment.id


async def test_a_new_push_replaces_the_development_deployment(harness: Harness, node: Node) -> None:
    first, start = await deploy_to_ready(harness, node)
    await harness.replica_event(start, events_pb2.REPLICA_STATE_READY, address="127.0.0.1:9999")
    second, second_start = await deploy_to_ready(harness, node)
    assert second.deployment.id != first.deployment.id
    assert await next_item(node.agent.stops, "StopReplica of the old replica") == start.replica_id
    assert second_start.deployment_id == second.deployment.id
    listed = await harness.call("ListDeployments", management_pb2.ListDeploymentsRequest(model_id="echo"))
    assert [d.id for d in listed.deployments] == [second.deployment.id]


async def test_unknown_model_and_deployment_are_not_found(harness: Harness) -> None:
    with pytest.raises(NotFound, match="nosuch"):
        await harness.call("GetModel", management_pb2.GetModelRequest(model_id="nosuch"))
    with pytest.raises(NotFound, match="nosuch"):
        await harness.deployment("nosuch")
    with pytest.raises(NotFound):
        await harness.call("CreateDeployment", management_pb2.CreateDeploymentRequest(
            model_name="echo", build_id="bld_unknown"))


async def test_api_keys_are_checked(harness: Harness) -> None:
    request = management_pb2.ListModelsRequest()
    with pytest.raises(Unauthenticated, match="missing API key"):
        await rpc.call(harness.management.ListModels, request, attempts=1)
    with pytest.raises(Unauthenticated, match="invalid API key"):
        await harness.call("ListModels", request, key=new_key())

    created = await harness.call("CreateApiKey", management_pb2.CreateApiKeyRequest(name="ci"))
    await harness.call("ListModels", request, key=created.api_key)
    keys = await harness.call("ListApiKeys", management_pb2.ListApiKeysRequest())
    assert sorted(k.name for k in keys.keys) == ["admin", "ci"]
    await harness.call("RevokeApiKey", management_pb2.RevokeApiKeyRequest(prefix=created.prefix))
    with pytest.raises(Unauthenticated, match="invalid API key"):
        await harness.call("ListModels", request, key=created.api_key)

    # An invoke-only key (Baseten's WORKSPACE_INVOKE) is refused management, naming what it may do.
    invoker = await harness.call("CreateApiKey", management_pb2.CreateApiKeyRequest(
        name="app", type="WORKSPACE_INVOKE"))
    assert invoker.type == "WORKSPACE_INVOKE"
    with pytest.raises(PermissionDenied, match=r"may only invoke models \(WORKSPACE_INVOKE\); ListModels needs "
                                               "a WORKSPACE_MANAGE_ALL key"):
        await harness.call("ListModels", request, key=invoker.api_key)
    with pytest.raises(InvalidArgument, match="API key type 'ROOT' is not one kingpost has"):
        await harness.call("CreateApiKey", management_pb2.CreateApiKeyRequest(name="x", type="ROOT"))


async def test_a_restart_on_the_same_database_brings_deployments_back(
    settings: SchedulerSettings, builder: tuple[BuildServiceDouble, str], bus: NatsBus, node: Node
) -> None:
    prefix = f"sched-{uuid.uuid4().hex[:8]}"
    h, loop = await start_scheduler(settings, builder[0], bus, prefix)
    try:
        created, start = await deploy_to_ready(h, node)
        await h.replica_event(start, events_pb2.REPLICA_STATE_READY, address="127.0.0.1:9999")
        await eventually(lambda: _status_is(h, "ACTIVE"), "ACTIVE before the restart")
    finally:
        await stop_scheduler(h, loop)

    node.agent.running.clear()  # the whole mesh restarted: the node runs nothing now
    h, loop = await start_scheduler(settings, builder[0], bus, prefix)
    try:
        await h.heartbeat(node)
        again = await next_item(node.agent.starts, "StartReplica after the restart")
        assert again.deployment_id == created.deployment.id and again.replica_id != start.replica_id
        await h.heartbeat(node)
        await h.replica_event(again, events_pb2.REPLICA_STATE_READY, address="127.0.0.1:9998")
        await eventually(lambda: _status_is(h, "ACTIVE"), "ACTIVE after the restart")
    finally:
        await stop_scheduler(h, loop)


async def _status_is(h: Harness, status: str) -> bool:
    return (await h.deployment("echo")).status == status


async def test_a_node_that_refuses_to_start_a_replica_fails_the_deployment(
    harness: Harness, node: Node
) -> None:
    node.agent.refuse = "artifact digest 'sha256:zz' is malformed"
    build_id = harness.builder.add(events_pb2.BUILD_STATE_SUCCEEDED, digest=DIGEST)
    await harness.heartbeat(node)
    await harness.call("CreateDeployment", management_pb2.CreateDeploymentRequest(
        model_name="refused", build_id=build_id))

    async def failed() -> management_pb2.Deployment | None:
        d = await harness.deployment("refused")
        return d if d.status == "FAILED" else None

    d = await eventually(failed, "the deployment to be FAILED")
    assert "sha256:zz' is malformed" in d.status_reason


async def test_deploying_into_production_points_the_environment_at_it_once_ready(
    harness: Harness, node: Node
) -> None:
    build_id = harness.builder.add(events_pb2.BUILD_STATE_BUILDING)
    created = await harness.call("CreateDeployment", management_pb2.CreateDeploymentRequest(
        model_name="prod-model", build_id=build_id, environment="production"))
    assert created.deployment.name == "deployment-1" and not created.deployment.is_production
    with pytest.raises(NotFound):  # production serves nothing until the deployment is ready
        await harness.deployment("prod-model", "production")
    await harness.heartbeat(node)
    await harness.build_event(build_id, events_pb2.BUILD_STATE_SUCCEEDED, DIGEST)
    start = await next_item(node.agent.starts, "StartReplica")
    assert start.environment == "production"  # the model reads it at load
    await harness.heartbeat(node)
    await harness.replica_event(start, events_pb2.REPLICA_STATE_READY, address="127.0.0.1:9999")

    async def production() -> management_pb2.Deployment | None:
        try:
            return await harness.deployment("prod-model", "production")
        except NotFound:
            return None

    d = await eventually(production, "production to point at the new deployment")
    assert d.id == created.deployment.id and d.is_production and d.status == "ACTIVE"


async def test_scale_is_clamped_to_the_deployment_settings(harness: Harness) -> None:
    build_id = harness.builder.add(events_pb2.BUILD_STATE_BUILDING)
    created = await harness.call("CreateDeployment", management_pb2.CreateDeploymentRequest(
        model_name="scaled", build_id=build_id, publish=True))
    reply = await rpc.call(harness.routes.ScaleDeployment, scheduler_pb2.ScaleDeploymentRequest(
        deployment_id=created.deployment.id, replicas=7))
    assert reply.replicas == created.deployment.autoscaling_settings.max_replica == 1
    with pytest.raises(NotFound):
        await rpc.call(harness.routes.ScaleDeployment, scheduler_pb2.ScaleDeploymentRequest(
            deployment_id="dep_nosuch", replicas=1))


async def test_logs_merge_build_and_replica_lines_oldest_first(harness: Harness) -> None:
    build_id = harness.builder.add(events_pb2.BUILD_STATE_BUILDING)
    created = await harness.call("CreateDeployment", management_pb2.CreateDeploymentRequest(
        model_name="logged", build_id=build_id))
    dep = created.deployment.id

    def line(second: int, source: str, text: str) -> events_pb2.LogLine:
        out = events_pb2.LogLine(source=source, build_id=build_id, deployment_id=dep, text=text)
        out.at.FromSeconds(1_700_000_000 + second)
        return out

    await harness.bus.publish_fast(replica_log_subject(dep, "rep_1"), line(3, "replica", "model loaded"))
    await harness.bus.publish_fast(build_log_subject(build_id), line(1, "build", "validating config.yaml"))
    await harness.bus.publish_fast(build_log_subject(build_id), line(2, "build", "build succeeded"))
    await harness.bus.flush()

    async def logs() -> list[str] | None:
        reply = await harness.call("GetLogs", management_pb2.GetLogsRequest(
            model_id="logged", deployment_id=dep))
        texts = [x.text for x in reply.lines]
        return texts if len(texts) == 3 else None

    assert await eventually(logs, "three log lines") == [
        "validating config.yaml", "build succeeded", "model loaded"]
    only_build = await harness.call("GetLogs", management_pb2.GetLogsRequest(
        model_id="logged", deployment_id="development", build_only=True, limit=1))
    assert [x.text for x in only_build.lines] == ["build succeeded"]
    # The same lines as Baseten's Log: epoch nanoseconds as a string, the text, the replica.
    (log,) = only_build.logs
    at = only_build.lines[0].at
    assert (log.timestamp, log.message, log.replica) == (str(at.seconds * 10**9 + at.nanos), "build succeeded", "")
    # --since: the lines written from then on (the build's second line, the replica's), none from the future.
    since = management_pb2.GetLogsRequest(model_id="logged", deployment_id=dep)
    since.since.FromSeconds(1_700_000_002)
    assert [x.text for x in (await harness.call("GetLogs", since)).lines] == ["build succeeded", "model loaded"]
    since.since.FromSeconds(4_000_000_000)
    assert list((await harness.call("GetLogs", since)).lines) == []


@pytest.mark.parametrize("build_id", ["bld_*", "bld_a.>", "\r", "dep_abc"])
async def test_logs_of_something_that_is_not_a_build_id_are_refused_naming_it(
    harness: Harness, build_id: str,
) -> None:
    # It would become part of a NATS subject: a wildcard there reads every build's logs.
    with pytest.raises(InvalidArgument, match=r"is not a build id") as refused:
        await harness.call("GetLogs", management_pb2.GetLogsRequest(build_id=build_id))
    assert repr(build_id) in refused.value.message


async def test_a_caller_cancelled_mid_statement_stalls_no_one_and_the_scheduler_still_stops(
    settings: SchedulerSettings, builder: tuple[BuildServiceDouble, str], bus: NatsBus
) -> None:
    """A client that gives up, or a shutdown, cancels a handler in the middle of a statement. The
    transaction still ends. (Cut off there, it left a connection holding SQLite's write lock: the next
    write waited out the 30-s busy timeout, and stopping could wait forever.)"""
    h, loop = await start_scheduler(settings, builder[0], bus, f"sched-{uuid.uuid4().hex[:8]}")
    control = h.scheduler.control
    victim: asyncio.Task[None] | None = None

    def cancel_the_victim(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if victim is not None and statement.startswith(("INSERT", "UPDATE")):
            asyncio.get_running_loop().call_soon(victim.cancel)  # lands while the statement runs

    def beat(n: int) -> events_pb2.NodeHeartbeat:
        return events_pb2.NodeHeartbeat(node_id=f"node-{n}", address=f"127.0.0.1:{20000 + n}", cpu_count=1,
                                        memory_bytes=1 << 30)

    engine = control.transactions.sessions.kw["bind"].sync_engine
    event.listen(engine, "before_cursor_execute", cancel_the_victim)
    try:
        for i in range(5):
            victim = asyncio.create_task(control.heartbeats.on_heartbeat(beat(i)))
            with pytest.raises(asyncio.CancelledError):
                await victim  # the caller sees its cancellation...
            victim = None
            async with asyncio.timeout(5):
                await control.heartbeats.on_heartbeat(beat(100 + i))  # ...and no one waits behind it
        nodes = {n.id for n in await control.read("listing nodes", store.all_nodes)}
        assert {f"node-{n}" for n in (*range(5), *range(100, 105))} <= nodes  # each ran to its end
        # In flight as the scheduler stops:
        victim = asyncio.create_task(control.heartbeats.on_heartbeat(beat(200)))
        await asyncio.sleep(0)
    finally:
        async with asyncio.timeout(15):
            await stop_scheduler(h, loop)
    await asyncio.gather(victim, return_exceptions=True)


async def test_an_unreachable_database_is_unavailable(tmp_path: Path) -> None:
    from tests.fixtures.servers import free_port

    engine = db.make_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none")
    try:
        with pytest.raises(Unavailable, match="database is not available"):
            await db.upgrade(engine)
    finally:
        await engine.dispose()


# --- migrations ------------------------------------------------------------------------------------


def test_migrations_have_a_single_head() -> None:
    heads = ScriptDirectory.from_config(db.alembic_config()).get_heads()
    assert len(heads) == 1


async def test_migrations_build_the_schema_the_code_uses(database_url: str) -> None:
    engine = db.make_engine(database_url)
    try:
        await db.upgrade(engine)
        await db.upgrade(engine)  # a second start changes nothing

        def check(connection: Any) -> tuple[set[str], list[Any]]:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            return set(inspect(connection).get_table_names()), diff

        async with engine.connect() as conn:
            tables, diff = await conn.run_sync(check)
        assert {"models", "deployments", "replicas", "nodes", "environments", "api_keys"} <= tables
        assert diff == []
    finally:
        await engine.dispose()

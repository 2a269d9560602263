"""The worker agent with real NATS and real runner processes (`python -m kingpost_runner`).

The builder is an in-test BuildService double that serves FetchArtifact for tarballs made here.
The agent contains its runners as this machine allows (tests/fixtures/containment.py): as users of
their own where the tests run as root, with memory cgroups where they can be made.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.api import httpbody_pb2

from kingpost import rpc
from kingpost.bus import subjects
from kingpost.auth import AuthInterceptor, KeyCache
from kingpost.bus.nats_bus import NatsBus
from kingpost.errors import InvalidArgument, Unavailable
from kingpost.v1 import (
    agent_pb2, agent_pb2_grpc, builder_pb2, builder_pb2_grpc, events_pb2, runner_pb2, runner_pb2_grpc,
)
from kingpost_worker_agent.artifacts import ArtifactStore, BuilderArtifacts
from kingpost_worker_agent.containment import Containment
from kingpost_worker_agent.heartbeat import heartbeat_loop
from kingpost_worker_agent.node import node_facts
from kingpost_worker_agent.replicas import ReplicaSupervisor
from kingpost_worker_agent.service import AgentServicer
from tests.fixtures.archives import tar_of
from tests.fixtures.containment import runner_python, tmp_path  # noqa: F401  (tmp_path: others may pass)

WAIT_S = 60.0
READY = events_pb2.REPLICA_STATE_READY

ECHO_MODEL = """
class Model:
    def __init__(self, **kwargs):
        self._ready = False

    def load(self):
        print("tiny model loading", flush=True)
        self._ready = True

    def predict(self, model_input):
        return {"echo": model_input, "loaded": self._ready}
"""

ENV_MODEL = """
class Model:
    def __init__(self, environment=None, **kwargs):
        self._environment = environment

    def predict(self, model_input):
        return {"environment": self._environment}
"""

BROKEN_MODEL = """
class Model:
    def load(self):
        raise RuntimeError("the weights are missing")

    def predict(self, model_input):
        return model_input
"""


def truss_tarball(model_py: str, name: str = "tiny", config: str = "") -> bytes:
    return tar_of({"config.yaml": f"model_name: {name}\n{config}".encode(),
                   "model/model.py": textwrap.dedent(model_py).encode()})


def contained(work_dir: Path, node_id: str, **options: Any) -> Containment:
    """What `kingpost agent` finds at start on this machine, for an agent on `work_dir`."""
    return Containment.detect(work_dir, node_id, runner_python=runner_python(), **options)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class BuilderDouble(builder_pb2_grpc.BuildServiceServicer):
    """Stands in for the builder machine: FetchArtifact only."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.fetches: list[str] = []

    def add(self, data: bytes) -> str:
        self.blobs[digest_of(data)] = data
        return digest_of(data)

    async def FetchArtifact(self, request, context) -> AsyncIterator[builder_pb2.FetchArtifactResponse]:
        self.fetches.append(request.artifact_digest)
        data = self.blobs.get(request.artifact_digest)
        if data is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no artifact {request.artifact_digest}")
        for i in range(0, len(data), 64 * 1024):
            yield builder_pb2.FetchArtifactResponse(chunk=data[i:i + 64 * 1024])


class Events:
    """Every message on a subject, with a wait for the first one that matches."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()

    async def add(self, message: Any) -> None:
        self.items.append(message)
        self._changed.set()

    async def wait_for(self, match: Callable[[Any], bool], what: str) -> Any:
        deadline = time.monotonic() + WAIT_S
        while True:
            for item in self.items:
                if match(item):
                    return item
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}; saw {self.items}")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)


async def serve(
    register: Callable[[grpc.aio.Server], None], *interceptors: Any
) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server(interceptors=list(interceptors))
    register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


def process_exists(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for whoever is PID 1 here to reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


async def wait_until_gone(pid: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while process_exists(pid):
        assert time.monotonic() < deadline, f"process {pid} is still alive"
        await asyncio.sleep(0.05)


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[NatsBus]:
    bus = await NatsBus.connect(nats_url, "test-agent")
    yield bus
    await bus.close()


@pytest.fixture
async def builder() -> AsyncIterator[tuple[BuilderDouble, str]]:
    double = BuilderDouble()
    server, address = await serve(lambda s: builder_pb2_grpc.add_BuildServiceServicer_to_server(double, s))
    yield double, address
    await server.stop(None)


class Agent:
    def __init__(self, supervisor: ReplicaSupervisor, stub: agent_pb2_grpc.AgentServiceStub, node_id: str,
                 address: str) -> None:
        self.supervisor = supervisor
        self.stub = stub
        self.node_id = node_id
        self.address = address

    async def start(self, replica_id: str, digest: str, environment: str = "") -> None:
        await rpc.call(self.stub.StartReplica, agent_pb2.StartReplicaRequest(
            replica_id=replica_id, deployment_id="dep_test", model_id="mdl_test", artifact_digest=digest,
            environment=environment))

    async def pid_of(self, replica_id: str) -> int:
        reply = await rpc.call(self.stub.ListReplicas, agent_pb2.ListReplicasRequest())
        return next(r.pid for r in reply.replicas if r.replica_id == replica_id)


@pytest.fixture
async def agent(bus: NatsBus, builder: tuple[BuilderDouble, str],
                tmp_path: Path) -> AsyncIterator[Agent]:  # noqa: F811
    _, builder_address = builder
    facts = node_facts(tmp_path / "agent", "H100:1")
    artifacts = BuilderArtifacts(builder_address, "")
    supervisor = ReplicaSupervisor(
        node_id=facts.node_id, artifacts=ArtifactStore(tmp_path / "agent" / "artifacts", artifacts.fetch),
        publisher=bus, work_dir=tmp_path / "agent", stop_grace_seconds=5.0, runner_python=runner_python(),
        containment=contained(tmp_path / "agent", facts.node_id),
    )
    server, address = await serve(
        lambda s: agent_pb2_grpc.add_AgentServiceServicer_to_server(AgentServicer(supervisor), s),
        AuthInterceptor(KeyCache(), public_prefixes=[], internal_token=""),
    )
    beats = asyncio.create_task(heartbeat_loop(bus, facts, address, supervisor.running_ids, 0.1))
    channel = rpc.channel(address)
    try:
        yield Agent(supervisor, agent_pb2_grpc.AgentServiceStub(channel), facts.node_id, address)
    finally:
        beats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beats
        await supervisor.shutdown()
        await channel.close()
        await server.stop(None)
        await artifacts.close()


async def watch(bus: NatsBus, subject: str, message_type: type) -> Events:
    seen = Events()
    await bus.subscribe(subject, message_type, seen.add)
    await bus.flush()
    return seen


def state_is(state: int) -> Callable[[events_pb2.ReplicaEvent], bool]:
    return lambda e: e.state == state


async def predict(address: str, payload: Any) -> Any:
    async with rpc.channel(address) as channel:
        stub = runner_pb2_grpc.RunnerServiceStub(channel)
        body = httpbody_pb2.HttpBody(content_type="application/json", data=json.dumps(payload).encode())
        chunks = [c.data async for c in rpc.stream(stub.Predict, runner_pb2.RunnerPredictRequest(body=body),
                                                     timeout=30)]
    return json.loads(b"".join(chunks))


async def test_replica_starts_serves_logs_heartbeats_and_stops(
    agent: Agent, bus: NatsBus, builder: tuple[BuilderDouble, str], tmp_path: Path  # noqa: F811
) -> None:
    double, _ = builder
    digest = double.add(truss_tarball(ECHO_MODEL))
    replica_events = await watch(bus, subjects.replica_subject("rep_echo"), events_pb2.ReplicaEvent)
    logs = await watch(bus, subjects.replica_log_subject("dep_test", "rep_echo"), events_pb2.LogLine)
    beats = await watch(bus, subjects.node_subject(agent.node_id), events_pb2.NodeHeartbeat)

    await agent.start("rep_echo", digest)
    await agent.start("rep_echo", digest)  # a retried command changes nothing

    ready = await replica_events.wait_for(state_is(READY), "READY")
    assert [e.state for e in replica_events.items][:2] == [events_pb2.REPLICA_STATE_STARTING, READY]
    assert ready.node_id == agent.node_id and ready.deployment_id == "dep_test"
    assert ready.address.startswith("127.0.0.1:")
    assert await predict(ready.address, {"x": 1}) == {"echo": {"x": 1}, "loaded": True}
    # The runner's HTTP data plane (what Envoy calls straight) on its own port, answering.
    assert ready.http_address.startswith("127.0.0.1:") and ready.http_address != ready.address
    async with httpx.AsyncClient(base_url=f"http://{ready.http_address}", timeout=10) as http:
        assert (await http.get("/ready")).status_code == 200
        answer = await http.post("/predict", json={"x": 2})
        assert answer.json() == {"echo": {"x": 2}, "loaded": True}
    assert double.fetches == [digest]

    line = await logs.wait_for(lambda m: "tiny model loading" in m.text, "the print as a LogLine")
    assert line.source == "replica" and line.replica_id == "rep_echo"
    assert "tiny model loading" in (tmp_path / "agent" / "logs" / "rep_echo.log").read_text()

    beat = await beats.wait_for(lambda b: "rep_echo" in b.replica_ids, "a heartbeat listing the replica")
    assert beat.address == agent.address and [g.name for g in beat.gpus] == ["H100"] and beat.cpu_count >= 1

    pid = await agent.pid_of("rep_echo")
    assert process_exists(pid)
    await rpc.call(agent.stub.StopReplica, agent_pb2.StopReplicaRequest(replica_id="rep_echo"))
    assert not process_exists(pid)
    await replica_events.wait_for(state_is(events_pb2.REPLICA_STATE_STOPPED), "STOPPED")
    assert (await rpc.call(agent.stub.ListReplicas, agent_pb2.ListReplicasRequest())).replicas == []
    await rpc.call(agent.stub.StopReplica, agent_pb2.StopReplicaRequest(replica_id="rep_echo"))  # idempotent
    # A stop for a replica this agent never knew (the scheduler replacing one a restarted node
    # forgot) is no error either.
    await rpc.call(agent.stub.StopReplica, agent_pb2.StopReplicaRequest(replica_id="rep_never_known"))


async def test_second_replica_of_an_artifact_reuses_it(
    agent: Agent, bus: NatsBus, builder: tuple[BuilderDouble, str]
) -> None:
    double, _ = builder
    digest = double.add(truss_tarball(ECHO_MODEL, "twice"))
    first = await watch(bus, subjects.replica_subject("rep_a"), events_pb2.ReplicaEvent)
    second = await watch(bus, subjects.replica_subject("rep_b"), events_pb2.ReplicaEvent)
    await asyncio.gather(agent.start("rep_a", digest), agent.start("rep_b", digest))
    a = await first.wait_for(state_is(READY), "rep_a READY")
    b = await second.wait_for(state_is(READY), "rep_b READY")
    assert a.address != b.address
    assert double.fetches == [digest]


async def test_the_environment_reaches_the_model(
    agent: Agent, bus: NatsBus, builder: tuple[BuilderDouble, str]
) -> None:
    double, _ = builder
    digest = double.add(truss_tarball(ENV_MODEL, "env"))
    replica_events = await watch(bus, subjects.replica_subject("rep_env"), events_pb2.ReplicaEvent)
    await agent.start("rep_env", digest, environment="staging")
    ready = await replica_events.wait_for(state_is(READY), "READY")
    assert await predict(ready.address, {}) == {"environment": {"name": "staging"}}


async def test_a_model_whose_load_raises_fails_with_its_traceback(
    agent: Agent, bus: NatsBus, builder: tuple[BuilderDouble, str]
) -> None:
    double, _ = builder
    digest = double.add(truss_tarball(BROKEN_MODEL, "broken"))
    replica_events = await watch(bus, subjects.replica_subject("rep_broken"), events_pb2.ReplicaEvent)
    await agent.start("rep_broken", digest)
    failed = await replica_events.wait_for(state_is(events_pb2.REPLICA_STATE_FAILED), "FAILED")
    # The runner's own traceback, ending in the model's exception.
    assert "Traceback (most recent call last)" in failed.message
    assert "RuntimeError: the weights are missing" in failed.message
    assert [e.state for e in replica_events.items] == [events_pb2.REPLICA_STATE_STARTING,
                                                       events_pb2.REPLICA_STATE_FAILED]  # not restarted
    assert "rep_broken" not in agent.supervisor.running_ids()


async def test_an_unknown_artifact_fails_the_replica_with_the_builders_answer(
    agent: Agent, bus: NatsBus
) -> None:
    replica_events = await watch(bus, subjects.replica_subject("rep_missing"), events_pb2.ReplicaEvent)
    await agent.start("rep_missing", "sha256:" + "ab" * 32)
    failed = await replica_events.wait_for(state_is(events_pb2.REPLICA_STATE_FAILED), "FAILED")
    assert "no artifact" in failed.message


async def test_a_malformed_digest_is_refused_at_once(agent: Agent) -> None:
    with pytest.raises(InvalidArgument, match="digest 'not-a-digest' is not 'sha256:<64 hex digits>'"):
        await agent.start("rep_bad", "not-a-digest")


async def test_a_replica_id_that_could_name_another_file_is_refused(agent: Agent) -> None:
    with pytest.raises(InvalidArgument, match="is not a replica id"):
        await agent.start("../rep_escape", "sha256:" + "ab" * 32)


async def test_shutdown_stops_every_runner(
    agent: Agent, bus: NatsBus, builder: tuple[BuilderDouble, str]
) -> None:
    double, _ = builder
    digest = double.add(truss_tarball(ECHO_MODEL, "many"))
    watched = {rid: await watch(bus, subjects.replica_subject(rid), events_pb2.ReplicaEvent)
               for rid in ("rep_s1", "rep_s2")}
    for rid in watched:
        await agent.start(rid, digest)
    for rid, seen in watched.items():
        await seen.wait_for(state_is(READY), f"{rid} READY")
    pids = [await agent.pid_of(rid) for rid in watched]
    await agent.supervisor.shutdown()
    assert not any(process_exists(pid) for pid in pids)
    for rid, seen in watched.items():
        await seen.wait_for(state_is(events_pb2.REPLICA_STATE_STOPPED), f"{rid} STOPPED")
    with pytest.raises(Unavailable, match="this agent is shutting down"):
        await agent.start("rep_late", digest)


# --- the agent as its own process, as `kingpost agent` runs it -----------------------------------


@pytest.fixture
def agent_process(nats_url: str, builder: tuple[BuilderDouble, str], tmp_path: Path):  # noqa: F811
    from tests.fixtures.servers import free_port

    _, builder_address = builder
    port = free_port()
    config = tmp_path / "agent.toml"
    config.write_text(
        f'nats_url = "{nats_url}"\nbuilder_address = "{builder_address}"\nwork_dir = "{tmp_path / "agent"}"\n'
        f"grpc_port = {port}\nheartbeat_interval_seconds = 0.2\nstop_grace_seconds = 5\n"
        f'runner_python = "{runner_python()}"\n'
    )
    log_path = tmp_path / "agent.log"
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> tuple[subprocess.Popen[bytes], str]:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-c", "import pathlib, sys; from kingpost_worker_agent.main import main; "
                                       "main(pathlib.Path(sys.argv[1]))", str(config)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        procs.append(proc)
        return proc, f"127.0.0.1:{port}"

    yield start, log_path
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


async def _start_in(address: str, replica_id: str, digest: str) -> agent_pb2_grpc.AgentServiceStub:
    channel = rpc.channel(address)
    stub = agent_pb2_grpc.AgentServiceStub(channel)
    request = agent_pb2.StartReplicaRequest(
        replica_id=replica_id, deployment_id="dep_test", artifact_digest=digest)
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            await rpc.call(stub.StartReplica, request, timeout=5)
            return stub
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)  # the agent process is still starting


async def test_a_stopped_agent_process_stops_its_runners(
    agent_process, bus: NatsBus, builder: tuple[BuilderDouble, str]
) -> None:
    """SIGTERM is a clean stop: no runner outlives it. (A SIGKILLed agent leaves its runners serving for
    the next agent to adopt: test_agent_restarts.py.)"""
    start, log_path = agent_process
    double, _ = builder
    digest = double.add(truss_tarball(ECHO_MODEL, "orphan"))
    replica_events = await watch(bus, subjects.replica_subject("rep_orphan"), events_pb2.ReplicaEvent)
    proc, address = start()
    stub = await _start_in(address, "rep_orphan", digest)
    await replica_events.wait_for(state_is(READY), "READY")
    assert "runner containment: " in log_path.read_text()  # what this node enforces, said at start
    reply = await rpc.call(stub.ListReplicas, agent_pb2.ListReplicasRequest())
    pid = reply.replicas[0].pid
    assert process_exists(pid)

    proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(proc.wait, 30)
    assert code == 0, log_path.read_text()
    assert not process_exists(pid)  # stopped before the agent exited
    await replica_events.wait_for(state_is(events_pb2.REPLICA_STATE_STOPPED), "STOPPED")

"""Pre-started runners: the standby protocol on its own, and the agent handing a cold start to a standby
and starting the next one once that replica is ready."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kingpost import rpc
from kingpost.bus import subjects
from kingpost.bus.nats_bus import NatsBus
from kingpost.v1 import events_pb2, runner_pb2, runner_pb2_grpc
from kingpost_worker_agent.artifacts import ArtifactStore, BuilderArtifacts
from kingpost_worker_agent.replicas import ReplicaSpec, ReplicaSupervisor
from kingpost_worker_agent.standby import instruction
from tests.fixtures.servers import free_port
from tests.integration.test_agent import (  # noqa: F401  (fixtures)
    ENV_MODEL, BuilderDouble, builder, bus, contained, predict, process_exists, runner_python, state_is,
    tmp_path, truss_tarball, wait_until_gone, watch,
)

READY = events_pb2.REPLICA_STATE_READY
REPO = Path(__file__).resolve().parents[2]


async def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    async with rpc.channel(f"127.0.0.1:{port}") as channel:
        stub = runner_pb2_grpc.RunnerServiceStub(channel)
        while True:
            assert proc.poll() is None, "the runner exited"
            assert time.monotonic() < deadline, "the runner never became ready"
            try:
                if (await rpc.call(stub.Ready, runner_pb2.ReadyRequest(), timeout=1, attempts=1)).ready:
                    return
            except Exception:
                await asyncio.sleep(0.05)


async def test_a_standby_runner_serves_the_truss_its_instruction_names(tmp_path: Path) -> None:  # noqa: F811
    truss = tmp_path / "truss"
    (truss / "model").mkdir(parents=True)
    (truss / "config.yaml").write_text("model_name: env\n")
    (truss / "model" / "model.py").write_text(ENV_MODEL)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "KINGPOST_ENVIRONMENT"}
    proc = subprocess.Popen([sys.executable, "-m", "kingpost_runner", "--standby"], cwd=tmp_path, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdin is not None
        proc.stdin.write(instruction(["--truss", str(truss), "--port", str(port)],
                                     {"KINGPOST_ENVIRONMENT": "staging"}, truss, tmp_path / "replica.log"))
        proc.stdin.close()
        await wait_ready(port, proc)
        assert await predict(f"127.0.0.1:{port}", {}) == {"environment": {"name": "staging"}}
        assert "runner listening on" in (tmp_path / "replica.log").read_text()  # its output went there
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_a_standby_whose_stdin_closes_exits_cleanly(tmp_path: Path) -> None:  # noqa: F811
    proc = subprocess.run([sys.executable, "-m", "kingpost_runner", "--standby"], cwd=tmp_path, input=b"",
                          capture_output=True, timeout=30)
    assert proc.returncode == 0


def test_a_bad_instruction_exits_with_code_2(tmp_path: Path) -> None:  # noqa: F811
    proc = subprocess.run([sys.executable, "-m", "kingpost_runner", "--standby"], cwd=tmp_path,
                          input=b"not json\n", capture_output=True, timeout=30)
    assert proc.returncode == 2 and b"bad standby instruction" in proc.stderr


@pytest.fixture
async def supervisor(bus: NatsBus, builder: tuple[BuilderDouble, str], tmp_path: Path  # noqa: F811
                     ) -> AsyncIterator[ReplicaSupervisor]:
    _, builder_address = builder
    artifacts = BuilderArtifacts(builder_address, "")
    sup = ReplicaSupervisor(
        node_id="node_standby", artifacts=ArtifactStore(tmp_path / "agent" / "artifacts", artifacts.fetch),
        publisher=bus, work_dir=tmp_path / "agent", stop_grace_seconds=5.0, standby_runners=1,
        runner_python=runner_python(), containment=contained(tmp_path / "agent", "node_standby"),
    )
    yield sup
    await sup.shutdown()
    await artifacts.close()


async def test_the_agent_hands_a_cold_start_to_a_standby_and_starts_the_next(
    supervisor: ReplicaSupervisor, bus: NatsBus, builder: tuple[BuilderDouble, str]  # noqa: F811
) -> None:
    double, _ = builder
    digest = double.add(truss_tarball(ENV_MODEL, name="env"))
    first = await watch(bus, subjects.replica_subject("rep_1"), events_pb2.ReplicaEvent)
    await supervisor.start(ReplicaSpec("rep_1", "dep_test", "mdl_test", digest))
    await first.wait_for(state_is(READY), "READY")
    assert supervisor.standby.taken == 0  # the first replica started fresh; a standby follows it
    await supervisor.standby.wait_started()
    assert supervisor.standby.started == 1

    second = await watch(bus, subjects.replica_subject("rep_2"), events_pb2.ReplicaEvent)
    await supervisor.start(ReplicaSpec("rep_2", "dep_test", "mdl_test", digest, environment="production"))
    ready = await second.wait_for(state_is(READY), "READY")
    assert supervisor.standby.taken == 1
    # The standby became this replica: its own environment name reached the model.
    assert await predict(ready.address, {}) == {"environment": {"name": "production"}}
    await supervisor.standby.wait_started()
    assert supervisor.standby.started == 2  # replenished

    pids = [r.pid for r in supervisor.list()] + supervisor.standby.idle_pids()
    assert len(pids) == 3 and all(process_exists(pid) for pid in pids)
    await supervisor.shutdown()  # replicas and the idle standby alike
    for pid in pids:
        await wait_until_gone(pid)


ISOLATION_MODEL = """
import importlib.util, sys

class Model:
    def predict(self, request):
        import pydantic  # Truss's server provides it: so does kingpost's base environment
        return {name: importlib.util.find_spec(name) is not None for name in request["modules"]} | {
            "prefix": sys.prefix, "pydantic": pydantic.VERSION[:1]}
"""


async def test_a_truss_without_requirements_sees_only_the_runners_packages(
    supervisor: ReplicaSupervisor, bus: NatsBus,  # noqa: F811
    builder: tuple[BuilderDouble, str], tmp_path: Path,  # noqa: F811
) -> None:
    double, _ = builder
    digest = double.add(truss_tarball(ISOLATION_MODEL, name="isolated"))
    events_ = await watch(bus, subjects.replica_subject("rep_iso"), events_pb2.ReplicaEvent)
    await supervisor.start(ReplicaSpec("rep_iso", "dep_test", "mdl_test", digest))
    ready = await events_.wait_for(state_is(READY), "READY")
    # sqlalchemy, nats, alembic and grpc_tools are the platform's, installed beside the agent: not the
    # model's. uvicorn and httptools serve the runner's HTTP data plane.
    modules = ["sqlalchemy", "nats", "alembic", "grpc_tools", "numpy", "grpc", "google.protobuf", "yaml",
               "msgpack", "anyio", "uvicorn", "httptools"]
    answer = await predict(ready.address, {"modules": modules})
    assert answer.pop("pydantic") == "2"
    assert Path(answer.pop("prefix")).parent == tmp_path / "agent" / "envs"
    assert answer == {"sqlalchemy": False, "nats": False, "alembic": False, "grpc_tools": False, "numpy": False,
                      "grpc": True, "google.protobuf": True, "yaml": True, "msgpack": True, "anyio": True,
                      "uvicorn": True, "httptools": True}


async def test_a_model_importing_what_it_did_not_ask_for_fails_saying_what_to_add(
    supervisor: ReplicaSupervisor, bus: NatsBus, builder: tuple[BuilderDouble, str]  # noqa: F811
) -> None:
    double, _ = builder
    digest = double.add(truss_tarball("import sqlalchemy\n" + ENV_MODEL, name="leaky"))
    events_ = await watch(bus, subjects.replica_subject("rep_leaky"), events_pb2.ReplicaEvent)
    await supervisor.start(ReplicaSpec("rep_leaky", "dep_test", "mdl_test", digest))
    failed = await events_.wait_for(state_is(events_pb2.REPLICA_STATE_FAILED), "FAILED")
    assert "No module named 'sqlalchemy'" in failed.message
    assert "add the package that provides 'sqlalchemy' to `requirements` in config.yaml" in failed.message

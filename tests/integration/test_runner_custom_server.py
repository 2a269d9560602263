"""A runner in front of a custom server (`docker_server`): started, probed, passed through, watched.

The runner is started as the agent starts it, against copies of tests/trusses/custom_server.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import shutil
import time

import grpc
import pytest
import yaml
from google.api import httpbody_pb2

from kingpost.v1 import runner_pb2
from tests.fixtures.runner import TRUSSES, running
from tests.fixtures.servers import free_port


def server_truss(tmp_path: pathlib.Path, flags: str = "", **health: float) -> pathlib.Path:
    truss = tmp_path / "server"
    shutil.copytree(TRUSSES / "custom_server", truss)
    config = yaml.safe_load((truss / "config.yaml").read_text())
    port = free_port()
    config["docker_server"].update(start_command=f"python server.py --port {port} {flags}", server_port=port)
    config["runtime"]["health_checks"].update(health)
    (truss / "config.yaml").write_text(yaml.safe_dump(config))
    return truss


def sync_request(method: str, path: str, body: bytes = b"", **headers: str) -> runner_pb2.RunnerSyncRequest:
    return runner_pb2.RunnerSyncRequest(
        method=method, path=path, headers=[runner_pb2.Header(name=k, value=v) for k, v in headers.items()],
        body=httpbody_pb2.HttpBody(content_type="text/plain" if body else "", data=body))


async def test_sync_and_predict_pass_through_and_stop_takes_the_server_along(tmp_path: pathlib.Path) -> None:
    async with running(server_truss(tmp_path)) as runner:
        call = runner.stub.Sync(sync_request("PATCH", "/echo?q=1", b"hi", **{"x-a": "b"}), timeout=10)
        metadata = tuple(await call.initial_metadata())
        chunks = [c async for c in call]
        assert ("x-http-status", "201") in metadata and ("x-server", "custom") in metadata
        assert chunks[0].content_type == "application/json"
        seen = json.loads(b"".join(c.data for c in chunks))
        assert (seen["method"], seen["path"], seen["body"], seen["headers"]["x-a"]) == ("PATCH", "/echo?q=1", "hi", "b")
        predicted = await runner.predict(b'{"n": 1}')
        assert json.loads(predicted[0].data) == {"predict": {"n": 1}}

        started, arrivals = time.perf_counter(), []
        async for chunk in runner.stub.Sync(sync_request("GET", "/sse"), timeout=10):
            if chunk.data:
                arrivals.append(time.perf_counter() - started)
        assert len(arrivals) == 3 and arrivals[2] - arrivals[0] > 0.4, arrivals  # as the server wrote them

        pid = json.loads(b"".join([c.data async for c in runner.stub.Sync(sync_request("GET", "/pid"))]))["pid"]
    deadline = time.monotonic() + 10
    while alive(pid):  # the server went with its runner
        assert time.monotonic() < deadline, f"the server (pid {pid}) outlived its runner"
        await asyncio.sleep(0.1)


def alive(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


async def test_an_error_status_from_predict_endpoint_is_the_callers_error(tmp_path: pathlib.Path) -> None:
    truss = server_truss(tmp_path)
    config = yaml.safe_load((truss / "config.yaml").read_text())
    config["docker_server"]["predict_endpoint"] = "/missing"
    (truss / "config.yaml").write_text(yaml.safe_dump(config))
    async with running(truss) as runner:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await runner.predict(b"{}")
        assert failed.value.code() is grpc.StatusCode.NOT_FOUND
        assert ("x-http-status", "404") in tuple(failed.value.trailing_metadata() or ())
        assert "no route POST /missing" in failed.value.details()


async def test_a_server_that_exits_ends_the_runner_with_code_1_and_says_so(tmp_path: pathlib.Path) -> None:
    async with running(server_truss(tmp_path), ready=True) as runner:
        with pytest.raises(grpc.aio.AioRpcError):
            [c async for c in runner.stub.Sync(sync_request("GET", "/crash"), timeout=10)]
        assert await asyncio.to_thread(runner.proc.wait, 10) == 1
        assert "the server (docker_server.start_command) exited with code 3" in runner.output()


async def test_a_server_that_never_gets_ready_ends_the_runner_naming_why(tmp_path: pathlib.Path) -> None:
    async with running(server_truss(tmp_path, "--never-ready", startup_threshold_seconds=4),
                       ready=False) as runner:
        assert await asyncio.to_thread(runner.proc.wait, 30) == 1
        said = runner.output()
        assert "server: not ready yet, still warming up" in said
        assert "was not ready within 4 s (runtime.health_checks.startup_threshold_seconds)" in said
        assert "last answered HTTP 503" in said


async def test_each_replica_gets_a_port_of_its_own_where_the_command_names_it(tmp_path: pathlib.Path) -> None:
    truss = server_truss(tmp_path)
    async with running(truss) as one, running(truss) as two:  # the same server_port, side by side
        for runner in (one, two):
            answer = [c async for c in runner.stub.Sync(sync_request("GET", "/pid"), timeout=10)]
            assert json.loads(answer[0].data)["pid"] > 0
        assert "is port" in one.output() and "is port" in two.output()


async def test_a_dead_liveness_endpoint_ends_the_runner_for_a_restart(tmp_path: pathlib.Path) -> None:
    truss = server_truss(tmp_path, restart_threshold_seconds=1)
    config = yaml.safe_load((truss / "config.yaml").read_text())
    config["docker_server"]["liveness_endpoint"] = "/not-alive"
    (truss / "config.yaml").write_text(yaml.safe_dump(config))
    async with running(truss) as runner:
        assert await asyncio.to_thread(runner.proc.wait, 20) == 1
        assert "liveness_endpoint /not-alive failed for 1 s" in runner.output()


async def test_a_custom_servers_predict_is_logged_when_its_deployment_asks(tmp_path: pathlib.Path) -> None:
    env = {"KINGPOST_REQUEST_LOG_SAMPLE_RATE": "1", "KINGPOST_REQUEST_LOG_MAX_BYTES": "100"}
    async with running(server_truss(tmp_path), env=env) as runner:
        answer = await runner.predict(b'{"n": 7}', metadata=[("x-baseten-request-id", "req-custom")])
        assert json.loads(answer[0].data) == {"predict": {"n": 7}}
        (line,) = await runner.lines_with("kingpost_runner.request_log [req-custom]")
        logged = json.loads(line.split("]: ", 1)[1])
        assert (logged["path"], logged["status"], logged["input"]["text"], logged["output"]["text"]) == (
            "predict", 200, '{"n": 7}', '{"predict": {"n": 7}}')

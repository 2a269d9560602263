"""The runner's HTTP data plane (http_plane.py), the face Envoy calls straight: a real runner
process per test (tests/fixtures/runner.py starts it with `--http-port`), called over HTTP/1.1."""

from __future__ import annotations

import asyncio
import json
import pathlib
import shutil

import httpx
import msgpack
import numpy as np
import pytest
import yaml

from kingpost_runner.codec import msgpack_dumps, msgpack_loads
from tests.fixtures.runner import TRUSSES, running
from tests.fixtures.servers import free_port


def client(runner) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=runner.http_url, timeout=30)


async def test_json_predict_and_every_client_header_but_the_platforms_reaches_the_model() -> None:
    async with running("headers") as r, client(r) as http:
        response = await http.post("/predict", content=b'{"a": [1, 2.5]}', headers={
            "content-type": "application/json", "x-baseten-request-id": "req-7", "traceparent": "00-abc-def-01",
            "x-custom": "kept", "authorization": "Api-Key secret", "x-envoy-expected-rq-timeout-ms": "5000",
            "x-kingpost-deployment": "dep_1",
            "accept": "application/json"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        seen = response.json()
        assert seen["input"] == {"a": [1, 2.5]}
        headers = seen["headers"]
        assert (headers["x-baseten-request-id"], headers["traceparent"], headers["x-custom"], headers["accept"]) == (
            "req-7", "00-abc-def-01", "kept", "application/json")
        assert headers["content-type"] == "application/json"
        assert "authorization" not in headers and "x-envoy-expected-rq-timeout-ms" not in headers
        assert "x-kingpost-deployment" not in headers
        assert "connection" not in headers and "content-length" not in headers


async def test_msgpack_round_trips_bit_exact() -> None:
    rng = np.random.default_rng(7)
    array = rng.standard_normal((3, 4, 5)).astype(np.float32)
    array[0, 0, 0] = np.nan
    async with running("numpy_msgpack") as r, client(r) as http:
        response = await http.post("/predict", content=msgpack_dumps({"array": array}),
                                   headers={"content-type": "application/octet-stream"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/octet-stream"
        result = msgpack_loads(response.content)
        assert result["array"].dtype == np.float32 and result["array"].tobytes() == array.tobytes()
    async with running("echo") as r, client(r) as http:
        packed = msgpack.packb({"k": [1, b"raw\x00\xff"]})
        response = await http.post("/predict", content=packed, headers={"content-type": "application/octet-stream"})
        assert response.content == packed
        bad = await http.post("/predict", content=b"\xc1", headers={"content-type": "application/octet-stream"})
        assert bad.status_code == 400 and "error" in bad.json()


async def test_a_stream_arrives_chunk_by_chunk(tmp_path: pathlib.Path) -> None:
    """Chunk 1 is produced only after the test has received chunk 0: a plane that held chunk 0 back
    would get the model's "never released" instead (causality, not timing)."""
    release = tmp_path / "release"
    async with running("streaming_sync") as r, client(r) as http:
        body = json.dumps({"n": 4, "hold_until": str(release)}).encode()
        async with http.stream("POST", "/predict", content=body, headers={"content-type": "application/json"}) as s:
            assert s.status_code == 200
            assert s.headers["content-type"] == "application/octet-stream"
            assert s.headers["transfer-encoding"] == "chunked"
            chunks = s.aiter_raw()
            assert await anext(chunks) == b"0"
            release.touch()
            rest = b"".join([c async for c in chunks])
        assert rest == b"123"


async def test_a_stream_that_fails_midway_breaks_off_and_one_that_fails_first_keeps_its_status() -> None:
    async with running("streaming_async") as r, client(r) as http:
        response = await http.post("/predict", content=b"{}")
        assert response.content == b"".join(f"chunk-{i};".encode() for i in range(5))
        received = []
        with pytest.raises(httpx.RemoteProtocolError):
            async with http.stream("POST", "/predict", content=b'{"fail_after": 2}') as s:
                assert s.status_code == 200
                async for chunk in s.aiter_raw():
                    received.append(chunk)
        assert b"".join(received) == b"chunk-0;chunk-1;"
        failed = await http.post("/predict", content=b'{"fail_after": 0}')
        assert failed.status_code == 500
        assert failed.json() == {"error": "Internal Server Error (in model/chainlet)."}
        assert (await http.post("/predict", content=b"{}")).status_code == 200  # the runner serves on


@pytest.mark.parametrize(("status", "detail", "message"), [
    (418, "I'm a teapot", "I'm a teapot"),
    (404, "no such thing", "no such thing"),
    (502, {"error": "upstream"}, '{"error": "upstream"}'),
])
async def test_a_model_error_keeps_its_status_with_an_error_body(status: int, detail: object, message: str) -> None:
    async with running("predict_error") as r, client(r) as http:
        response = await http.post("/predict", content=json.dumps({"status": status, "detail": detail}).encode())
        assert response.status_code == status
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"error": message}
        crashed = await http.post("/predict", content=b"{}")
        assert crashed.status_code == 500
        assert crashed.json() == {"error": "Internal Server Error (in model/chainlet)."}
        assert "Crashed in `crash`." in r.output()


async def test_openai_style_sync_routes_and_trusss_404_for_a_missing_one() -> None:
    async with running("openai_methods") as r, client(r) as http:
        chat = {"model": "m", "messages": [{"role": "user", "content": "hi there"}]}
        response = await http.post("/sync/v1/chat/completions", json=chat)
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"] == "Truss says: hi there"
        async with http.stream("POST", "/sync/v1/chat/completions", json={**chat, "stream": True}) as s:
            assert s.status_code == 200 and s.headers["content-type"] == "text/event-stream"
            events = b"".join([c async for c in s.aiter_raw()]).decode().split("\n\n")
        assert events[-2] == "data: [DONE]" and len(events) == 6  # 4 words, DONE, ""
        missing = await http.post("/sync/v1/completions", json={"prompt": "x"})
        assert missing.status_code == 404
        assert missing.json() == {"error": "`completions` must only be called if model has it."}
        wrong = await http.get("/sync/v1/nothing")
        assert wrong.status_code == 404 and "/v1/chat/completions" in wrong.json()["error"]
        assert (await http.get("/elsewhere")).status_code == 404


async def test_a_body_over_the_limit_is_a_413_naming_it() -> None:
    async with running("echo", env={"KINGPOST_MAX_BODY_BYTES": "1000"}) as r, client(r) as http:
        assert (await http.post("/predict", content=b'"' + b"a" * 990 + b'"')).status_code == 200
        response = await http.post("/predict", content=b'"' + b"a" * 2000 + b'"')
        assert response.status_code == 413
        assert "the limit is 1000" in response.json()["error"]

        async def chunked():  # no content-length: counted as it arrives
            for _ in range(4):
                yield b"a" * 400
        response = await http.post("/predict", content=chunked())
        assert response.status_code == 413
        assert (await http.post("/predict", content=b"[1]")).json() == [1]


async def test_ready_and_predict_are_503_until_the_model_has_loaded(tmp_path: pathlib.Path) -> None:
    release = tmp_path / "release"
    async with running("slow_load", ready=False, env={"KP_TEST_RELEASE_FILE": str(release)}) as r:
        async with client(r) as http:
            while True:  # until the HTTP port listens
                try:
                    ready = await http.get("/ready")
                    break
                except httpx.ConnectError:
                    assert r.proc.poll() is None, r.output()
                    await asyncio.sleep(0.05)
            assert ready.status_code == 503
            not_yet = await http.post("/predict", content=b"7")
            assert not_yet.status_code == 503
            assert not_yet.json() == {"error": "Model with name model is not ready."}
            release.touch()
            await r.wait_ready()
            assert (await http.get("/ready")).status_code == 200
            assert (await http.post("/predict", content=b"7")).content == b"7"


def server_truss(tmp_path: pathlib.Path, flags: str = "") -> pathlib.Path:
    truss = tmp_path / "server"
    shutil.copytree(TRUSSES / "custom_server", truss)
    config = yaml.safe_load((truss / "config.yaml").read_text())
    port = free_port()
    config["docker_server"].update(start_command=f"python server.py --port {port} {flags}", server_port=port)
    (truss / "config.yaml").write_text(yaml.safe_dump(config))
    return truss


async def test_a_docker_server_truss_is_passed_through(tmp_path: pathlib.Path) -> None:
    async with running(server_truss(tmp_path)) as r, client(r) as http:
        response = await http.patch("/sync/echo?q=1", content=b"hi",
                                    headers={"x-a": "b", "content-type": "text/plain", "authorization": "Api-Key k"})
        assert response.status_code == 201 and response.headers["x-server"] == "custom"
        assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]  # repeated headers kept
        seen = response.json()
        assert (seen["method"], seen["path"], seen["body"], seen["headers"]["x-a"]) == ("PATCH", "/echo?q=1", "hi", "b")
        assert "authorization" not in {k.lower() for k in seen["headers"]}
        predicted = await http.post("/predict", content=b'{"n": 1}', headers={"content-type": "application/json"})
        assert predicted.json() == {"predict": {"n": 1}}
        assert (await http.get("/ready")).status_code == 200
        async with http.stream("GET", "/sync/sse") as s:
            assert s.headers["content-type"] == "text/event-stream"
            assert b"".join([c async for c in s.aiter_raw()]) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"


ENDLESS_MODEL = '''
import asyncio, pathlib

class Model:
    async def predict(self, model_input):
        try:
            for i in range(model_input.get("n", 10**9)):
                yield f"{i};"
                await asyncio.sleep(0.01)
        finally:
            pathlib.Path(model_input["closed"]).write_text("closed")
'''


async def test_a_client_that_leaves_a_stream_stops_the_models_generator_and_frees_its_slot(
        tmp_path: pathlib.Path) -> None:
    truss = tmp_path / "endless"
    (truss / "model").mkdir(parents=True)
    (truss / "config.yaml").write_text("model_name: endless\nruntime:\n  predict_concurrency: 1\n")
    (truss / "model" / "model.py").write_text(ENDLESS_MODEL)
    closed = tmp_path / "closed"
    async with running(truss) as r, client(r) as http:
        async with http.stream("POST", "/predict", json={"closed": str(closed)}) as s:
            assert await anext(s.aiter_raw())
        for _ in range(500):  # the generator's finally runs once the runner sees the client gone
            if closed.exists():
                break
            await asyncio.sleep(0.02)
        assert closed.read_text() == "closed"
        again = await http.post("/predict", json={"closed": str(tmp_path / "again"), "n": 2})
        assert again.content == b"0;1;"  # its one predict slot was given back


async def test_the_request_id_marks_the_models_log_lines(tmp_path: pathlib.Path) -> None:
    truss = tmp_path / "logs"
    (truss / "model").mkdir(parents=True)
    (truss / "config.yaml").write_text("model_name: logs\n")
    (truss / "model" / "model.py").write_text(
        "import logging\n\nclass Model:\n    def predict(self, model_input):\n"
        "        logging.getLogger('model').warning('predicting now')\n        return model_input\n")
    async with running(truss) as r, client(r) as http:
        response = await http.post("/predict", json=1, headers={"x-baseten-request-id": "req-http-1"})
        assert response.json() == 1
        for _ in range(100):
            if "predicting now" in r.output():
                break
            await asyncio.sleep(0.02)
        (line,) = [line for line in r.output().splitlines() if "predicting now" in line]
        assert "req-http-1" in line


async def test_a_taken_http_port_or_a_bad_body_limit_is_named_and_exits_2() -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        async with running("echo", ready=False, args=["--http-port", str(port)]) as r:
            assert await asyncio.to_thread(r.proc.wait, 30) == 2
            assert f"cannot listen on 127.0.0.1:{port} for HTTP" in r.output()
    async with running("echo", ready=False, env={"KINGPOST_MAX_BODY_BYTES": "lots"}) as r:
        assert await asyncio.to_thread(r.proc.wait, 30) == 2
        assert "KINGPOST_MAX_BODY_BYTES='lots': expected a positive number of bytes" in r.output()



async def test_a_docker_server_not_ready_is_a_503(tmp_path: pathlib.Path) -> None:
    async with running(server_truss(tmp_path, "--never-ready"), ready=False) as r, client(r) as http:
        while True:
            try:
                ready = await http.get("/ready")
                break
            except httpx.ConnectError:
                assert r.proc.poll() is None, r.output()
                await asyncio.sleep(0.05)
        assert ready.status_code == 503
        predicted = await http.post("/predict", json={})
        assert predicted.status_code == 503
        assert predicted.json() == {"error": "the server is not ready yet (readiness_endpoint)"}

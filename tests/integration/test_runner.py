"""The runner as the worker agent runs it: a subprocess per Truss, called over gRPC.

Each test starts `python -m kingpost_runner` against a directory in tests/trusses (modelled on
truss's own test data) and checks what a caller of the model would see: bodies, content types,
streams, statuses (gRPC code + exact HTTP status in `x-http-status`) and the runner's log.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
from typing import Any

import grpc
import msgpack
import numpy as np
import pytest
from google.api import httpbody_pb2

from kingpost.grpc_status import HTTP_STATUS_KEY
from kingpost_runner.codec import msgpack_dumps, msgpack_loads
from tests.fixtures.runner import PredictRequest, RunnerProcess, running

REPO = pathlib.Path(__file__).resolve().parents[2]


def http_status(e: grpc.aio.AioRpcError) -> int:
    return int(dict(e.trailing_metadata() or ())[HTTP_STATUS_KEY])


async def test_echo_returns_the_json_input() -> None:
    async with running("echo") as r:
        [reply] = await r.predict(b'{"a": [1, 2.5, "x"], "b": null}')
        assert reply.content_type == "application/json"
        assert json.loads(reply.data) == {"a": [1, 2.5, "x"], "b": None}


async def test_bundled_example_echoes() -> None:
    async with running(REPO / "examples" / "echo") as r:
        [reply] = await r.predict(b'"hi"')
        assert json.loads(reply.data) == {"echo": "hi"}


async def test_init_kwargs_secrets_and_environment_variables(tmp_path: pathlib.Path) -> None:
    (tmp_path / "with_default").write_text("from-file")
    env = {"TRUSS_SECRET_api_token": "from-env", "TRUSS_SECRET_with_default": "env-loses-to-file"}
    async with running("echo", env=env, args=["--secrets-dir", str(tmp_path)]) as r:
        [reply] = await r.predict(b'{"describe": "api_token"}')
        described = json.loads(reply.data)
        assert described == {
            "model_name": "Test Echo",
            "data_dir_exists": True,
            "data_dir_name": "data",
            "secret": "from-env",
            "env": ["true", "42"],
        }
        [reply] = await r.predict(b'{"describe": "with_default"}')
        assert json.loads(reply.data)["secret"] == "from-file"
        [reply] = await r.predict(b'{"describe": "undeclared"}')
        assert "Secret 'undeclared' is not declared in config.yaml" in json.loads(reply.data)["secret"]
        assert "from-env" not in r.output()


async def test_malformed_json_is_a_400() -> None:
    async with running("echo") as r:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await r.predict(b'{"a": ')
        assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert http_status(err.value) == 400
        assert err.value.details().startswith("Invalid JSON payload: ")


async def test_msgpack_request_gets_a_msgpack_reply() -> None:
    async with running("echo") as r:
        [reply] = await r.predict(msgpack.packb({"k": [1, b"raw"]}), "application/octet-stream")
        assert reply.content_type == "application/octet-stream"
        assert msgpack.unpackb(reply.data) == {"k": [1, b"raw"]}
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await r.predict(b"\xc1", "application/octet-stream")
        assert http_status(err.value) == 400


async def test_async_preprocess_predict_postprocess() -> None:
    async with running("async_methods") as r:
        [reply] = await r.predict(b'{"x": 1}')
        assert json.loads(reply.data) == {
            "postprocess_value": "value", "loaded": True, "preprocess_value": "value", "x": 1,
        }


async def test_sync_generator_streams_chunk_by_chunk() -> None:
    async with running("streaming_sync") as r:
        chunks = await r.predict(b'{"n": 5, "bytes_tail": true}')
        assert [c.data for c in chunks] == [b"0", b"1", b"2", b"3", b"4", "é".encode()]
        assert chunks[0].content_type == "application/octet-stream"


async def test_stream_is_gathered_for_accept_json() -> None:
    async with running("streaming_sync") as r:
        [reply] = await r.predict(b'{"n": 5, "bytes_tail": true}', metadata=[("accept", "application/json")])
        assert reply.content_type == "application/json"
        assert json.loads(reply.data) == "01234é"


async def test_async_generator_streams_and_fails_mid_stream() -> None:
    async with running("streaming_async") as r:
        chunks = await r.predict(b"{}")
        assert [c.data for c in chunks] == [f"chunk-{i};".encode() for i in range(5)]

        received: list[bytes] = []
        request_stream = r.stub.Predict(_request(b'{"fail_after": 2}'))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for chunk in request_stream:
                received.append(chunk.data)
        assert received == [b"chunk-0;", b"chunk-1;"]
        assert err.value.code() is grpc.StatusCode.INTERNAL
        assert http_status(err.value) == 500

        with pytest.raises(grpc.aio.AioRpcError) as err:
            await r.predict(b'{"fail_after": 0}')
        assert err.value.details() == "Internal Server Error (in model/chainlet)."
        assert "stream broke" in r.output()


async def test_streaming_read_timeout_between_chunks() -> None:
    async with running("streaming_async") as r:  # streaming_read_timeout: 1
        received: list[bytes] = []
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for chunk in r.stub.Predict(_request(b'{"stall_after": 1}')):
                received.append(chunk.data)
        assert received == [b"chunk-0;"]
        assert err.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert http_status(err.value) == 504
        assert "Streaming read timeout" in err.value.details()


async def test_predict_concurrency_two_runs_two_at_a_time() -> None:
    async with running("concurrency") as r:  # predict_concurrency: 2; the model counts calls at once
        replies = await asyncio.gather(*(r.predict(json.dumps({"i": i, "count_together": True}).encode())
                                         for i in range(4)))
        answers = [json.loads(reply.data) for [reply] in replies]
        assert [a["input"]["i"] for a in answers] == [0, 1, 2, 3]
        assert max(a["most_at_once"] for a in answers) == 2  # two together, never three


async def test_pydantic_input_is_validated() -> None:
    async with running("pydantic_input") as r:
        [reply] = await r.predict(b'{"prompt": "hi", "max_tokens": 3}')
        assert json.loads(reply.data) == {"text": "HI", "tokens": 3}

        [reply] = await r.predict(msgpack.packb({"prompt": "bin"}), "application/octet-stream")
        assert msgpack.unpackb(reply.data) == {"text": "BIN", "tokens": 16}

        with pytest.raises(grpc.aio.AioRpcError) as err:
            await r.predict(b'{"max_tokens": "many"}')
        assert http_status(err.value) == 400
        assert err.value.details() == (
            "Input Parsing Errors:\n  `prompt`: Field required.\n"
            "  `max_tokens`: Input should be a valid integer, unable to parse string as an integer."
        )


async def test_numpy_array_round_trips_bit_exact_over_msgpack() -> None:
    rng = np.random.default_rng(7)
    array = rng.standard_normal((3, 4, 5)).astype(np.float32)
    array[0, 0, 0] = np.nan
    async with running("numpy_msgpack") as r:
        [reply] = await r.predict(msgpack_dumps({"array": array}), "application/octet-stream")
        assert reply.content_type == "application/octet-stream"
        result = msgpack_loads(reply.data)
        assert result["array"].dtype == np.float32
        assert result["array"].shape == (3, 4, 5)
        assert result["array"].tobytes() == array.tobytes()
        assert result["shape"] == [3, 4, 5]
        assert isinstance(result["sum"], np.float32)

        [reply] = await r.predict(msgpack_dumps({"array": np.arange(3, dtype=np.int64)}),
                                  "application/octet-stream")
        assert msgpack_loads(reply.data)["sum"] == 3


async def test_bundled_and_external_packages_are_importable() -> None:
    async with running("bundled_packages") as r:
        [reply] = await r.predict(b'{"name": "world"}')
        assert json.loads(reply.data) == "HELLO, WORLD!"


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--environment", "staging"], {}, {"name": "staging"}),
        ([], {"KINGPOST_ENVIRONMENT": "production"}, {"name": "production"}),
        ([], {"KINGPOST_ENVIRONMENT": ""}, None),
    ],
)
async def test_environment_kwarg_and_request_headers(args: list[str], env: dict[str, str],
                                                     expected: dict[str, str] | None) -> None:
    async with running("environment", args=args, env=env) as r:
        [reply] = await r.predict(b"{}", metadata=[("x-baseten-request-id", "req-1")])
        assert json.loads(reply.data) == {"environment": expected, "accept": None, "request_id": "req-1"}


async def test_failed_load_is_retried_once_then_the_process_exits() -> None:
    async with running("load_failure", ready=False) as r:
        assert await asyncio.to_thread(r.proc.wait, 30) != 0
        output = r.output()
        assert "load attempt 1" in output and "load attempt 2" in output
        assert "load attempt 3" not in output
        assert "Traceback" in output and "ValueError: weights are corrupt" in output


async def test_no_load_retries_when_configured_off() -> None:
    async with running("load_failure", ready=False, env={"NUM_LOAD_RETRIES_TRUSS": "0"}) as r:
        assert await asyncio.to_thread(r.proc.wait, 30) != 0
        assert "load attempt 2" not in r.output()


async def test_model_exception_is_a_500_with_the_traceback_in_the_log() -> None:
    async with running("predict_error") as r:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await r.predict(b"{}")
        assert err.value.code() is grpc.StatusCode.INTERNAL
        assert http_status(err.value) == 500
        assert err.value.details() == "Internal Server Error (in model/chainlet)."
        output = r.output()
        assert "Traceback" in output and "Crashed in `crash`." in output and "helpers.py" in output


@pytest.mark.parametrize(
    ("status", "detail", "code", "message"),
    [
        (418, "I'm a teapot", grpc.StatusCode.INVALID_ARGUMENT, "I'm a teapot"),
        (404, "no such thing", grpc.StatusCode.NOT_FOUND, "no such thing"),
        (502, {"error": "upstream"}, grpc.StatusCode.INTERNAL, '{"error": "upstream"}'),
    ],
)
async def test_http_exception_keeps_its_status_and_detail(status: int, detail: object, code: grpc.StatusCode,
                                                         message: str) -> None:
    async with running("predict_error") as r:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await r.predict(json.dumps({"status": status, "detail": detail}).encode())
        assert err.value.code() is code
        assert http_status(err.value) == status
        assert err.value.details() == message


async def test_not_ready_until_load_finishes(tmp_path: pathlib.Path) -> None:
    release = tmp_path / "release"
    async with running("slow_load", ready=False, env={"KP_TEST_RELEASE_FILE": str(release)}) as r:
        await asyncio.wait_for(_until_listening(r), 30)
        assert not await r.ready()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await r.predict(b"{}")
        assert err.value.code() is grpc.StatusCode.UNAVAILABLE
        assert http_status(err.value) == 503
        assert err.value.details() == "Model with name model is not ready."

        release.touch()
        await r.wait_ready()
        [reply] = await r.predict(b"7")
        assert reply.data == b"7"


async def _until_listening(r: RunnerProcess) -> None:
    while "runner listening" not in r.output():
        assert r.proc.poll() is None, r.output()
        await asyncio.sleep(0.02)


def _request(data: bytes) -> Any:
    return PredictRequest(body=httpbody_pb2.HttpBody(content_type="application/json", data=data))


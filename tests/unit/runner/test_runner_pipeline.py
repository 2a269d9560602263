"""One request through a model, in-process: ordering, the predict semaphore, streams and errors."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

from kingpost import errors
from kingpost_runner.model_request import Headers, ModelRequest
from kingpost_runner.pipeline import ChunkStream, Pipeline, Reply
from kingpost_runner.truss_model import describe


def request(body: bytes = b"{}", **headers: str) -> ModelRequest:
    return ModelRequest(Headers(list(headers.items())), body)


def pipeline(model: object, concurrency: int = 1, read_timeout: float = 60.0) -> Pipeline:
    return Pipeline(describe(model), concurrency, read_timeout)


async def run(p: Pipeline, body: bytes = b"{}", content_type: str = "application/json",
              **headers: str) -> Any:
    return await p.run(body, content_type, request(body, **headers))


async def test_pre_predict_post_in_order_mixing_sync_and_async() -> None:
    class Model:
        def preprocess(self, x: dict[str, Any]) -> dict[str, Any]:
            return {**x, "order": ["pre"], "pre_thread": threading.current_thread().name}

        async def predict(self, x: dict[str, Any]) -> dict[str, Any]:
            return {**x, "order": [*x["order"], "predict"]}

        def postprocess(self, x: dict[str, Any], request: ModelRequest) -> dict[str, Any]:
            return {**x, "order": [*x["order"], "post"], "rid": request.headers["X-Request-Id"]}

    reply = await run(pipeline(Model()), b'{"v": 1}', **{"x-request-id": "r1"})
    assert isinstance(reply, Reply)
    out = json.loads(reply.body)
    assert out["order"] == ["pre", "predict", "post"] and out["v"] == 1 and out["rid"] == "r1"
    assert out["pre_thread"] != threading.main_thread().name  # sync code runs off the event loop


async def test_only_predict_is_limited_by_predict_concurrency() -> None:
    inside = 0
    peak = 0
    gate = asyncio.Event()

    class Model:
        async def predict(self, x: Any) -> Any:
            nonlocal inside, peak
            inside += 1
            peak = max(peak, inside)
            await gate.wait()
            inside -= 1
            return x

    p = pipeline(Model(), concurrency=2)
    tasks = [asyncio.create_task(run(p)) for _ in range(5)]
    while inside < 2:
        await asyncio.sleep(0)
    for _ in range(10):
        await asyncio.sleep(0)
    assert inside == 2
    gate.set()
    await asyncio.gather(*tasks)
    assert peak == 2


async def test_streaming_predict_holds_its_slot_until_the_generator_ends() -> None:
    release = asyncio.Event()

    class Model:
        async def predict(self, x: Any) -> Any:
            if x.get("stream"):
                yield "a"
                await release.wait()
                yield "b"
            else:
                yield "plain"

    p = pipeline(Model(), concurrency=1)
    stream = await run(p, b'{"stream": true}')
    assert isinstance(stream, ChunkStream)
    assert await stream.__anext__() == b"a"
    second = asyncio.create_task(run(p, b"{}", accept="application/json"))
    for _ in range(10):
        await asyncio.sleep(0)
    assert not second.done()  # waiting for the slot the open stream holds
    release.set()
    assert [c async for c in stream] == [b"b"]
    reply = await second
    assert json.loads(reply.body) == "plain"


async def test_stream_is_gathered_for_accept_json_but_not_for_openai_clients() -> None:
    class Model:
        def predict(self, x: Any) -> Any:
            return (str(i) for i in range(3))

    p = pipeline(Model())
    reply = await run(p, accept="application/json")
    assert reply == Reply(b'"012"', "application/json")
    stream = await run(p, accept="application/json", **{"user-agent": "OpenAI/Python 1.61.0"})
    assert [c async for c in stream] == [b"0", b"1", b"2"]


async def test_stream_read_timeout_and_mid_stream_failure() -> None:
    never = asyncio.Event()

    class Model:
        async def predict(self, x: Any) -> Any:
            yield "first"
            if x.get("stall"):
                await never.wait()
            raise ValueError("boom")

    p = pipeline(Model(), read_timeout=0.05)
    stream = await run(p, b'{"stall": true}')
    assert await stream.__anext__() == b"first"
    with pytest.raises(errors.DeadlineExceeded, match="Streaming read timeout"):
        await stream.__anext__()

    stream = await run(p, b"{}")
    assert await stream.__anext__() == b"first"
    with pytest.raises(errors.ModelError) as err:
        await stream.__anext__()
    assert err.value.http_status == 500


async def test_postprocess_with_streaming_predict_is_a_500() -> None:
    class Model:
        def predict(self, x: Any) -> Any:
            yield "x"

        def postprocess(self, x: Any) -> Any:
            return x

    with pytest.raises(errors.ModelError):
        await run(pipeline(Model()))


async def test_errors_leave_as_platform_errors_and_free_the_slot() -> None:
    class HTTPException(Exception):
        def __init__(self, status_code: int, detail: str) -> None:
            self.status_code, self.detail = status_code, detail

    class Model:
        def predict(self, x: Any) -> Any:
            if x == "http":
                raise HTTPException(409, "busy")
            if x == "crash":
                raise KeyError("k")
            return x

    p = pipeline(Model(), concurrency=1)
    with pytest.raises(errors.InvalidArgument, match="^Invalid JSON payload"):
        await run(p, b"nope")
    with pytest.raises(errors.Conflict) as conflict:
        await run(p, b'"http"')
    assert conflict.value.http_status == 409 and conflict.value.message == "busy"
    with pytest.raises(errors.ModelError, match=r"^Internal Server Error \(in model/chainlet\)\.$"):
        await run(p, b'"crash"')
    reply = await asyncio.wait_for(run(p, b'"ok"'), 5)  # the slot was released every time
    assert reply.body == b'"ok"'


async def test_request_only_predict_gets_the_raw_body() -> None:
    class Model:
        async def predict(self, request: ModelRequest) -> Any:
            return {"raw": (await request.body()).decode(), "ct": request.headers["content-type"]}

    p = pipeline(Model())
    raw = ModelRequest(Headers([("content-type", "text/plain")]), b"not json")
    reply = await p.run(b"not json", "text/plain", raw)
    assert json.loads(reply.body) == {"raw": "not json", "ct": "text/plain"}

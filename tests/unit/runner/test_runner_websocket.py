"""A model's `websocket(ws)` over the runner's frames, in-process: truss-server's accept, close codes and `ws` API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kingpost.v1 import runner_pb2
from kingpost_runner import websocket
from kingpost_runner.model_request import Headers
from kingpost_runner.user_errors import MODEL_ERROR_MESSAGE

Frame = runner_pb2.WebsocketFrame


async def connect(handler: Any, incoming: list[Frame], *, end: bool = True) -> list[Frame]:
    """Serve one connection whose client sends `incoming` (then ends the stream if `end`); what the model sent."""
    queue: asyncio.Queue[Frame | None] = asyncio.Queue()
    for frame in incoming:
        queue.put_nowait(frame)
    if end:
        queue.put_nowait(None)
    sent: list[Frame] = []

    async def write(frame: Frame) -> None:
        sent.append(frame)

    await asyncio.wait_for(websocket.serve(handler, queue.get, write, Headers([("x-baseten-request-id", "r1")])),
                           timeout=5)
    return sent


def kinds(frames: list[Frame]) -> list[tuple[str, Any]]:
    out = []
    for f in frames:
        kind = f.WhichOneof("frame")
        value = getattr(f, kind)
        out.append((kind, (value.code, value.reason) if kind == "close" else value))
    return out


def test_a_model_without_websocket_is_closed_with_1003() -> None:
    sent = asyncio.run(connect(None, []))
    assert kinds(sent) == [("close", (1003, "WebSocket is not implemented on this deployment."))]


def test_echo_of_text_bytes_and_json_then_1000_when_the_model_returns() -> None:
    async def model(ws):
        await ws.accept()  # harmless: already accepted, as truss-server does
        assert ws.headers["X-Baseten-Request-Id"] == "r1"
        await ws.send_text(await ws.receive_text())
        await ws.send_bytes(await ws.receive_bytes())
        await ws.send_json({"got": await ws.receive_json()})

    sent = asyncio.run(connect(model, [Frame(text="hi"), Frame(binary=b"\x00\xff"), Frame(text='{"n": 1}')]))
    assert kinds(sent) == [("accepted", True), ("text", "hi"), ("binary", b"\x00\xff"),
                           ("text", '{"got":{"n":1}}'), ("close", (1000, ""))]


def test_iter_text_ends_when_the_client_closes_and_nothing_more_is_sent() -> None:
    async def model(ws):
        async for text in ws.iter_text():
            await ws.send_text(text.upper())

    sent = asyncio.run(connect(model, [Frame(text="a"), Frame(text="b"),
                                       Frame(close=runner_pb2.WebsocketClose(code=1001))]))
    assert kinds(sent) == [("accepted", True), ("text", "A"), ("text", "B")]


def test_the_client_leaving_raises_websocket_disconnect_in_the_model_with_its_code() -> None:
    seen = []

    async def model(ws):
        try:
            await ws.receive_text()
        except websocket.WebSocketDisconnect as e:
            seen.append(e.code)
            raise

    sent = asyncio.run(connect(model, [Frame(close=runner_pb2.WebsocketClose(code=4000, reason="x"))]))
    assert seen == [4000] and kinds(sent) == [("accepted", True)]
    # The stream ending without a close frame: the peer vanished (1006).
    seen.clear()
    asyncio.run(connect(model, []))
    assert seen == [1006]


def test_a_model_that_raises_is_closed_with_1011_and_truss_message(caplog: pytest.LogCaptureFixture) -> None:
    async def model(ws):
        await ws.send_text("first")
        raise ValueError("This is test error.")

    sent = asyncio.run(connect(model, []))
    assert kinds(sent) == [("accepted", True), ("text", "first"), ("close", (1011, MODEL_ERROR_MESSAGE))]
    assert "This is test error." in caplog.text


def test_a_model_that_closes_itself_gets_its_own_code_and_cannot_send_after() -> None:
    errors = []

    async def model(ws):
        await ws.close(4001, "done")
        try:
            await ws.send_text("late")
        except RuntimeError as e:
            errors.append(str(e))

    sent = asyncio.run(connect(model, []))
    assert kinds(sent) == [("accepted", True), ("close", (4001, "done"))]
    assert errors and "close message has been sent" in errors[0]


def test_receive_text_on_a_binary_message_says_so() -> None:
    async def model(ws):
        await ws.receive_text()

    sent = asyncio.run(connect(model, [Frame(binary=b"x")]))
    assert kinds(sent)[-1] == ("close", (1011, MODEL_ERROR_MESSAGE))

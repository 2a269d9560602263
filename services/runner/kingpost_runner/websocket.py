"""A Truss model's `websocket(ws)`: one WebSocket connection, relayed by the router as a stream of
`WebsocketFrame`s (RunnerService.Websocket), given to the model as a Starlette-like `ws`.

What truss-server does (reference/truss-compat.md §2.4), kept here:
- a model without `websocket`: the connection is accepted, then closed with 1003;
- the connection is accepted before the model runs (`ws.accept()` in the model does nothing more);
- the model returns: closed with 1000 unless it closed itself; it raises: closed with 1011 and the
  traceback in the runner's log; the client leaving raises `WebSocketDisconnect` in the model
  (Starlette's own class when Starlette is installed, so that `except WebSocketDisconnect` works).

`ws` supports `accept`, `receive`, `receive_text`, `receive_bytes`, `receive_json`, `send_text`,
`send_bytes`, `send_json`, `iter_text`, `iter_bytes`, `iter_json`, `close(code, reason)` and
`headers` (the metadata the router forwards: `x-baseten-request-id`, `traceparent`, ...).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from kingpost.v1 import runner_pb2
from kingpost_runner.model_request import Headers
from kingpost_runner.user_errors import MODEL_ERROR_MESSAGE

log = logging.getLogger("kingpost_runner.model")

NOT_IMPLEMENTED = "WebSocket is not implemented on this deployment."
NORMAL, UNSUPPORTED, INTERNAL_ERROR = 1000, 1003, 1011
# The close code a peer that vanished without a close frame is reported with (RFC 6455 §7.1.5).
ABNORMAL = 1006

try:  # the model's environment may have Starlette (FastAPI): raise its class, which models catch
    from starlette.websockets import WebSocketDisconnect
except ImportError:  # pragma: no cover - depends on the model's requirements
    class WebSocketDisconnect(Exception):  # type: ignore[no-redef]
        def __init__(self, code: int = 1000, reason: str | None = None) -> None:
            super().__init__(code, reason)
            self.code = code
            self.reason = reason or ""

Frame = runner_pb2.WebsocketFrame
Read = Callable[[], Awaitable["runner_pb2.WebsocketFrame | None"]]  # None: the router ended the stream
Write = Callable[["runner_pb2.WebsocketFrame"], Awaitable[None]]


def close_frame(code: int, reason: str = "") -> runner_pb2.WebsocketFrame:
    return Frame(close=runner_pb2.WebsocketClose(code=code, reason=reason))


class ModelWebSocket:
    """The `ws` a model's `websocket` gets."""

    def __init__(self, read: Read, write: Write, headers: Headers) -> None:
        self._read = read
        self._write = write
        self.headers = headers
        self.closed = False  # by the model (close) or by the client (a close frame, the stream's end)

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        """Already accepted before the model runs (as truss-server does)."""

    async def receive(self) -> dict[str, Any]:
        """The next message as an ASGI event: websocket.receive (text or bytes) or websocket.disconnect."""
        if self.closed:
            raise WebSocketDisconnect(NORMAL)
        frame = await self._read()
        kind = None if frame is None else frame.WhichOneof("frame")
        if kind == "text":
            return {"type": "websocket.receive", "text": frame.text}  # type: ignore[union-attr]
        if kind == "binary":
            return {"type": "websocket.receive", "bytes": frame.binary}  # type: ignore[union-attr]
        self.closed = True
        if kind == "close":
            return {"type": "websocket.disconnect", "code": frame.close.code,  # type: ignore[union-attr]
                    "reason": frame.close.reason}  # type: ignore[union-attr]
        return {"type": "websocket.disconnect", "code": ABNORMAL, "reason": ""}

    async def _message(self) -> dict[str, Any]:
        message = await self.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message["code"], message.get("reason") or None)
        return message

    async def receive_text(self) -> str:
        message = await self._message()
        if "text" not in message:
            raise TypeError("receive_text() got a binary message; use receive_bytes() or receive()")
        return message["text"]

    async def receive_bytes(self) -> bytes:
        message = await self._message()
        if "bytes" not in message:
            raise TypeError("receive_bytes() got a text message; use receive_text() or receive()")
        return message["bytes"]

    async def receive_json(self, mode: str = "text") -> Any:
        message = await self._message()
        data = message.get("text")
        if data is None:
            data = message["bytes"].decode()
        return json.loads(data)

    async def iter_text(self) -> AsyncIterator[str]:
        try:
            while True:
                yield await self.receive_text()
        except WebSocketDisconnect:
            pass

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        try:
            while True:
                yield await self.receive_bytes()
        except WebSocketDisconnect:
            pass

    async def iter_json(self) -> AsyncIterator[Any]:
        try:
            while True:
                yield await self.receive_json()
        except WebSocketDisconnect:
            pass

    async def send(self, message: dict[str, Any]) -> None:
        """An ASGI send event: websocket.send (text or bytes) or websocket.close."""
        if message.get("type") == "websocket.close":
            await self.close(message.get("code", NORMAL), message.get("reason"))
        elif message.get("text") is not None:
            await self.send_text(message["text"])
        else:
            await self.send_bytes(message["bytes"])

    async def send_text(self, data: str) -> None:
        self._check_open()
        await self._write(Frame(text=data))

    async def send_bytes(self, data: bytes) -> None:
        self._check_open()
        await self._write(Frame(binary=bytes(data)))

    async def send_json(self, data: Any, mode: str = "text") -> None:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if mode == "binary":
            await self.send_bytes(text.encode())
        else:
            await self.send_text(text)

    async def close(self, code: int = NORMAL, reason: str | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        await self._write(close_frame(code, reason or ""))

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError('Cannot call "send" once a close message has been sent.')


async def serve(handler: Callable[[Any], Awaitable[None]] | None, read: Read, write: Write,
                headers: Headers) -> None:
    """One connection, start to end: accept (or 1003), the model, the closing frame."""
    if handler is None:
        log.error(NOT_IMPLEMENTED)
        await write(close_frame(UNSUPPORTED, NOT_IMPLEMENTED))
        return
    await write(Frame(accepted=True))
    ws = ModelWebSocket(read, write, headers)
    try:
        await handler(ws)
    except WebSocketDisconnect as e:
        log.info("Client terminated websocket connection: `%s`.", e)
        return
    except Exception as e:
        log.error("Exception in model `websocket`:", exc_info=e)
        if not ws.closed:
            await ws.close(INTERNAL_ERROR, MODEL_ERROR_MESSAGE)
        return
    if not ws.closed:
        await ws.close(NORMAL)

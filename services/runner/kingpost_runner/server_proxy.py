"""RunnerService in front of a custom server (`docker_server`): requests passed through as HTTP.

- Predict: the body POSTed to `predict_endpoint` with its content type (and the headers the router
  forwards: accept, traceparent, x-baseten-request-id); a 2xx answer streams back as it comes, any
  other status is the caller's error with the server's own status and body as the message.
- Sync: the caller's method, path, query, headers and body as sent; the server's status and headers
  in the initial metadata (`x-http-status`), its body streamed back as it is produced (SSE).
- Websocket: a WebSocket to `predict_endpoint` (as truss's proxy sends `/v1/websocket` there), frames
  relayed both ways (ws_client.py); a server that refuses the upgrade: the call fails before its first
  frame with the server's 4xx (else 502) as its HTTP status, so the client is refused before the upgrade.
- Predict's input and output are logged as the deployment's request logging says (observe.RequestLog);
  Sync's and websockets' are not.
- Ready: once the server's readiness endpoint has answered (custom_server.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator

import grpc
from google.api import httpbody_pb2

from kingpost import errors
from kingpost.grpc_status import HTTP_STATUS_KEY, abort_on_error, grpc_abort
from kingpost.v1 import runner_pb2, runner_pb2_grpc

from kingpost_runner import http1, ws_client
from kingpost_runner.custom_server import HOST, CustomServer
from kingpost_runner.observe import RequestLog
from kingpost_runner.user_errors import error_for_status

log = logging.getLogger(__name__)

OCTET_STREAM = "application/octet-stream"
# Request metadata the router forwards to Predict that the server may use.
_PREDICT_HEADERS = frozenset({"accept", "traceparent", "tracestate", "x-baseten-request-id"})
# Response headers that belong to the hop, or that gRPC metadata cannot carry as they are.
_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "content-type", "te",
                  "trailer", "upgrade", "proxy-connection"})
_VALID_KEY = re.compile(r"[a-z0-9_.\-]+")
MAX_ERROR_BYTES = 16 * 1024
MAX_WEBSOCKET_MESSAGE = 100 * 1024 * 1024


def _close(code: int, reason: str) -> runner_pb2.WebsocketFrame:
    return runner_pb2.WebsocketFrame(close=runner_pb2.WebsocketClose(code=code, reason=reason))


def response_metadata(response: http1.Response) -> list[tuple[str, str]]:
    """The server's status and the headers gRPC metadata can carry (printable ASCII, not `-bin`)."""
    out = [(HTTP_STATUS_KEY, str(response.status))]
    for name, value in response.headers:
        if (name in _HOP or name.startswith(("grpc-", HTTP_STATUS_KEY)) or name.endswith("-bin")
                or not _VALID_KEY.fullmatch(name) or not value.isascii() or not value.isprintable()):
            continue
        out.append((name, value))
    return out


class ServerProxyServicer(runner_pb2_grpc.RunnerServiceServicer):
    def __init__(self, server: CustomServer, request_log: RequestLog | None = None) -> None:
        self.server = server
        self.request_log = request_log
        if request_log is not None:  # as RunnerServicer: registered only when logging is on
            self.Predict = self._logged_predict  # type: ignore[method-assign]

    @abort_on_error
    async def Ready(self, request: runner_pb2.ReadyRequest, context: grpc.aio.ServicerContext
                    ) -> runner_pb2.ReadyResponse:
        if not self.server.ready:
            raise errors.Unavailable("the server is not ready yet (readiness_endpoint)")
        return runner_pb2.ReadyResponse(ready=True)

    @abort_on_error
    async def Reload(self, request: runner_pb2.ReloadRequest, context: grpc.aio.ServicerContext
                     ) -> runner_pb2.ReloadResponse:
        raise errors.InvalidArgument("a docker_server Truss does not live-reload: push it again")

    async def _send(self, context: grpc.aio.ServicerContext, method: str, path: str,
                    headers: list[tuple[str, str]], body: bytes) -> http1.Response:
        try:
            return await self.server.client.request(method, path, headers, body)
        except (OSError, http1.BadResponse, asyncio.IncompleteReadError) as e:
            await grpc_abort(context, errors.ModelError(
                f"the server at port {self.server.port} did not answer {method} {path}: {e}",
                http_status=502))
            raise AssertionError("unreachable") from e

    async def _logged_predict(self, request: runner_pb2.RunnerPredictRequest,
                              context: grpc.aio.ServicerContext) -> AsyncIterator[httpbody_pb2.HttpBody]:
        replies = self.request_log.wrap(  # type: ignore[union-attr]
            "predict", request.body.content_type or "application/json", request.body.data, context,
            ServerProxyServicer.Predict(self, request, context))
        async with contextlib.aclosing(replies) as stream:  # the server's answer stops with the call
            async for reply in stream:
                yield reply

    async def Predict(self, request: runner_pb2.RunnerPredictRequest, context: grpc.aio.ServicerContext
                      ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        body = request.body
        headers = [(k, v) for k, v in context.invocation_metadata() or ()
                   if k in _PREDICT_HEADERS and isinstance(v, str)]
        headers.append(("content-type", body.content_type or "application/json"))
        path = self.server.spec.predict_endpoint
        response = await self._send(context, "POST", path, headers, body.data)
        content_type = response.header("content-type") or OCTET_STREAM
        if not 200 <= response.status < 300:
            data = b"".join([chunk async for chunk in response.body])
            text = data[:MAX_ERROR_BYTES].decode("utf-8", "replace") or f"HTTP {response.status}"
            await grpc_abort(context, error_for_status(response.status, text))
        async for chunk in self._stream(context, response, content_type):
            yield chunk

    async def Sync(self, request: runner_pb2.RunnerSyncRequest, context: grpc.aio.ServicerContext
                   ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        headers = [(h.name, h.value) for h in request.headers]
        if request.body.content_type:
            headers.append(("content-type", request.body.content_type))
        response = await self._send(context, request.method or "POST", request.path or "/", headers,
                                    request.body.data)
        await context.send_initial_metadata(response_metadata(response))
        async for chunk in self._stream(context, response, response.header("content-type") or OCTET_STREAM):
            yield chunk

    @abort_on_error
    async def Websocket(self, requests: AsyncIterator[runner_pb2.WebsocketFrame],
                        context: grpc.aio.ServicerContext) -> None:
        path = self.server.spec.predict_endpoint
        headers = [(k, v) for k, v in context.invocation_metadata() or ()
                   if k in _PREDICT_HEADERS and isinstance(v, str)]
        try:
            conn = await ws_client.connect(HOST, self.server.port, path, headers, max_size=MAX_WEBSOCKET_MESSAGE)
        except (OSError, ws_client.Refused) as e:
            # Refused before any upgrade, as the server itself answered: its 4xx, else 502.
            status = e.status if isinstance(e, ws_client.Refused) and 400 <= e.status < 500 else 502
            raise errors.ModelError(f"the server refused a WebSocket at {path}: {e}", http_status=status) from e
        await context.write(runner_pb2.WebsocketFrame(accepted=True))

        async def to_server() -> None:
            while (frame := await context.read()) is not grpc.aio.EOF:
                kind = frame.WhichOneof("frame")
                if kind == "text":
                    await conn.send(ws_client.TEXT, frame.text.encode())
                elif kind == "binary":
                    await conn.send(ws_client.BINARY, frame.binary)
                elif kind == "close":
                    await conn.close(frame.close.code, frame.close.reason)
                    return
            await conn.close(1001)  # the router's stream ended without a close: the client went away

        upstream = asyncio.ensure_future(to_server())
        try:
            while True:
                message = await conn.receive()
                if message.opcode == ws_client.CLOSE:
                    if not upstream.done():  # the server closed first
                        await context.write(_close(message.close_code, message.data.decode("utf-8", "replace")))
                    await conn.close(message.close_code)  # the closing handshake's answer
                    return
                if message.opcode == ws_client.TEXT:
                    await context.write(runner_pb2.WebsocketFrame(text=message.data.decode("utf-8", "replace")))
                else:
                    await context.write(runner_pb2.WebsocketFrame(binary=message.data))
        finally:
            upstream.cancel()
            await conn.close(1001)

    async def _stream(self, context: grpc.aio.ServicerContext, response: http1.Response, content_type: str
                      ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        first = True
        try:
            async for data in response.body:
                yield httpbody_pb2.HttpBody(content_type=content_type if first else "", data=data)
                first = False
        except (OSError, http1.BadResponse, asyncio.IncompleteReadError) as e:
            await grpc_abort(context, errors.ModelError(
                f"the server at port {self.server.port} broke off its answer: {e}", http_status=502))
        if first:  # an empty body still says its content type
            yield httpbody_pb2.HttpBody(content_type=content_type, data=b"")

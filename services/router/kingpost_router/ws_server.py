"""`{prefix}/websocket`: the router's WebSocket endpoint (HTTP/1.1, aiohttp), to which Envoy sends upgrades.

One connection, as a predict request goes: the path names the deployment (ws_path.py), the API key
is checked as the router's gRPC interceptor checks it (401/403/503 before the upgrade, in the usual
`{"error": ...}` shape), a replica slot is taken (waiting, and waking a deployment at zero, as
predict waits: 429/503 before the upgrade) and held while the connection is open, so that an open
connection counts toward the replica's concurrency and the autoscaler's load. Then the frames are
relayed over the runner's bidirectional Websocket stream; the runner's first frame says whether
the model accepted (else the connection is upgraded and closed with its code: 1003 for a model
without `websocket`, as truss-server does); a custom server that refuses the upgrade is refused to
the client before it, with the server's 4xx (else 502) and `{"error": ...}` naming the server's answer. Messages up to 100 MiB (truss's limit).

Each connection counts once in `kingpost_router_requests_total` when it ends (its latency is not a
request's, so no histogram): OK when the model took it and it ended without a failure, else the
refusal's code (UNAUTHENTICATED, NOT_FOUND, RESOURCE_EXHAUSTED, ...), UNIMPLEMENTED for a model (or
server) that would not take it, the runner's failure's code, or CANCELLED when the client left first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import grpc
from aiohttp import WSMsgType, web

from kingpost.auth import KeyCache, key_refusal
from kingpost.errors import InvalidArgument, KingpostError
from kingpost.grpc_status import HTTP_STATUS_KEY
from kingpost.v1 import runner_pb2
from kingpost_router import key_scope, metrics, tracing, ws_path
from kingpost_router.request_kind import environment_label
from kingpost_router.routes import resolve

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 100 * 1024 * 1024
# What the model may read as `ws.headers` besides the request id.
FORWARDED = ("traceparent", "tracestate", "user-agent", "sec-websocket-protocol")
NOT_IMPLEMENTED = 1003
INTERNAL_ERROR = 1011
CLIENT_GONE = 1006
_EOF = grpc.aio.EOF


class _Counted:
    """What a connection counts under in kingpost_router_requests_total."""

    __slots__ = ("series", "code")

    def __init__(self) -> None:
        self.series: metrics.Series | None = None
        self.code = "UNKNOWN"


def _http_status(error: grpc.aio.AioRpcError) -> int:
    """The HTTP status a runner's refusal carries (x-http-status), 0 for none."""
    for key, value in error.trailing_metadata() or ():
        if key == HTTP_STATUS_KEY and isinstance(value, str) and value.isdigit():
            return int(value)
    return 0


def _close(code: int, reason: str = "") -> runner_pb2.WebsocketFrame:
    return runner_pb2.WebsocketFrame(close=runner_pb2.WebsocketClose(code=code, reason=reason))


class WebsocketServer:
    def __init__(self, router, keys: KeyCache, *, host: str, port: int, timeout: float) -> None:
        """`router`: the RouterServicer (its route snapshot, slots and runner channels)."""
        self._router = router
        self._keys = keys
        self._host, self._port = host, port
        self._timeout = timeout
        self._runner: web.AppRunner | None = None
        self.port = port  # the bound one, once started (port 0: any)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self.handle)
        # handler_cancellation: a client that hangs up while waiting for a slot leaves the queue at once.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0,
                                     handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await site.start()
        except OSError as e:  # as the gRPC port's failure reads (kingpost.service)
            await self._runner.cleanup()
            raise SystemExit(f"router: cannot listen for WebSockets on {self._host}:{self._port}: "
                             f"{e.strerror or e} (the router's websocket_port)") from None
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("websockets on %s:%d", self._host, self.port)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        counted = _Counted()
        try:
            return await self._handle(request, counted)
        except asyncio.CancelledError:
            counted.code = "CANCELLED"
            raise
        finally:
            (counted.series or metrics.REQUESTS.series("", "", "", "")).counted(counted.code)

    async def _handle(self, request: web.Request, counted: _Counted) -> web.StreamResponse:
        router = self._router
        try:
            to = ws_path.parse(request.raw_path)
            authorization = request.headers.get("Authorization")
            refusal = key_refusal(self._keys, authorization)
            if refusal is not None:
                raise refusal.error()
            deployment = resolve(router.snapshot, to.model_id, to.target, to.environment, to.deployment_id,
                                 request.host, rng=random.random)
            counted.series = metrics.REQUESTS.series(deployment.model_id, deployment.model_name,
                                                     deployment.deployment_id, environment_label(to))  # type: ignore[arg-type]
            key_scope.check_authorization(self._keys, authorization, deployment)
            if request.headers.get("Upgrade", "").lower() != "websocket":
                raise InvalidArgument(f"{request.path} is a WebSocket route: connect with a WebSocket client")
            replica = await router.acquire(deployment, self._timeout)
        except KingpostError as e:
            counted.code = e.wire_code
            return web.json_response({"error": e.message}, status=e.http_status)
        metadata = [(key, request.headers[key]) for key in FORWARDED if key in request.headers]
        request_id = request.headers.get("x-baseten-request-id") or request.headers.get("x-request-id")
        if request_id:
            metadata.append((tracing.REQUEST_ID_KEY, request_id))
        async with router.forwarder.websocket(deployment, replica, metadata) as call:
            try:
                first = await call.read()
            except grpc.aio.AioRpcError as e:
                refused = _http_status(e)
                if refused:  # the runner said no with an HTTP status (a custom server's refusal)
                    counted.code = e.code().name
                    return web.json_response({"error": e.details()}, status=refused)
                if e.code() is not grpc.StatusCode.UNIMPLEMENTED:
                    counted.code = e.code().name
                    return web.json_response(
                        {"error": f"replica {replica.replica_id} did not take the connection: {e.details()}"},
                        status=503 if e.code() is grpc.StatusCode.UNAVAILABLE else 502)
                # A runner older than websockets.
                first = _close(NOT_IMPLEMENTED, "WebSocket is not implemented on this deployment.")
            ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES)
            await ws.prepare(request)
            if first is _EOF or first.WhichOneof("frame") == "close":
                close = first.close if first is not _EOF else runner_pb2.WebsocketClose(code=INTERNAL_ERROR)
                counted.code = "UNIMPLEMENTED" if close.code == NOT_IMPLEMENTED else "INTERNAL"
                await ws.close(code=close.code, message=close.reason.encode())
                return ws
            upstream = asyncio.ensure_future(_client_to_runner(ws, call))
            try:
                counted.code = await _runner_to_client(ws, call)
            finally:
                upstream.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await upstream
            return ws


async def _client_to_runner(ws: web.WebSocketResponse, call: grpc.aio.StreamStreamCall) -> None:
    """The client's messages to the model; its close (or its vanishing: 1006) ends the model's stream."""
    async for message in ws:
        if message.type is WSMsgType.TEXT:
            await call.write(runner_pb2.WebsocketFrame(text=message.data))
        elif message.type is WSMsgType.BINARY:
            await call.write(runner_pb2.WebsocketFrame(binary=message.data))
        else:  # ERROR (a message over the limit, a broken frame): aiohttp has closed the connection
            break
    with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
        await call.write(_close(ws.close_code or CLIENT_GONE))
        await call.done_writing()


async def _runner_to_client(ws: web.WebSocketResponse, call: grpc.aio.StreamStreamCall) -> str:
    """The model's messages to the client, until its close (or the runner's failure: 1011); the code
    the connection counts under."""
    try:
        while True:
            frame = await call.read()
            if frame is _EOF:
                break
            kind = frame.WhichOneof("frame")
            if kind == "text":
                await ws.send_str(frame.text)
            elif kind == "binary":
                await ws.send_bytes(frame.binary)
            elif kind == "close":
                await ws.close(code=frame.close.code, message=frame.close.reason.encode())
                return "INTERNAL" if frame.close.code == INTERNAL_ERROR else "OK"
    except grpc.aio.AioRpcError as e:
        log.warning("websocket: the runner's stream failed: %s %s", e.code().name, e.details())
        await ws.close(code=INTERNAL_ERROR, message=b"the model's replica stopped answering")
        return e.code().name
    except ConnectionResetError:  # the client is gone
        return "CANCELLED"
    await ws.close()
    return "OK"

"""The runner's HTTP/1.1 data plane: what Envoy sends a replica straight, without transcoding.

Served by uvicorn (httptools parser, the process's uvloop) in the runner's own event loop, beside
RunnerService on its own port (`--http-port`); the protocol was chosen by measurement
(bench/runner_protocols.py, BENCHMARKS.md). A raw ASGI app, no framework:

- `POST /predict`: the body and content type as the client sent them, through the same Pipeline as
  `RunnerService.Predict`; every request header reaches the model's `request.headers` except
  `authorization`, the hop-by-hop headers, `x-envoy-*` and `x-kingpost-*`.
- `{ANY} /sync/{path}?{query}`: as `RunnerService.Sync` (truss's OpenAI-style routes), or for a
  `docker_server` Truss the request passed to its server (`ProxyApp`), status and headers back.
- `GET /ready`: 200 once the model is loaded and healthy, else 503.
Answers: the model's body and content type; a stream as chunked transfer, each chunk written as
the model yields it; a failure as `{"error": "<message>"}` with the HTTP status of its
`kingpost.errors` class (or the model's own); a body over the limit: 413; not loaded yet: 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

from kingpost import errors

from kingpost_runner import codec, http1, observe, user_errors
from kingpost_runner.custom_server import CustomServer
from kingpost_runner.model_request import Headers, ModelRequest
from kingpost_runner.pipeline import Pipeline, Reply
from kingpost_runner.truss_model import OPENAI_ROUTES
from kingpost_runner.user_errors import NOT_READY_MESSAGE

log = logging.getLogger(__name__)

# Request headers that are not the caller's to the model: its key, and the hop's own.
_NOT_FORWARDED = frozenset({
    b"authorization", b"connection", b"keep-alive", b"proxy-connection", b"proxy-authorization",
    b"proxy-authenticate", b"te", b"trailer", b"transfer-encoding", b"upgrade", b"content-length",
})
# Envoy's own, and the platform's routing headers (x-kingpost-deployment, ...).
_PLATFORM_PREFIXES = (b"x-envoy-", b"x-kingpost-")
# ... and, to a docker_server, what the runner sets itself.
_NOT_TO_SERVER = _NOT_FORWARDED | {b"host", b"content-type"}
# Response headers of a docker_server that belong to its hop to the runner.
_SERVER_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer",
                         "upgrade", "proxy-connection"})
_JSON = [(b"content-type", b"application/json")]


def request_headers(scope: dict[str, Any], drop: frozenset[bytes] = _NOT_FORWARDED) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]
            if k not in drop and not k.startswith(_PLATFORM_PREFIXES)]


async def _answer(send: Callable[..., Any], status: int, body: bytes,
                  headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


async def _error(send: Callable[..., Any], err: errors.KingpostError) -> None:
    await _answer(send, err.http_status, json.dumps({"error": err.message}).encode(), _JSON)


class _Request:
    """One request's body (read within the limit) and whether its client has gone."""

    def __init__(self, scope: dict[str, Any], receive: Callable[..., Any], max_body: int) -> None:
        self.scope = scope
        self._receive = receive
        self._max_body = max_body
        self.gone = False
        self.started = False  # the answer's head is sent: a failure can only break the connection off
        self.done = False
        self._task = asyncio.current_task()
        self._watch: asyncio.Task[None] | None = None

    async def body(self) -> bytes:
        for name, value in self.scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self._max_body:
                raise self._too_large(int(value))
        parts, size = [], 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.gone = True
                raise asyncio.CancelledError("the client went away")
            part = message.get("body", b"")
            size += len(part)
            if size > self._max_body:
                raise self._too_large(size)
            parts.append(part)
            if not message.get("more_body"):
                return parts[0] if len(parts) == 1 else b"".join(parts)

    def _too_large(self, size: int) -> errors.PayloadTooLarge:
        return errors.PayloadTooLarge(f"request body is {size} bytes or more; the limit is {self._max_body}")

    def is_done(self) -> bool:
        """For `request.is_disconnected()`: watches the connection from the first call on."""
        if self._watch is None:
            self._watch = asyncio.ensure_future(self._wait_gone())
        return self.gone

    async def _wait_gone(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        if self.started and not self.done and self._task is not None:
            self._task.cancel()  # a stream nobody reads: stop the model's generator

    def stop_watching(self) -> None:
        if self._watch is not None:
            self._watch.cancel()


async def _stream(send: Callable[..., Any], request: _Request, status: int, headers: list[tuple[bytes, bytes]],
                  chunks: AsyncIterator[bytes]) -> None:
    """A stream answer: its first chunk before the headers (a failure before it keeps its own status),
    then each chunk written as it comes (chunked transfer); the stream closed when the client leaves."""
    try:
        first = await anext(chunks, None)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        request.started = True
        request.is_done()  # watch the client: a stream it left is stopped
        if first:
            await send({"type": "http.response.body", "body": first, "more_body": True})
        async for chunk in chunks:
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        request.done = True
        await send({"type": "http.response.body", "body": b""})
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


async def _serve(request: _Request, send: Callable[..., Any], handling: Any) -> None:
    """Await one request's handling; a failure becomes its `{"error"}` answer, or, once a stream's
    head is sent, breaks the connection off (the client sees the stream end without its last chunk)."""
    try:
        await handling
    except asyncio.CancelledError:
        if not request.gone:
            raise
    except Exception as e:
        err = e if isinstance(e, errors.KingpostError) else None
        if err is None:  # a bug here, not in the model
            log.exception("runner failed serving a request")
            err = errors.Internal(f"Unhandled exception: {e}")
        if request.started:
            log.warning("a streamed answer broke off: %s", err.message)
            return
        await _error(send, err)
    finally:
        request.stop_watching()


class ModelApp:
    """The data plane of a model.py Truss; `pipeline()` is the runner's current one (None: loading)."""

    def __init__(self, pipeline: Callable[[], Pipeline | None], max_body: int) -> None:
        self._pipeline = pipeline
        self._max_body = max_body

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        request = _Request(scope, receive, self._max_body)
        await _serve(request, send, self._route(scope["path"], scope["method"], request, send))

    async def _route(self, path: str, method: str, request: _Request, send: Callable[..., Any]) -> None:
        pipeline = self._pipeline()
        if path == "/ready":
            if pipeline is None or not await pipeline.is_healthy():
                raise errors.Unavailable(NOT_READY_MESSAGE)
            await _answer(send, 200, b'{"ready": true}', _JSON)
            return
        if path == "/predict":
            if method != "POST":
                raise errors.InvalidArgument(f"{method} /predict: predict takes a POST")
            body = await request.body()
            if pipeline is None:
                raise errors.Unavailable(NOT_READY_MESSAGE)
            forwarded = request_headers(request.scope)
            observe.request_context(forwarded)  # its request id on the model's log lines
            headers = Headers(forwarded)
            content_type = headers.get("content-type") or codec.JSON
            result = await pipeline.run(body, content_type, ModelRequest(headers, body, is_done=request.is_done))
            await self._reply(result, codec.OCTET_STREAM, request, send)
            return
        if path == "/sync" or path.startswith("/sync/"):
            sync_path = path[len("/sync"):] or "/"
            body = await request.body()
            if pipeline is None:
                raise errors.Unavailable(NOT_READY_MESSAGE)
            name = OPENAI_ROUTES.get(sync_path)
            model_method = pipeline.methods.openai.get(name) if name else None
            if model_method is None or method != "POST":
                raise user_errors.missing_route(name, method, sync_path)
            headers = Headers(request_headers(request.scope))
            content_type = headers.get("content-type") or codec.JSON
            model_request = ModelRequest(headers, body, is_done=request.is_done, path=sync_path)
            result = await pipeline.run_method(model_method, body, content_type, model_request)
            await self._reply(result, codec.EVENT_STREAM, request, send)
            return
        raise errors.NotFound(f"{method} {path}: the runner serves POST /predict, /sync/... and GET /ready")

    @staticmethod
    async def _reply(result: Any, stream_type: str, request: _Request, send: Callable[..., Any]) -> None:
        if isinstance(result, Reply):
            await _answer(send, 200, result.body, [(b"content-type", result.content_type.encode("latin-1"))])
            return
        await _stream(send, request, 200, [(b"content-type", stream_type.encode())], result)


class ProxyApp:
    """The data plane of a `docker_server` Truss: requests passed to its server (server_proxy.py's
    rules): predict to `predict_endpoint`, `/sync/...` as sent, the server's answer streamed back."""

    def __init__(self, server: CustomServer, max_body: int) -> None:
        self._server = server
        self._max_body = max_body

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        request = _Request(scope, receive, self._max_body)
        await _serve(request, send, self._route(scope, request, send))

    async def _route(self, scope: dict[str, Any], request: _Request, send: Callable[..., Any]) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/ready":
            if not self._server.ready:
                raise errors.Unavailable("the server is not ready yet (readiness_endpoint)")
            await _answer(send, 200, b'{"ready": true}', _JSON)
            return
        if not self._server.ready:
            raise errors.Unavailable("the server is not ready yet (readiness_endpoint)")
        if path == "/predict":
            body = await request.body()
            headers = [(k, v) for k, v in request_headers(scope)
                       if k in ("accept", "traceparent", "tracestate", "x-baseten-request-id")]
            content_type = next((v for k, v in request_headers(scope) if k == "content-type"), codec.JSON)
            response = await self._send("POST", self._server.spec.predict_endpoint,
                                        [*headers, ("content-type", content_type)], body)
            if not 200 <= response.status < 300:
                data = b"".join([chunk async for chunk in response.body])
                text = data[:16 * 1024].decode("utf-8", "replace") or f"HTTP {response.status}"
                raise user_errors.error_for_status(response.status, text)
            content_type = response.header("content-type") or codec.OCTET_STREAM
            await _stream(send, request, 200, [(b"content-type", content_type.encode("latin-1"))],
                          self._body(response))
            return
        if path == "/sync" or path.startswith("/sync/"):
            body = await request.body()
            target = (path[len("/sync"):] or "/") + (f"?{scope['query_string'].decode('latin-1')}"
                                                     if scope["query_string"] else "")
            headers = request_headers(scope, _NOT_TO_SERVER)
            content_type = next((v for k, v in request_headers(scope) if k == "content-type"), None)
            if content_type is not None:
                headers.append(("content-type", content_type))
            response = await self._send(method, target, headers, body)
            out = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers if k not in _SERVER_HOP]
            await _stream(send, request, response.status, out, self._body(response))
            return
        raise errors.NotFound(f"{method} {path}: the runner serves POST /predict, /sync/... and GET /ready")

    async def _send(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> http1.Response:
        try:
            return await self._server.client.request(method, path, headers, body)
        except (OSError, http1.BadResponse, asyncio.IncompleteReadError) as e:
            raise errors.ModelError(f"the server at port {self._server.port} did not answer {method} {path}: {e}",
                                    http_status=502) from e

    async def _body(self, response: http1.Response) -> AsyncIterator[bytes]:
        try:
            async for chunk in response.body:
                yield chunk
        except (OSError, http1.BadResponse, asyncio.IncompleteReadError) as e:  # the client's stream breaks off too
            raise errors.ModelError(f"the server at port {self._server.port} broke off its answer: {e}",
                                    http_status=502) from e


class HttpPlane:
    """uvicorn's HTTP/1.1 protocol (httptools) on a socket of this process's event loop."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        import uvicorn

        self.host, self.port = host, port
        # Envoy keeps its upstream connections idle up to its own idle_timeout: longer here than there.
        self._config = uvicorn.Config(app, host=host, port=port, http="httptools", ws="none", lifespan="off",
                                      interface="asgi3", access_log=False, log_config=None, proxy_headers=False,
                                      server_header=False, date_header=False, timeout_keep_alive=3600,
                                      timeout_graceful_shutdown=5)
        self._server: Any = None
        self._socket: socket.socket | None = None

    async def start(self) -> bool:
        """Listen; False (logged) when the port cannot be bound."""
        import uvicorn

        try:
            sock = socket.create_server((self.host, self.port), reuse_port=False)
        except OSError as e:
            log.error("cannot listen on %s:%d for HTTP: %s", self.host, self.port, e)
            return False
        self._config.load()
        server = uvicorn.Server(self._config)
        server.lifespan = self._config.lifespan_class(self._config)
        await server.startup(sockets=[sock])
        self._server, self._socket = server, sock
        return True

    async def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.shutdown(sockets=[self._socket])
            self._server = None

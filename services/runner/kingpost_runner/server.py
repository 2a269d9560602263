"""The runner's gRPC face: RunnerService over one loaded model, and the process's lifetime.

The server listens at once and answers Ready with UNAVAILABLE (HTTP 503) until load() has
finished in its background thread; a model that fails to load ends the process with exit code 1
after logging the traceback, so the worker agent sees the replica fail with the log tail.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import pathlib
import signal
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import grpc
from google.api import httpbody_pb2

from kingpost import errors, keepalive
from kingpost.grpc_status import HTTP_STATUS_KEY, abort_on_error, grpc_abort
from kingpost.wire_limits import DEFAULT_MAX_BODY_BYTES, MESSAGE_LIMITS
from kingpost.v1 import runner_pb2, runner_pb2_grpc

from kingpost.docker_server import DockerServer

from kingpost_runner import codec, loader, model_metrics, observe, reload, request_log, user_errors, websocket
from kingpost_runner.custom_server import CustomServer, ServerFailed
from kingpost_runner.http_plane import HttpPlane, ModelApp, ProxyApp
from kingpost_runner.model_request import Headers, ModelRequest
from kingpost_runner.pipeline import Pipeline, Reply
from kingpost_runner.server_proxy import ServerProxyServicer
from kingpost_runner.truss_model import OPENAI_ROUTES
from kingpost_runner.truss_config import TrussConfig
from kingpost_runner.user_errors import NOT_READY_MESSAGE

log = logging.getLogger(__name__)

T = TypeVar("T")

# Metadata that belongs to gRPC itself, not to the caller's request (the body says its own content type).
_TRANSPORT_KEYS = frozenset({"content-type", "te", "grpc-accept-encoding", "accept-encoding"})


class RunnerServicer(runner_pb2_grpc.RunnerServiceServicer):
    def __init__(self, options: RunnerOptions | None = None, config: TrussConfig | None = None) -> None:
        self.pipeline: Pipeline | None = None
        self.options = options
        self.config = config
        self._reloading = asyncio.Lock()
        self.request_log = observe.RequestLog(options.request_log) if options and options.request_log else None
        if self.request_log is not None:
            # grpc registers the servicer's bound methods: the logging ones only when logging is on, so
            # that a deployment without it pays nothing on its hot path.
            self.Predict = self._logged_predict  # type: ignore[method-assign]
            self.Sync = self._logged_sync  # type: ignore[method-assign]

    @abort_on_error
    async def Reload(
        self, request: runner_pb2.ReloadRequest, context: grpc.aio.ServicerContext
    ) -> runner_pb2.ReloadResponse:
        if self.pipeline is None or self.options is None or self.config is None:
            raise errors.Unavailable(NOT_READY_MESSAGE)
        async with self._reloading:
            new_dir = pathlib.Path(request.truss_dir).resolve() if request.truss_dir else self.options.truss_dir
            started = time.perf_counter()
            try:
                config, methods = await _in_daemon_thread(lambda: reload.reload_model(
                    self.options.truss_dir, new_dir, environment=self.options.environment,  # type: ignore[union-attr]
                    secrets_dir=self.options.secrets_dir))  # type: ignore[union-attr]
            except Exception:
                error = traceback.format_exc()
                log.error("reload failed; the previous model keeps serving:\n%s", error)
                return runner_pb2.ReloadResponse(error=error, load_seconds=time.perf_counter() - started)
            # Requests in flight keep their reference to the old pipeline and finish on it.
            self.pipeline = Pipeline(methods, config.predict_concurrency, config.streaming_read_timeout_s)
            self.options = dataclasses.replace(self.options, truss_dir=new_dir)
            self.config = config
            seconds = time.perf_counter() - started
            log.info("model reloaded from %s in %.3f s", new_dir, seconds)
            return runner_pb2.ReloadResponse(load_seconds=seconds)

    @abort_on_error
    async def Ready(
        self, request: runner_pb2.ReadyRequest, context: grpc.aio.ServicerContext
    ) -> runner_pb2.ReadyResponse:
        pipeline = self.pipeline
        if pipeline is None or not await pipeline.is_healthy():
            raise errors.Unavailable(NOT_READY_MESSAGE)
        return runner_pb2.ReadyResponse(ready=True)

    async def _logged_predict(
        self, request: runner_pb2.RunnerPredictRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        replies = self.request_log.wrap(  # type: ignore[union-attr]
            "predict", request.body.content_type or codec.JSON, request.body.data, context,
            RunnerServicer.Predict(self, request, context))
        async with contextlib.aclosing(replies) as stream:  # the model's stream stops with the call
            async for reply in stream:
                yield reply

    async def _logged_sync(
        self, request: runner_pb2.RunnerSyncRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        replies = self.request_log.wrap(  # type: ignore[union-attr]
            request.path.split("?", 1)[0], request.body.content_type or codec.JSON, request.body.data, context,
            RunnerServicer.Sync(self, request, context))
        async with contextlib.aclosing(replies) as stream:
            async for reply in stream:
                yield reply

    async def Predict(
        self, request: runner_pb2.RunnerPredictRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        if request.v2_path:
            await grpc_abort(context, errors.NotFound(
                f"{request.v2_path}: this deployment is a Truss; KServe V2 calls serve Triton model repositories"))
        pipeline = self.pipeline
        if pipeline is None:
            await grpc_abort(context, errors.Unavailable(NOT_READY_MESSAGE))
        body = request.body
        content_type = body.content_type or codec.JSON
        metadata = [(k, v) for k, v in context.invocation_metadata() or () if k not in _TRANSPORT_KEYS]
        headers = Headers([("content-type", content_type), *metadata])
        model_request = ModelRequest(headers, body.data, is_done=context.done)
        phases = observe.request_context(metadata)
        try:
            result = await pipeline.run(body.data, content_type, model_request, phases)
            if isinstance(result, Reply):
                if phases is not None:
                    context.set_trailing_metadata((phases.trailer(),))
                yield httpbody_pb2.HttpBody(content_type=result.content_type, data=result.body)
                return
            async with contextlib.aclosing(_chunks(result, codec.OCTET_STREAM)) as chunks:
                async for chunk in chunks:
                    yield chunk
            if phases is not None:
                phases.end("predict")
                context.set_trailing_metadata((phases.trailer(),))
        except errors.KingpostError as e:
            await grpc_abort(context, e)
        except Exception as e:  # a bug here, not in the model
            log.exception("runner failed serving a request")
            await grpc_abort(context, errors.Internal(f"Unhandled exception: {e}"))


    async def Sync(
        self, request: runner_pb2.RunnerSyncRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        """`{prefix}/sync/v1/chat/completions` and the other OpenAI-style routes of truss-server."""
        pipeline = self.pipeline
        if pipeline is None:
            await grpc_abort(context, errors.Unavailable(NOT_READY_MESSAGE))
        path = request.path.split("?", 1)[0]
        name = OPENAI_ROUTES.get(path)
        method = pipeline.methods.openai.get(name) if name else None
        if method is None or request.method not in ("POST", ""):
            await grpc_abort(context, user_errors.missing_route(name, request.method, path))
        body = request.body
        content_type = body.content_type or codec.JSON
        headers = Headers([("content-type", content_type), *((h.name, h.value) for h in request.headers)])
        model_request = ModelRequest(headers, body.data, is_done=context.done, path=path)
        try:
            result = await pipeline.run_method(method, body.data, content_type, model_request)
            await context.send_initial_metadata(((HTTP_STATUS_KEY, "200"),))
            if isinstance(result, Reply):
                yield httpbody_pb2.HttpBody(content_type=result.content_type, data=result.body)
                return
            async with contextlib.aclosing(_chunks(result, codec.EVENT_STREAM, at_least_one=True)) as chunks:
                async for chunk in chunks:
                    yield chunk
        except errors.KingpostError as e:
            await grpc_abort(context, e)
        except Exception as e:  # a bug here, not in the model
            log.exception("runner failed serving a request")
            await grpc_abort(context, errors.Internal(f"Unhandled exception: {e}"))

    @abort_on_error
    async def Websocket(self, requests: AsyncIterator[runner_pb2.WebsocketFrame],
                        context: grpc.aio.ServicerContext) -> None:
        """`{prefix}/websocket`: the model's `websocket(ws)` over this stream (websocket.py)."""
        pipeline = self.pipeline
        if pipeline is None:
            raise errors.Unavailable(NOT_READY_MESSAGE)

        async def read() -> runner_pb2.WebsocketFrame | None:
            frame = await context.read()
            return None if frame is grpc.aio.EOF else frame

        headers = Headers([(k, v) for k, v in context.invocation_metadata() or () if k not in _TRANSPORT_KEYS])
        await websocket.serve(pipeline.methods.websocket, read, context.write, headers)


async def _chunks(result: AsyncIterator[bytes], content_type: str, *,
                  at_least_one: bool = False) -> AsyncIterator[httpbody_pb2.HttpBody]:
    """A model's stream as HttpBody chunks, the content type on the first only (an empty one when
    the stream is empty and the answer must still start); the model's generator closed, always."""
    try:
        first = True
        async for chunk in result:
            yield httpbody_pb2.HttpBody(content_type=content_type if first else "", data=chunk)
            first = False
        if first and at_least_one:
            yield httpbody_pb2.HttpBody(content_type=content_type, data=b"")
    finally:
        await result.aclose()


@dataclasses.dataclass(frozen=True)
class RunnerOptions:
    truss_dir: pathlib.Path
    host: str
    port: int
    environment: str | None
    secrets_dir: pathlib.Path
    load_retries: int
    keepalive_seconds: float = keepalive.DEFAULT_SECONDS
    # The deployment's request logging (request_log.py); None: off.
    request_log: request_log.Policy | None = None
    # The HTTP data plane's port (http_plane.py); 0: none. Bodies over max_body_bytes are refused (413).
    http_port: int = 0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


def _in_daemon_thread(fn: Callable[[], T]) -> asyncio.Future[T]:
    """Run `fn` in a daemon thread (a load stuck in C code must not keep the process alive on SIGTERM)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, exc: BaseException | None) -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

    def work() -> None:
        try:
            result, exc = fn(), None
        except BaseException as e:  # noqa: BLE001 - reported to the loop, which decides
            result, exc = None, e
        with contextlib.suppress(RuntimeError):  # the loop already closed: shutting down
            loop.call_soon_threadsafe(settle, result, exc)

    threading.Thread(target=work, name="model-load", daemon=True).start()
    return future


def _grpc_server(options: RunnerOptions, servicer: runner_pb2_grpc.RunnerServiceServicer) -> grpc.aio.Server | None:
    # The router pings a quiet prediction (a model working for minutes): accept its pings.
    server = grpc.aio.server(options=(*MESSAGE_LIMITS, *keepalive.server_options(options.keepalive_seconds)))
    runner_pb2_grpc.add_RunnerServiceServicer_to_server(servicer, server)
    address = f"{options.host}:{options.port}"
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if port == 0:
        log.error("cannot listen on %s", address)
        return None
    return server


class _NoPlane:
    async def stop(self) -> None:
        pass


async def _http_plane(options: RunnerOptions, app: Any) -> HttpPlane | _NoPlane | None:
    """The HTTP data plane listening on options.http_port (none when 0); None when it cannot listen."""
    if not options.http_port:
        return _NoPlane()
    plane = HttpPlane(app, options.host, options.http_port)
    if not await plane.start():
        return None
    return plane


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def serve_custom_server(options: RunnerOptions, spec: DockerServer) -> int:
    """A `docker_server` Truss: start its server, serve RunnerService in front of it until SIGTERM
    (exit code 0) or until the server fails (exit code 1, the reason logged: custom_server.py)."""
    custom = CustomServer(spec, options.truss_dir)
    request_lines = observe.RequestLog(options.request_log) if options.request_log else None
    server = _grpc_server(options, ServerProxyServicer(custom, request_lines))
    if server is None:
        return 2
    http = await _http_plane(options, ProxyApp(custom, options.max_body_bytes))
    if http is None:
        return 2
    stop = _stop_event()
    await server.start()
    log.info("runner listening on %s:%d; starting the Truss's docker_server", options.host, options.port)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await custom.start()
        life = asyncio.ensure_future(_server_life(custom))
        await asyncio.wait([life, stopping], return_when=asyncio.FIRST_COMPLETED)
        if life.done():
            life.result()  # raises ServerFailed
        life.cancel()
        log.info("stopping")
        return 0
    except ServerFailed as e:
        log.error("%s", e)
        return 1
    finally:
        stopping.cancel()
        await custom.stop()
        await asyncio.gather(server.stop(grace=5.0), http.stop())


async def _server_life(custom: CustomServer) -> None:
    await custom.wait_ready()
    await custom.watch()


async def serve(options: RunnerOptions, config: TrussConfig) -> int:
    """Serve until SIGTERM/SIGINT (exit code 0) or a failed load (exit code 1)."""
    servicer = RunnerServicer(options, config)
    server = _grpc_server(options, servicer)
    if server is None:
        return 2
    await server.start()
    log.info("runner listening on %s:%d; loading model from %s", options.host, options.port, options.truss_dir)
    stop = _stop_event()

    started = time.perf_counter()
    load_started_ns = time.time_ns()
    loading = _in_daemon_thread(lambda: loader.load_model(
        options.truss_dir, config, environment=options.environment,
        secrets_dir=options.secrets_dir, retries=options.load_retries,
    ))
    # While the model loads (uvicorn's import is ~0.1 s); listening before Ready can answer yes.
    http = await _http_plane(options, ModelApp(lambda: servicer.pipeline, options.max_body_bytes))
    if http is None:
        await server.stop(0)
        return 2
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([loading, stopping], return_when=asyncio.FIRST_COMPLETED)
    if not loading.done():
        log.info("stopped while the model was loading")
        await asyncio.gather(server.stop(0), http.stop())
        return 0
    if (exc := loading.exception()) is not None:
        log.error("Model failed to load; exiting.", exc_info=exc)
        if (hint := user_errors.missing_module_hint(exc)) is not None:
            log.error("%s", hint)
        stopping.cancel()
        await asyncio.gather(server.stop(0), http.stop())
        return 1
    _, methods = loading.result()
    observe.Phases.load = (load_started_ns, time.time_ns())
    model_metrics.serve(os.environ)
    servicer.pipeline = Pipeline(methods, config.predict_concurrency, config.streaming_read_timeout_s)
    log.info("model ready in %.2f s (predict_concurrency=%d)", time.perf_counter() - started,
             config.predict_concurrency)
    await stopping
    log.info("stopping")
    await asyncio.gather(server.stop(grace=5.0), http.stop())
    return 0

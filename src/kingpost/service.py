"""The shell every service process shares: gRPC server, /metrics, tracing, logging, signals.

A service's `main.py` builds its servicers and background loops and hands them to `serve`,
which runs until SIGTERM or SIGINT and then stops the server (with a grace period) and the loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import grpc
from prometheus_client import start_http_server

from kingpost import otlp_metrics, rpc
from kingpost.log_format import JsonFormatter
from kingpost.settings import ServiceSettings

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

log = logging.getLogger(__name__)


def configure(name: str, settings: ServiceSettings) -> None:
    """What a service sets first, before it opens a connection: logging and its gRPC keepalive."""
    setup_logging(name, settings.log_level, settings.log_format)
    rpc.use_keepalive(settings.grpc_keepalive_seconds)


def grpc_server(settings: ServiceSettings,
                interceptors: Sequence[grpc.aio.ServerInterceptor] = ()) -> grpc.aio.Server:
    """A service's gRPC server, with the keepalive policy that accepts every kingpost client's pings."""
    return grpc.aio.server(interceptors=list(interceptors),
                           options=rpc.server_options(settings.grpc_keepalive_seconds))


def setup_logging(name: str, level: str = "INFO", log_format: str = "text") -> None:
    """Text lines for people (`kingpost up`'s log files), or one JSON object a line (log_format.py)."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s",
    )
    if log_format == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter(name))


def setup_tracing(name: str) -> Tracer | None:
    """Export OpenTelemetry traces over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set (the standard
    OTEL_EXPORTER_OTLP_*, OTEL_BSP_* and OTEL_TRACES_SAMPLER[_ARG] variables apply); the service's
    tracer, else None. Which requests the router traces is its `trace_root_ratio`'s decision first."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return None
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": f"kingpost-{name}"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)  # it exports what is still batched at exit (shutdown_on_exit)
    return trace.get_tracer(f"kingpost.{name}")


def run(main: Callable[[], Awaitable[None]]) -> None:
    """Run a service's async main on uvloop where available."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(main())
    else:
        uvloop.run(main())


async def serve(
    *,
    name: str,
    settings: ServiceSettings,
    register: Callable[[grpc.aio.Server], None],
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    loops: Sequence[Callable[[], Awaitable[None]]] = (),
    on_stop: Callable[[], Awaitable[None]] | None = None,
    grace: float = 5.0,
) -> None:
    server = grpc_server(settings, interceptors)
    register(server)
    address = f"{settings.grpc_host}:{settings.grpc_port}"
    port = server.add_insecure_port(address)
    if port == 0:
        raise SystemExit(f"{name}: cannot listen on {address}")
    await server.start()
    metrics_server, _ = start_http_server(settings.metrics_port, addr=settings.metrics_host)
    log.info("%s listening on %s:%d (metrics on :%d)", name, settings.grpc_host, port,
             metrics_server.server_port)
    try:  # and over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set, as its traces
        metrics_export = otlp_metrics.start(name)
    except ValueError as e:
        raise SystemExit(f"{name}: {e}") from None

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    tasks = [asyncio.create_task(_supervised(name, fn, stop)) for fn in loops]
    await stop.wait()
    log.info("%s stopping", name)
    await server.stop(grace)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if on_stop is not None:
        await on_stop()
    metrics_server.shutdown()
    if metrics_export is not None:
        await asyncio.to_thread(metrics_export.stop)


async def _supervised(name: str, fn: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
    """A background loop that dies takes the service down, rather than leaving it half alive."""
    try:
        await fn()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("%s: background loop %s failed; stopping", name, getattr(fn, "__name__", fn))
        stop.set()

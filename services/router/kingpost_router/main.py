"""`kingpost router --config FILE`: the data plane process."""

from __future__ import annotations

import logging
import pathlib

from opentelemetry.trace import Tracer

from kingpost import service
from kingpost.auth import AuthInterceptor, KeyCache
from kingpost.bus.nats_bus import NatsBus
from kingpost.route_watch import watch_routes
from kingpost.v1 import inference_pb2_grpc, scheduler_pb2
from kingpost_router.async_setup import start_async
from kingpost_router import metrics
from kingpost_router.authz import EnvoyAuthzInterceptor
from kingpost_router.envoy_poll import EnvoyPoller
from kingpost_router.heap_trim import trim_after_growth
from kingpost_router.nats_watchdog import watch_nats
from kingpost_router.service import RouterServicer
from kingpost_router.settings import RouterSettings
from kingpost_router import v2_grpc
from kingpost_router.ws_server import WebsocketServer

log = logging.getLogger(__name__)

PUBLIC_PREFIXES = ("/kingpost.v1.InferenceService/",)


def main(config: pathlib.Path | None) -> None:
    settings = RouterSettings.load(config)
    service.configure("router", settings)
    tracer = service.setup_tracing("router")
    service.run(lambda: _serve(settings, tracer))


async def _serve(settings: RouterSettings, tracer: Tracer | None) -> None:
    keys = KeyCache()
    router = RouterServicer(settings, keys, tracer=tracer)
    bus = await NatsBus.connect(settings.nats_url, settings.router_id)
    router.bus = bus
    asynchronous = await start_async(settings, bus, router, tracer=tracer)
    websockets = WebsocketServer(router, keys, host=settings.websocket_host, port=settings.websocket_port,
                                 timeout=settings.request_timeout_seconds)
    await websockets.start()
    applied = router.apply_table

    def apply_table(table: scheduler_pb2.RouteTable) -> None:
        applied(table)
        asynchronous.workers.apply(router.snapshot)

    router.apply_table = apply_table  # type: ignore[method-assign]

    async def follow_routes() -> None:
        await watch_routes(settings.scheduler_address, router.apply_table,
                           watcher=settings.router_id, internal_token=settings.internal_token)

    async def publish_concurrency() -> None:
        await router.publish_concurrency(bus)

    async def watch_connection() -> None:
        await watch_nats(bus.nc, settings.nats_url)

    loops = [follow_routes, publish_concurrency, trim_after_growth, watch_connection]
    if settings.envoy_admin_address:
        poller = EnvoyPoller(settings.envoy_admin_address, lambda: router.snapshot, bounds=metrics.REQUESTS.bounds)
        poller.serve_metrics(metrics.REQUESTS, router.slots.total_queued)

        async def read_envoy() -> None:
            await poller.run(bus, settings.router_id)

        loops.append(read_envoy)

    async def stop() -> None:
        await websockets.close()
        await asynchronous.close()
        await router.close()
        await bus.close()

    await service.serve(
        name="router",
        settings=settings,
        register=lambda server: (inference_pb2_grpc.add_InferenceServiceServicer_to_server(router, server),
                                 server.add_generic_rpc_handlers((v2_grpc.handler(router),))),
        # Envoy's ext_authz Check first: it carries its key in the message, not the metadata.
        interceptors=[EnvoyAuthzInterceptor(keys),
                      AuthInterceptor(keys, public_prefixes=PUBLIC_PREFIXES, invoke_prefixes=PUBLIC_PREFIXES,
                                      internal_token=settings.internal_token)],
        loops=loops,
        on_stop=stop,
    )

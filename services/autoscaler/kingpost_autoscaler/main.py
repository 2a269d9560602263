"""`kingpost autoscaler --config FILE`: decides replica counts from routers' concurrency samples."""

from __future__ import annotations

import functools
import pathlib

import grpc

from kingpost import rpc, service
from kingpost.bus.nats_bus import NatsBus
from kingpost.route_watch import watch_routes
from kingpost.v1 import scheduler_pb2_grpc

from kingpost_autoscaler.service import Autoscaler, scheduler_deactivate, scheduler_scale
from kingpost_autoscaler.settings import AutoscalerSettings


def main(config: pathlib.Path | None) -> None:
    settings = AutoscalerSettings.load(config)
    service.configure("autoscaler", settings)
    service.setup_tracing("autoscaler")
    service.run(functools.partial(run, settings))


async def run(settings: AutoscalerSettings) -> None:
    defaults = settings.autoscaling_defaults()
    bus = await NatsBus.connect(settings.nats_url, "autoscaler")
    channel = rpc.channel(settings.scheduler_address)
    stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
    autoscaler = Autoscaler(
        scheduler_scale(stub, settings.internal_token),
        settings_for=lambda _deployment_id: defaults,  # until the route table describes it
        deactivate=scheduler_deactivate(stub, settings.internal_token),
        idle_seconds=settings.idle_deactivation_days * 86400,
        decide_on_samples=settings.decide_on_samples,
    )
    await autoscaler.subscribe(bus)

    def register(_server: grpc.aio.Server) -> None:
        """No servicers yet: the autoscaler only calls out. The server keeps the shared shell's shape."""

    async def decide_forever() -> None:
        await autoscaler.run(settings.tick_seconds)

    async def follow_routes() -> None:
        await watch_routes(settings.scheduler_address, autoscaler.on_table, watcher="autoscaler",
                           internal_token=settings.internal_token)

    async def on_stop() -> None:
        await bus.close()
        await channel.close()

    await service.serve(name="autoscaler", settings=settings, register=register,
                        loops=[decide_forever, follow_routes],
                        on_stop=on_stop)

"""`kingpost builder --config FILE`: the BuildService, its artifact store and its key cache."""

from __future__ import annotations

import asyncio
import logging
import pathlib

import grpc

from kingpost import service
from kingpost.auth import AuthInterceptor, KeyCache
from kingpost.bus.nats_bus import NatsBus
from kingpost.bus.connection import shown_url
from kingpost.route_watch import watch_routes
from kingpost.v1 import builder_pb2_grpc, scheduler_pb2
from kingpost_builder.nats_store import NatsArtifactStore
from kingpost_builder.service import PUBLIC_METHODS, BuildServicer
from kingpost_builder.settings import BuilderSettings
from kingpost_builder.store import ArtifactStore, FileArtifactStore

log = logging.getLogger(__name__)


def main(config: pathlib.Path | None) -> None:
    settings = BuilderSettings.load(config)
    service.configure("builder", settings)
    service.setup_tracing("builder")
    service.run(lambda: _serve(settings))


async def _serve(settings: BuilderSettings) -> None:
    bus = await NatsBus.connect(settings.nats_url, "kingpost-builder")
    store = await _open_store(settings)
    servicer = BuildServicer(store, bus, max_upload_bytes=settings.max_upload_bytes,
                             allow_build_commands=settings.allow_build_commands,
                             wheelhouse=settings.artifacts_path / "wheelhouse")
    keys = KeyCache()

    def on_table(table: scheduler_pb2.RouteTable) -> None:
        keys.replace(table.api_key_sha256,
                     {digest: scope.model_ids for digest, scope in table.invoke_only_keys.items()})

    async def follow_keys() -> None:
        if not settings.scheduler_address:
            log.warning("no scheduler_address: no API key is valid, so UploadSource and GetBuild refuse all")
            return
        await watch_routes(settings.scheduler_address, on_table, watcher="builder",
                           internal_token=settings.internal_token)

    def register(server: grpc.aio.Server) -> None:
        builder_pb2_grpc.add_BuildServiceServicer_to_server(servicer, server)

    await service.serve(
        name="builder",
        settings=settings,
        register=register,
        interceptors=[AuthInterceptor(keys, public_prefixes=PUBLIC_METHODS, internal_token=settings.internal_token)],
        loops=[follow_keys],
        on_stop=lambda: _close(bus, store),
    )


async def _open_store(settings: BuilderSettings) -> ArtifactStore:
    if settings.artifact_store == "nats":
        log.info("artifacts in the JetStream object store %r at %s, cached in %s",
                 settings.artifact_bucket, shown_url(settings.nats_url), settings.artifacts_path)
        return await asyncio.to_thread(NatsArtifactStore.connect, settings.nats_url,
                                       settings.artifact_bucket, settings.artifacts_path)
    return FileArtifactStore(settings.artifacts_path)


async def _close(bus: NatsBus, store: ArtifactStore) -> None:
    if isinstance(store, NatsArtifactStore):
        await asyncio.to_thread(store.close)
    await bus.close()

"""The BuildService servicer: the thin gRPC/NATS shell around `build.py`'s steps.

UploadSource answers the finished Build. A request that is itself wrong (no header, an unsafe or
unreadable archive, too large) ends the RPC with INVALID_ARGUMENT or 413; a Truss that is wrong
(bad config.yaml, missing model file, requirements uv cannot resolve) is a FAILED build, answered
normally with the reason. Each build's state goes to NATS `kp.build.<id>` and its log lines to
`kp.logs.build.<id>`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from kingpost.bus import Publisher, subjects
from kingpost.errors import InvalidArgument, KingpostError, NotFound
from kingpost.grpc_status import abort_on_error, grpc_abort
from kingpost.ids import new_id
from kingpost.v1 import builder_pb2, builder_pb2_grpc, events_pb2
from kingpost_builder import archive, metrics, truss_config
from kingpost_builder.build import STEPS, BuildWork, Step, intake
from kingpost_builder.store import CHUNK_BYTES, ArtifactStore

log = logging.getLogger(__name__)

LOG_FLUSH_SECONDS = 0.2
_BUILD_ID = re.compile(r"bld_[a-z0-9]{10}")

PUBLIC_METHODS = ("/kingpost.v1.BuildService/UploadSource", "/kingpost.v1.BuildService/GetBuild")


def utc_now() -> datetime:
    return datetime.now(UTC)


class BuildServicer(builder_pb2_grpc.BuildServiceServicer):
    def __init__(
        self,
        store: ArtifactStore,
        bus: Publisher,
        *,
        max_upload_bytes: int = archive.DEFAULT_MAX_UPLOAD_BYTES,
        steps: tuple[Step, ...] = STEPS,
        clock: Callable[[], datetime] = utc_now,
        allow_build_commands: bool = False,
        wheelhouse: Path | None = None,
    ) -> None:
        self._allow_build_commands = allow_build_commands
        self._wheelhouse = wheelhouse
        self._store = store
        self._bus = bus
        self._max_upload_bytes = max_upload_bytes
        self._steps = steps
        self._clock = clock

    @abort_on_error
    async def UploadSource(
        self, request_iterator: AsyncIterator[builder_pb2.UploadSourceRequest], context: grpc.aio.ServicerContext
    ) -> builder_pb2.UploadSourceResponse:
        started = time.monotonic()
        build_id = new_id("bld")
        work_dir = self._store.scratch_dir()
        try:
            try:
                work = await self._receive(build_id, work_dir, request_iterator)
                await self._step(work, intake)
            except KingpostError as e:
                metrics.BUILDS.labels("rejected").inc()
                log.info("upload %s refused: %s", build_id, e)
                raise
            build = await self._build(work)
        finally:
            await asyncio.to_thread(shutil.rmtree, work_dir, True)
        metrics.BUILD_SECONDS.observe(time.monotonic() - started)
        return builder_pb2.UploadSourceResponse(build=build)

    @abort_on_error
    async def GetBuild(
        self, request: builder_pb2.GetBuildRequest, context: grpc.aio.ServicerContext
    ) -> builder_pb2.GetBuildResponse:
        build = await asyncio.to_thread(self._store.get_build, request.build_id)
        return builder_pb2.GetBuildResponse(build=build)

    async def FetchArtifact(
        self, request: builder_pb2.FetchArtifactRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[builder_pb2.FetchArtifactResponse]:
        try:
            chunks = await asyncio.to_thread(self._store.open_chunks, request.artifact_digest, CHUNK_BYTES)
        except KingpostError as e:
            await grpc_abort(context, e)
        try:
            while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
                yield builder_pb2.FetchArtifactResponse(chunk=chunk)
        finally:
            chunks.close()  # type: ignore[attr-defined]

    # --- one upload -----------------------------------------------------------------------------

    async def _receive(
        self, build_id: str, work_dir: Path, requests: AsyncIterator[builder_pb2.UploadSourceRequest]
    ) -> BuildWork:
        try:
            first = await anext(aiter(requests))
        except StopAsyncIteration:
            raise InvalidArgument("UploadSource needs an UploadHeader first, then the archive in chunks") from None
        if first.WhichOneof("part") != "header":
            raise InvalidArgument("UploadSource's first message must be an UploadHeader, then the archive in chunks")
        if first.header.size_bytes > self._max_upload_bytes:
            raise archive.too_large(self._max_upload_bytes)
        if first.header.build_id:
            build_id = await self._client_build_id(first.header.build_id)
        upload = work_dir / "upload.tar.gz"
        with archive.UploadSpool(upload, self._max_upload_bytes) as spool:
            async for request in requests:
                if request.WhichOneof("part") == "header":
                    raise InvalidArgument("UploadSource takes one UploadHeader, as its first message only")
                spool.write(request.chunk)
        if spool.size == 0:
            raise InvalidArgument("UploadSource received an empty archive")
        metrics.UPLOAD_BYTES.observe(spool.size)
        work = BuildWork(build_id=build_id, work_dir=work_dir, upload=upload,
                         max_unpacked_bytes=self._max_upload_bytes * archive.UNPACK_RATIO_LIMIT,
                         allow_build_commands=self._allow_build_commands, wheelhouse=self._wheelhouse)
        work.info(f"received {archive.human_bytes(spool.size)}")
        return work

    async def _client_build_id(self, build_id: str) -> str:
        if not _BUILD_ID.fullmatch(build_id):
            raise InvalidArgument(f"UploadHeader.build_id {build_id!r} is not valid: 'bld_' and 10 lowercase "
                                  "letters or digits, or empty to let the builder choose")
        try:
            await asyncio.to_thread(self._store.get_build, build_id)
        except NotFound:
            return build_id
        raise InvalidArgument(f"build id {build_id} is taken; choose another or leave it empty")

    async def _build(self, work: BuildWork) -> builder_pb2.Build:
        build = builder_pb2.Build(build_id=work.build_id, state=events_pb2.BUILD_STATE_BUILDING,
                                  created_at=_timestamp(self._clock()))
        await self._save(build)
        try:
            for step in self._steps:
                await self._step(work, step)
        except KingpostError as e:
            build.state = events_pb2.BUILD_STATE_FAILED
            build.message = e.message
        except Exception as e:
            log.exception("build %s failed in the builder itself", work.build_id)
            build.state = events_pb2.BUILD_STATE_FAILED
            build.message = f"internal error in the builder: {type(e).__name__}: {e}"
        else:
            build.state = events_pb2.BUILD_STATE_SUCCEEDED
            build.artifact_digest = work.digest
            build.cached = work.cached
        build.warnings.extend(work.warnings)
        if work.parsed is not None:
            build.truss.CopyFrom(builder_pb2.TrussSummary(**truss_config.summary_fields(work.parsed.config),
                                                          triton=work.triton))
        if build.state == events_pb2.BUILD_STATE_FAILED:
            work.error(f"build failed: {build.message}")
        else:
            work.info("build succeeded")
        await self._flush_log(work)
        await self._save(build)
        metrics.BUILDS.labels("succeeded" if build.state == events_pb2.BUILD_STATE_SUCCEEDED else "failed").inc()
        return build

    async def _step(self, work: BuildWork, step: Step) -> None:
        """Run one step in a thread; its log lines are published as they come (every LOG_FLUSH_SECONDS)."""
        task = asyncio.ensure_future(asyncio.to_thread(step, work, self._store))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=LOG_FLUSH_SECONDS)
                await self._flush_log(work)
                if done:
                    break
            task.result()
        finally:
            if not task.done():  # cancelled: the thread finishes on its own; keep its lines
                task.cancel()
            await self._flush_log(work)

    async def _save(self, build: builder_pb2.Build) -> None:
        """Record the build, then tell NATS: a reader that hears the event can GetBuild it."""
        await asyncio.to_thread(self._store.put_build, build)
        event = events_pb2.BuildEvent(build_id=build.build_id, state=build.state,
                                      artifact_digest=build.artifact_digest, message=build.message,
                                      at=_timestamp(self._clock()), cpu=build.truss.cpu,
                                      memory=build.truss.memory, accelerator=build.truss.accelerator)
        try:
            await self._bus.publish(subjects.build_subject(build.build_id), event)
        except Exception:  # the record stands; the scheduler can still GetBuild it
            log.warning("could not publish the state of build %s", build.build_id, exc_info=True)

    async def _flush_log(self, work: BuildWork) -> None:
        subject = subjects.build_log_subject(work.build_id)
        for entry in work.take_log():
            line = events_pb2.LogLine(at=_timestamp(self._clock()), source="build", build_id=work.build_id,
                                      level=entry.level, text=entry.text)
            try:
                await self._bus.publish_fast(subject, line)
            except Exception:
                log.warning("could not publish a log line of build %s", work.build_id, exc_info=True)
                return


def _timestamp(at: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(at)
    return ts

"""The builder over gRPC with real NATS: push a Truss, get a build, its events and logs, its artifact."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import tarfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from kingpost import rpc
from kingpost.auth import AuthInterceptor, KeyCache, key_digest, new_key
from kingpost.errors import InvalidArgument, NotFound, PayloadTooLarge, PermissionDenied, Unauthenticated
from kingpost.bus.nats_bus import NatsBus
from kingpost.bus.subjects import build_log_subject, build_subject
from kingpost.truss_archive import make_truss_archive
from kingpost.v1 import builder_pb2, builder_pb2_grpc, events_pb2
from kingpost_builder.service import PUBLIC_METHODS, BuildServicer
from kingpost_builder.store import FileArtifactStore

KEY = new_key()
TOKEN = "internal-test-token"
MAX_UPLOAD = 256 * 1024
MODEL = "class Model:\n    def predict(self, model_input):\n        return model_input\n"


@dataclass
class Builder:
    stub: builder_pb2_grpc.BuildServiceStub
    bus: NatsBus
    store: FileArtifactStore


@pytest.fixture
async def builder(nats_url: str, tmp_path: Path) -> AsyncIterator[Builder]:
    bus = await NatsBus.connect(nats_url, "test-builder")
    store = FileArtifactStore(tmp_path / "artifacts")
    server = grpc.aio.server(interceptors=[
        AuthInterceptor(KeyCache([key_digest(KEY)]), public_prefixes=PUBLIC_METHODS, internal_token=TOKEN)])
    builder_pb2_grpc.add_BuildServiceServicer_to_server(
        BuildServicer(store, bus, max_upload_bytes=MAX_UPLOAD), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = rpc.channel(f"127.0.0.1:{port}")
    try:
        yield Builder(builder_pb2_grpc.BuildServiceStub(channel), bus, store)
    finally:
        await channel.close()
        await server.stop(None)
        await bus.close()


def truss_dir(root: Path, config: str = "model_name: echo\n") -> Path:
    (root / "model").mkdir(parents=True)
    (root / "config.yaml").write_text(config)
    (root / "model/model.py").write_text(MODEL)
    return root


def tar_gz(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


async def upload(b: Builder, data: bytes, *, key: str | None = KEY, header: bool = True,
                 chunk: int = 16 * 1024, declared_size: int | None = None,
                 build_id: str = "") -> builder_pb2.Build:
    async def requests() -> AsyncIterator[builder_pb2.UploadSourceRequest]:
        if header:
            yield builder_pb2.UploadSourceRequest(header=builder_pb2.UploadHeader(
                size_bytes=len(data) if declared_size is None else declared_size, build_id=build_id))
        for i in range(0, len(data), chunk):
            yield builder_pb2.UploadSourceRequest(chunk=data[i:i + chunk])

    reply = await rpc.call(b.stub.UploadSource, requests(), auth=rpc.api_key(key) if key else (), attempts=1)
    return reply.build


async def build_events(b: Builder, build_id: str) -> list[events_pb2.BuildEvent]:
    return await b.bus.read_stream(build_subject(build_id), events_pb2.BuildEvent)


async def build_log(b: Builder, build_id: str, last_line: str) -> list[events_pb2.LogLine]:
    """The build's lines in KP_LOGS, once `last_line` is stored (logs are published without acks)."""
    deadline = time.monotonic() + 10
    while True:
        lines = await b.bus.read_stream(build_log_subject(build_id), events_pb2.LogLine)
        if any(last_line in line.text for line in lines) or time.monotonic() > deadline:
            return lines
        await asyncio.sleep(0.05)


async def test_push_a_truss_then_fetch_its_artifact(builder: Builder, tmp_path: Path) -> None:
    data = make_truss_archive(truss_dir(tmp_path / "t", "model_name: echo\nbase_image: {image: x}\n"
                                        "resources:\n  accelerator: 'H100:2'\nruntime:\n  predict_concurrency: 4\n"))
    build = await upload(builder, data)

    assert build.state == events_pb2.BUILD_STATE_SUCCEEDED, build.message
    assert build.build_id.startswith("bld_") and build.artifact_digest.startswith("sha256:")
    assert build.cached is False
    assert list(build.warnings) == ["base_image: 'x' is not used: kingpost runs no Docker image, and its tag "
                                    "names no Python version; the deployment uses python_version and its requirements"]
    assert (build.truss.model_name, build.truss.predict_concurrency, build.truss.accelerator) == ("echo", 4, "H100:2")
    assert build.created_at.seconds > 0

    events = await build_events(builder, build.build_id)
    assert [e.state for e in events] == [events_pb2.BUILD_STATE_BUILDING, events_pb2.BUILD_STATE_SUCCEEDED]
    assert events[-1].artifact_digest == build.artifact_digest

    lines = await build_log(builder, build.build_id, "build succeeded")
    texts = [line.text for line in lines]
    assert texts[-1] == "build succeeded"
    assert any("base_image" in line.text and line.level == "WARNING" for line in lines)
    assert all(line.source == "build" and line.build_id == build.build_id for line in lines)

    got = await rpc.call(builder.stub.GetBuild, builder_pb2.GetBuildRequest(build_id=build.build_id),
                         auth=rpc.api_key(KEY))
    assert got.build == build

    chunks = [r.chunk async for r in rpc.stream(
        builder.stub.FetchArtifact, builder_pb2.FetchArtifactRequest(artifact_digest=build.artifact_digest),
        auth=rpc.internal(TOKEN))]
    fetched = b"".join(chunks)
    assert fetched == builder.store.get(build.artifact_digest)
    assert "sha256:" + hashlib.sha256(fetched).hexdigest() == build.artifact_digest
    with tarfile.open(fileobj=io.BytesIO(fetched), mode="r:gz") as tar:
        assert tar.extractfile("model/model.py").read().decode() == MODEL  # type: ignore[union-attr]


async def test_same_content_again_is_cached_under_the_same_digest(builder: Builder) -> None:
    first = await upload(builder, tar_gz({"config.yaml": b"model_name: a\n", "model/model.py": MODEL.encode()}))
    # other order, other mtimes, other compression: the same content
    second_data = tar_gz({"model/model.py": MODEL.encode(), "config.yaml": b"model_name: a\n"})
    second = await upload(builder, second_data, chunk=7)
    assert second.state == events_pb2.BUILD_STATE_SUCCEEDED
    assert second.build_id != first.build_id
    assert second.artifact_digest == first.artifact_digest
    assert (first.cached, second.cached) == (False, True)


async def test_invalid_config_is_a_failed_build_naming_the_key(builder: Builder) -> None:
    build = await upload(builder, tar_gz({"config.yaml": b"runtime:\n  predict_concurrency: 0\n",
                                          "model/model.py": MODEL.encode()}))
    assert build.state == events_pb2.BUILD_STATE_FAILED
    assert "runtime.predict_concurrency: 0 is not valid: must be ≥ 1" in build.message
    assert build.artifact_digest == ""
    events = await build_events(builder, build.build_id)
    assert events[-1].state == events_pb2.BUILD_STATE_FAILED and events[-1].message == build.message
    lines = await build_log(builder, build.build_id, "build failed")
    assert lines[-1].level == "ERROR" and "runtime.predict_concurrency" in lines[-1].text


async def test_an_accelerator_no_instance_type_offers_fails_the_build_naming_it_and_the_choices(
        builder: Builder) -> None:
    build = await upload(builder, tar_gz({"config.yaml": b"resources:\n  accelerator: 'T4:2'\n",
                                          "model/model.py": MODEL.encode()}))
    assert build.state == events_pb2.BUILD_STATE_FAILED and build.artifact_digest == ""
    assert "resources.accelerator 'T4:2': no instance type offers it" in build.message
    assert "the choices: T4:1, L4:1, L4:2" in build.message


async def test_missing_model_file_and_unmet_requirements_fail(builder: Builder) -> None:
    build = await upload(builder, tar_gz({"config.yaml": b"model_name: m\n"}))
    assert build.state == events_pb2.BUILD_STATE_FAILED and "no model/model.py" in build.message
    build = await upload(builder, tar_gz({"config.yaml": b"requirements: [surely-not-installed-pkg]\n",
                                          "model/model.py": MODEL.encode()}))
    assert build.state == events_pb2.BUILD_STATE_FAILED
    assert "surely-not-installed-pkg" in build.message and "cannot resolve the requirements" in build.message
    # uv's own lines are in the build log, as they came, then the failure.
    lines = await build_log(builder, build.build_id, "build failed")
    assert any(line.text.startswith("$ uv pip compile") for line in lines)
    assert any("surely-not-installed-pkg" in line.text and line.level == "INFO" for line in lines)


async def test_unsafe_or_malformed_uploads_are_invalid_arguments(builder: Builder) -> None:
    with pytest.raises(InvalidArgument, match="'../evil.py' has a '..' component"):
        await upload(builder, tar_gz({"config.yaml": b"", "model/model.py": b"", "../evil.py": b"x"}))
    with pytest.raises(InvalidArgument, match="first message must be an UploadHeader"):
        await upload(builder, tar_gz({"config.yaml": b""}), header=False)
    with pytest.raises(InvalidArgument, match="not a readable gzipped tar"):
        await upload(builder, b"not a tarball" * 100)


@pytest.mark.parametrize("declared_size", [None, 1], ids=["declared-in-header", "header-understates"])
async def test_too_large_upload_is_413_naming_the_limit(builder: Builder, declared_size: int | None) -> None:
    with pytest.raises(PayloadTooLarge) as info:
        await upload(builder, tar_gz({"config.yaml": b"", "weights.bin": os.urandom(MAX_UPLOAD)}),
                     declared_size=declared_size)
    assert info.value.http_status == 413
    assert "256 KiB" in info.value.message and "max_upload_bytes" in info.value.message


async def test_auth(builder: Builder) -> None:
    data = tar_gz({"config.yaml": b"", "model/model.py": MODEL.encode()})
    with pytest.raises(Unauthenticated, match="missing API key"):
        await upload(builder, data, key=None)
    with pytest.raises(Unauthenticated, match="invalid API key"):
        await upload(builder, data, key=new_key())
    with pytest.raises(Unauthenticated):
        await rpc.call(builder.stub.GetBuild, builder_pb2.GetBuildRequest(build_id="bld_x"))
    with pytest.raises(PermissionDenied, match="FetchArtifact is internal"):
        async for _ in rpc.stream(builder.stub.FetchArtifact,
                                  builder_pb2.FetchArtifactRequest(artifact_digest="sha256:" + "0" * 64)):
            pass


async def test_unknown_build_and_artifact_are_not_found(builder: Builder) -> None:
    with pytest.raises(NotFound, match="bld_nope"):
        await rpc.call(builder.stub.GetBuild, builder_pb2.GetBuildRequest(build_id="bld_nope"),
                       auth=rpc.api_key(KEY))
    digest = "sha256:" + "0" * 64
    with pytest.raises(NotFound, match=digest):
        async for _ in rpc.stream(builder.stub.FetchArtifact,
                                  builder_pb2.FetchArtifactRequest(artifact_digest=digest), auth=rpc.internal(TOKEN)):
            pass


async def test_a_client_chosen_build_id_names_the_build_and_its_log(builder: Builder) -> None:
    """`kingpost push` picks the id so that it can show the build's log while the build runs."""
    data = tar_gz({"config.yaml": b"model_name: chosen\n", "model/model.py": MODEL.encode()})
    build = await upload(builder, data, build_id="bld_0123456789")
    assert build.build_id == "bld_0123456789" and build.state == events_pb2.BUILD_STATE_SUCCEEDED
    lines = await build_log(builder, "bld_0123456789", "build succeeded")
    assert any("build succeeded" in line.text for line in lines)
    with pytest.raises(InvalidArgument, match="build id bld_0123456789 is taken"):
        await upload(builder, data, build_id="bld_0123456789")
    with pytest.raises(InvalidArgument, match="UploadHeader.build_id 'BLD-1' is not valid"):
        await upload(builder, data, build_id="BLD-1")

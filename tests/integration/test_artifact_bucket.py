"""Cluster mode's shared artifact store on a real JetStream: what one machine builds, another runs.

Each "machine" is its own directory: a builder's NatsArtifactStore caches under one home, a worker
agent extracts under another, and only the object store bucket joins them.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import nats
import pytest

from kingpost import rpc
from kingpost.artifact_bucket import ArtifactBucket
from kingpost.errors import Internal, NotFound
from kingpost.bus.nats_bus import NatsBus
from kingpost.truss_archive import make_truss_archive
from kingpost.v1 import builder_pb2, builder_pb2_grpc, events_pb2
from kingpost_worker_agent.artifacts import ArtifactStore, DigestMismatch
from kingpost_builder.build import STEPS, BuildWork, intake
from kingpost_builder.nats_store import NatsArtifactStore
from kingpost_builder.service import BuildServicer
from tests.fixtures.archives import tar_of
from tests.fixtures.servers import run_async

MODEL = b"class Model:\n    def predict(self, x):\n        return x\n"


def build(store: NatsArtifactStore, files: dict[str, bytes], build_id: str = "bld_test") -> BuildWork:
    work_dir = store.scratch_dir()
    upload = work_dir / "upload.tar.gz"
    upload.write_bytes(tar_of(files))
    work = BuildWork(build_id=build_id, work_dir=work_dir, upload=upload, max_unpacked_bytes=1 << 24)
    for step in (intake, *STEPS):
        step(work, store)
    return work


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def bucket_name(nats_url: str) -> Iterator[str]:
    name = f"kp-test-{uuid.uuid4().hex[:12]}"
    yield name

    async def drop() -> None:
        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().delete_object_store(name)
        except Exception:
            pass
        await nc.close()

    run_async(drop())


@pytest.fixture
def builder_store(nats_url: str, bucket_name: str, tmp_path: Path) -> Iterator[NatsArtifactStore]:
    store = NatsArtifactStore.connect(nats_url, bucket_name, tmp_path / "builder-a" / "artifacts")
    yield store
    store.close()


@pytest.fixture
async def bucket(nats_url: str, bucket_name: str) -> AsyncIterator[ArtifactBucket]:
    """The agent's side: a connection of its own to the same bucket."""
    opened = await ArtifactBucket.connect(nats_url, bucket_name, "test-agent")
    yield opened
    await opened.close()


async def test_a_build_on_one_machine_is_materialised_on_another(
    builder_store: NatsArtifactStore, bucket: ArtifactBucket, tmp_path: Path
) -> None:
    work = await asyncio.to_thread(build, builder_store, {"config.yaml": b"model_name: echo\n",
                                                          "model/model.py": MODEL})
    assert work.cached is False and await bucket.holds_artifact(work.digest)

    node = ArtifactStore(tmp_path / "node-b" / "artifacts", bucket.chunks)
    tree = await node.materialise(work.digest)
    assert tree.is_relative_to(tmp_path / "node-b")
    assert (tree / "model" / "model.py").read_bytes() == MODEL
    assert node.cached(work.digest) == tree


async def test_a_large_artifact_streams_through_in_order(
    builder_store: NatsArtifactStore, bucket: ArtifactBucket, tmp_path: Path
) -> None:
    data = tar_of({"config.yaml": b"model_name: big\n", "model/model.py": MODEL,
                   "data/weights.bin": os.urandom(3 << 20)})  # random: gzip keeps it ~3 MiB, several chunks
    source = tmp_path / "upload"
    source.write_bytes(data)
    assert await asyncio.to_thread(builder_store.put, digest_of(data), source) is True
    assert not source.exists()

    chunks = [chunk async for chunk in bucket.chunks(digest_of(data))]
    assert len(chunks) > 1 and b"".join(chunks) == data
    tree = await ArtifactStore(tmp_path / "node-b", bucket.chunks).materialise(digest_of(data))
    assert (tree / "data" / "weights.bin").stat().st_size == 3 << 20


def test_records_and_refs_survive_another_builder(
    builder_store: NatsArtifactStore, nats_url: str, bucket_name: str, tmp_path: Path
) -> None:
    files = {"config.yaml": b"model_name: echo\n", "model/model.py": MODEL}
    first = build(builder_store, files)
    record = builder_pb2.Build(build_id="bld_test", state=events_pb2.BUILD_STATE_SUCCEEDED,
                               artifact_digest=first.digest)
    builder_store.put_build(record)
    builder_store.put_ref("deps-test", first.digest)

    other = NatsArtifactStore.connect(nats_url, bucket_name, tmp_path / "builder-b" / "artifacts")
    try:
        assert other.get_build("bld_test") == record
        assert other.get_ref("deps-test") == first.digest
        assert other.exists(first.digest)
        # Its own cache starts empty: the bytes come from the bucket, whole.
        assert digest_of(other.get(first.digest)) == first.digest
        assert b"".join(other.open_chunks(first.digest)) == other.get(first.digest)
        # The same Truss pushed to the other builder is already stored.
        assert build(other, files, build_id="bld_again").cached is True
        # A record is replaced whole when its build moves on.
        record.state = events_pb2.BUILD_STATE_FAILED
        other.put_build(record)
        assert builder_store.get_build("bld_test").state == events_pb2.BUILD_STATE_FAILED
    finally:
        other.close()


async def test_a_missing_digest_is_not_found(
    builder_store: NatsArtifactStore, bucket: ArtifactBucket, tmp_path: Path
) -> None:
    missing = digest_of(b"never stored")
    with pytest.raises(NotFound, match="not in the artifact bucket"):
        await ArtifactStore(tmp_path / "node-b", bucket.chunks).materialise(missing)
    assert not (tmp_path / "node-b" / missing.removeprefix("sha256:")).exists()
    with pytest.raises(NotFound):
        await asyncio.to_thread(builder_store.get, missing)
    with pytest.raises(NotFound):
        await asyncio.to_thread(builder_store.get_build, "bld_nothere00")
    assert await asyncio.to_thread(builder_store.get_ref, "deps-nothere") is None
    assert await asyncio.to_thread(builder_store.exists, missing) is False


async def test_a_corrupted_object_is_refused(
    builder_store: NatsArtifactStore, bucket: ArtifactBucket, tmp_path: Path
) -> None:
    good = tar_of({"config.yaml": b"model_name: echo\n", "model/model.py": MODEL})
    digest = digest_of(good)
    await bucket.put_bytes(digest, tar_of({"model/model.py": b"import os; os.system('evil')\n"}))

    node = ArtifactStore(tmp_path / "node-b", bucket.chunks)
    with pytest.raises(DigestMismatch, match="refused"):
        await node.materialise(digest)
    assert node.cached(digest) is None
    with pytest.raises(Internal, match="corrupt"):
        await asyncio.to_thread(builder_store.get, digest)
    # The builder does not count the bad object as stored, so storing the real bytes repairs it.
    assert await asyncio.to_thread(builder_store.exists, digest) is False
    source = tmp_path / "upload"
    source.write_bytes(good)
    assert await asyncio.to_thread(builder_store.put, digest, source) is True
    tree = await node.materialise(digest)
    assert (tree / "model" / "model.py").read_bytes() == MODEL


async def test_a_push_to_one_builder_runs_on_a_node_after_that_builder_is_gone(
    builder_store: NatsArtifactStore, bucket: ArtifactBucket, nats_url: str, bucket_name: str, tmp_path: Path
) -> None:
    (tmp_path / "truss" / "model").mkdir(parents=True)
    (tmp_path / "truss" / "config.yaml").write_text("model_name: echo\n")
    (tmp_path / "truss" / "model" / "model.py").write_bytes(MODEL)
    data = make_truss_archive(tmp_path / "truss")

    async def requests() -> AsyncIterator[builder_pb2.UploadSourceRequest]:
        yield builder_pb2.UploadSourceRequest(header=builder_pb2.UploadHeader(size_bytes=len(data)))
        yield builder_pb2.UploadSourceRequest(chunk=data)

    bus = await NatsBus.connect(nats_url, "test-builder")
    server = grpc.aio.server()
    builder_pb2_grpc.add_BuildServiceServicer_to_server(BuildServicer(builder_store, bus), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = rpc.channel(f"127.0.0.1:{port}")
    try:
        stub = builder_pb2_grpc.BuildServiceStub(channel)
        build = (await rpc.call(stub.UploadSource, requests(), attempts=1)).build
    finally:
        await channel.close()
        await server.stop(None)
        await bus.close()
    assert build.state == events_pb2.BUILD_STATE_SUCCEEDED, build.message

    tree = await ArtifactStore(tmp_path / "node-b", bucket.chunks).materialise(build.artifact_digest)
    assert (tree / "model" / "model.py").read_bytes() == MODEL
    other = await asyncio.to_thread(NatsArtifactStore.connect, nats_url, bucket_name, tmp_path / "builder-b")
    try:
        assert await asyncio.to_thread(other.get_build, build.build_id) == build
    finally:
        await asyncio.to_thread(other.close)

"""The builder's ArtifactStore in cluster mode: one JetStream object store that every machine shares.

Artifacts, build records and refs live in the bucket (see `kingpost.artifact_bucket`), so any
builder can answer GetBuild for a build another one made, reuse its dependency layers, and worker
agents fetch artifacts from the bucket without a builder at all. A local `FileArtifactStore` is a
cache of artifacts (write-through on put, filled on the first read) and holds scratch directories.

The build steps call the store from threads and expect blocking calls; the bucket is async. The
store owns a private event loop in a daemon thread, with its own NATS connection, and each call
runs its coroutine there and waits. Never call it from that loop (nothing outside this module sees it).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from kingpost.artifact_bucket import ArtifactBucket
from kingpost.errors import Internal, InvalidArgument, NotFound
from kingpost.v1 import builder_pb2
from kingpost_builder.store import (
    CHUNK_BYTES,
    FileArtifactStore,
    build_from_json,
    build_to_json,
    check_build_id,
    check_digest,
    check_ref,
)

T = TypeVar("T")


class NatsArtifactStore:
    """Create with `NatsArtifactStore.connect(nats_url, bucket, cache_root)`; `close()` when done."""

    def __init__(self, bucket: ArtifactBucket, cache: FileArtifactStore, loop: _LoopThread) -> None:
        self._bucket = bucket
        self._cache = cache
        self._loop = loop

    @classmethod
    def connect(cls, nats_url: str, bucket: str, cache_root: Path,
                client_name: str = "kingpost-builder-artifacts") -> NatsArtifactStore:
        loop = _LoopThread()
        try:
            opened = loop.run(ArtifactBucket.connect(nats_url, bucket, client_name))
        except BaseException:
            loop.stop()
            raise
        return cls(opened, FileArtifactStore(cache_root), loop)

    def close(self) -> None:
        try:
            self._loop.run(self._bucket.close())
        finally:
            self._loop.stop()

    # --- artifacts ------------------------------------------------------------------------------

    def exists(self, digest: str) -> bool:
        check_digest(digest)
        return self._loop.run(self._bucket.holds_artifact(digest))

    def put(self, digest: str, source: Path) -> bool:
        """Keep `source` as `digest` here and in the bucket; False when the bucket already had it."""
        check_digest(digest)
        if self.exists(digest):
            source.unlink(missing_ok=True)
            return False
        self._cache.put(digest, source)  # removes `source`, whether or not the cache had it
        self._loop.run(self._bucket.put_file(digest, self._cache.path(digest)))
        return True

    def get(self, digest: str) -> bytes:
        self._fill_cache(digest)
        return self._cache.get(digest)

    def open_chunks(self, digest: str, chunk_size: int = CHUNK_BYTES) -> Iterator[bytes]:
        self._fill_cache(digest)
        return self._cache.open_chunks(digest, chunk_size)

    # --- build records and refs -----------------------------------------------------------------

    def put_build(self, build: builder_pb2.Build) -> None:
        name = f"builds/{check_build_id(build.build_id)}"
        self._loop.run(self._bucket.put_bytes(name, build_to_json(build).encode()))

    def get_build(self, build_id: str) -> builder_pb2.Build:
        try:
            name = f"builds/{check_build_id(build_id)}"
        except InvalidArgument:
            raise NotFound(f"build {build_id!r} not found") from None
        data = self._loop.run(self._bucket.get_bytes(name))
        if data is None:
            raise NotFound(f"build {build_id!r} not found")
        return build_from_json(data)

    def get_ref(self, key: str) -> str | None:
        data = self._loop.run(self._bucket.get_bytes(f"refs/{check_ref(key)}"))
        if data is None:
            return None
        digest = data.decode(errors="replace").strip()
        try:
            check_digest(digest)
        except InvalidArgument:
            return None
        return digest if self.exists(digest) else None

    def put_ref(self, key: str, digest: str) -> None:
        check_digest(digest)
        self._loop.run(self._bucket.put_bytes(f"refs/{check_ref(key)}", (digest + "\n").encode()))

    def scratch_dir(self) -> Path:
        return self._cache.scratch_dir()

    # --- details --------------------------------------------------------------------------------

    def _fill_cache(self, digest: str) -> None:
        """Download `digest` into the local cache unless it is there; refuse bytes that do not match it."""
        hexpart = check_digest(digest)
        if self._cache.exists(digest):
            return
        fd, tmp = tempfile.mkstemp(dir=self._cache.root / "tmp", prefix="fetch-")
        try:
            with os.fdopen(fd, "wb") as out:
                actual = self._loop.run(_download(self._bucket, digest, out))
                out.flush()
                os.fsync(out.fileno())
            if actual != hexpart:
                raise Internal(f"artifact {digest} in the bucket {self._bucket.name!r} is corrupt: "
                               f"its bytes have sha256 {actual}")
            self._cache.put(digest, Path(tmp))
        finally:
            Path(tmp).unlink(missing_ok=True)


async def _download(bucket: ArtifactBucket, name: str, out: BinaryIO) -> str:
    """Write the object `name` to the open file `out`; the sha256 (hex) of what was written."""
    hasher = hashlib.sha256()
    async for chunk in bucket.chunks(name):
        hasher.update(chunk)
        out.write(chunk)
    return hasher.hexdigest()


class _LoopThread:
    """An event loop in a daemon thread; `run(coro)` runs a coroutine there and blocks for its result."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="artifact-store-loop",
                                        daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("NatsArtifactStore was called from its own event loop")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

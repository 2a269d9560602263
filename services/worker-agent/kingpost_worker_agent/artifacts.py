"""Artifacts on this node: fetched once per digest, checked, extracted, reused.

The fetcher is the builder's FetchArtifact (`BuilderArtifacts`) or, in cluster mode, the shared
JetStream object store (`kingpost.artifact_bucket.ArtifactBucket.chunks`); either way the bytes
must hash to the digest asked for.

Layout: `<work_dir>/artifacts/<hex>/` is a complete extraction (it holds `COMPLETE_MARKER`); it
appears by an atomic rename of a finished temporary directory, so a crash never leaves a half
artifact that looks whole. Concurrent requests for one digest wait on one fetch.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc

from kingpost import rpc
from kingpost.errors import InvalidArgument, KingpostError
from kingpost.v1 import builder_pb2, builder_pb2_grpc

from kingpost_worker_agent import archive

log = logging.getLogger(__name__)

COMPLETE_MARKER = ".kingpost-artifact-complete"

# digest → the archive's bytes, in chunks.
Fetcher = Callable[[str], AsyncIterator[bytes]]


class DigestMismatch(InvalidArgument):
    """The bytes fetched do not hash to the digest that was asked for."""


def digest_hex(digest: str) -> str:
    """`"sha256:<64 hex>"` (or bare hex) → the hex part, validated."""
    algo, sep, hexpart = digest.partition(":")
    if not sep:
        algo, hexpart = "sha256", digest
    hexpart = hexpart.lower()
    if algo != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise InvalidArgument(f"artifact digest {digest!r} is not 'sha256:<64 hex digits>'")
    return hexpart


class ArtifactStore:
    def __init__(self, root: Path, fetcher: Fetcher) -> None:
        self._root = root
        self._fetcher = fetcher
        self._locks: dict[str, asyncio.Lock] = {}

    def path_for(self, digest: str) -> Path:
        return self._root / digest_hex(digest)

    def cached(self, digest: str) -> Path | None:
        path = self.path_for(digest)
        return path if (path / COMPLETE_MARKER).is_file() else None

    async def materialise(self, digest: str) -> Path:
        """The extracted artifact's directory, fetching it first when this node has not got it."""
        hexpart = digest_hex(digest)
        if (found := self.cached(digest)) is not None:
            return found
        lock = self._locks.setdefault(hexpart, asyncio.Lock())
        async with lock:
            if (found := self.cached(digest)) is not None:
                return found
            return await self._fetch(digest, hexpart)

    async def _fetch(self, digest: str, hexpart: str) -> Path:
        self._root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{hexpart[:12]}-", dir=self._root))
        try:
            archive_path = work / "archive"
            hasher = hashlib.sha256()
            size = 0
            with open(archive_path, "wb") as out:
                async for chunk in self._fetcher(digest):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            if hasher.hexdigest() != hexpart:
                raise DigestMismatch(
                    f"artifact {digest}: fetched {size} bytes with sha256 {hasher.hexdigest()}; refused"
                )
            tree = work / "tree"
            tree.mkdir(mode=0o700)  # root's alone until a runner's user is given it (containment.py)
            await asyncio.to_thread(archive.extract, archive_path, tree)
            (tree / COMPLETE_MARKER).write_text(digest + "\n")
            final = self._root / hexpart
            if final.exists():  # without a marker, so not ours: a partial copy left by hand
                shutil.rmtree(final, ignore_errors=True)
            os.rename(tree, final)
            log.info("artifact %s materialised (%d bytes)", digest, size)
            return final
        finally:
            shutil.rmtree(work, ignore_errors=True)


class BuilderArtifacts:
    """FetchArtifact from the builder; `fetch` is the ArtifactStore's Fetcher."""

    def __init__(self, address: str, internal_token: str) -> None:
        self._address = address
        self._auth = rpc.internal(internal_token)
        self._channel: grpc.aio.Channel | None = None

    async def fetch(self, digest: str) -> AsyncIterator[bytes]:
        if self._channel is None:
            self._channel = rpc.channel(self._address)
        stub = builder_pb2_grpc.BuildServiceStub(self._channel)
        request = builder_pb2.FetchArtifactRequest(artifact_digest=digest)
        try:
            async for reply in rpc.stream(stub.FetchArtifact, request, auth=self._auth, timeout=3600):
                yield reply.chunk
        except KingpostError as e:
            raise type(e)(f"cannot fetch artifact {digest} from the builder at {self._address}: {e.message}",
                          http_status=e.http_status) from e

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

"""Where artifacts and build records live: content-addressed, written atomically.

`FileArtifactStore` keeps, under its root (`$KINGPOST_HOME/artifacts` by default):

    sha256/<hex>.tar.gz     an artifact, named by the sha256 of its bytes
    builds/<build_id>.json  a build record (the Build message as JSON); the builder owns builds
    refs/<key>              a name → digest pointer (the dependency layer of a lock: `deps-<sha256>`)
    tmp/                    uploads and archives being written

Every file appears by rename of a complete temp file in the same directory tree, so a reader
sees a whole file or none. A cluster swaps in another `ArtifactStore`: `NatsArtifactStore`
(nats_store.py) keeps them in a JetStream object store that every machine shares.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from google.protobuf import json_format

from kingpost.errors import InvalidArgument, NotFound
from kingpost.v1 import builder_pb2

CHUNK_BYTES = 1 << 20
_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")
_BUILD_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_REF = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class ArtifactStore(Protocol):
    def exists(self, digest: str) -> bool: ...

    def put(self, digest: str, source: Path) -> bool:
        """Move the file `source` in as `digest`; False (and `source` removed) when it was already there."""
        ...

    def get(self, digest: str) -> bytes: ...

    def open_chunks(self, digest: str, chunk_size: int = CHUNK_BYTES) -> Iterator[bytes]: ...

    def put_build(self, build: builder_pb2.Build) -> None: ...

    def get_build(self, build_id: str) -> builder_pb2.Build: ...

    def scratch_dir(self) -> Path:
        """A fresh private directory for one build's work; the caller removes it."""
        ...

    def get_ref(self, key: str) -> str | None:
        """The digest stored under `key`, when that artifact is still in the store; else None."""
        ...

    def put_ref(self, key: str, digest: str) -> None: ...


class FileArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("sha256", "builds", "tmp", "refs"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def exists(self, digest: str) -> bool:
        return self._artifact_path(digest).is_file()

    def path(self, digest: str) -> Path:
        """Where the artifact `digest` is (or would be) kept."""
        return self._artifact_path(digest)

    def put(self, digest: str, source: Path) -> bool:
        final = self._artifact_path(digest)
        if final.is_file():
            source.unlink(missing_ok=True)
            return False
        staged = self._stage(source)
        os.replace(staged, final)
        return True

    def get(self, digest: str) -> bytes:
        try:
            return self._artifact_path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"artifact {digest} not found") from None

    def open_chunks(self, digest: str, chunk_size: int = CHUNK_BYTES) -> Iterator[bytes]:
        try:
            f = open(self._artifact_path(digest), "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError:
            raise NotFound(f"artifact {digest} not found") from None
        return _read_chunks(f, chunk_size)

    def put_build(self, build: builder_pb2.Build) -> None:
        path = self._build_path(build.build_id)
        text = build_to_json(build)
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", prefix="build-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def get_build(self, build_id: str) -> builder_pb2.Build:
        try:
            text = self._build_path(build_id).read_text()
        except (FileNotFoundError, InvalidArgument):
            raise NotFound(f"build {build_id!r} not found") from None
        return build_from_json(text)

    def get_ref(self, key: str) -> str | None:
        try:
            digest = self._ref_path(key).read_text().strip()
        except FileNotFoundError:
            return None
        return digest if _DIGEST.match(digest) and self.exists(digest) else None

    def put_ref(self, key: str, digest: str) -> None:
        self._artifact_path(digest)  # validates it
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", prefix="ref-")
        with os.fdopen(fd, "w") as f:
            f.write(digest + "\n")
        os.replace(tmp, self._ref_path(key))

    def scratch_dir(self) -> Path:
        return Path(tempfile.mkdtemp(dir=self.root / "tmp", prefix="work-"))

    # --- details --------------------------------------------------------------------------------

    def _artifact_path(self, digest: str) -> Path:
        return self.root / "sha256" / f"{check_digest(digest)}.tar.gz"

    def _ref_path(self, key: str) -> Path:
        return self.root / "refs" / check_ref(key)

    def _build_path(self, build_id: str) -> Path:
        return self.root / "builds" / f"{check_build_id(build_id)}.json"

    def _stage(self, source: Path) -> Path:
        """`source`, flushed to disk, at a temp name beside the artifacts (same file system)."""
        staged = self.root / "tmp" / f"artifact-{uuid.uuid4().hex}"
        try:
            os.replace(source, staged)
        except OSError:  # another file system: copy, then drop the original
            shutil.copyfile(source, staged)
            source.unlink()
        with open(staged, "rb") as f:
            os.fsync(f.fileno())
        return staged


def check_digest(digest: str) -> str:
    """The hex part of `sha256:<64 hex digits>`; InvalidArgument for anything else."""
    match = _DIGEST.fullmatch(digest)
    if match is None:
        raise InvalidArgument(f"{digest!r} is not an artifact digest (sha256:<64 hex digits>)")
    return match.group(1)


def check_ref(key: str) -> str:
    if not _REF.fullmatch(key):
        raise InvalidArgument(f"{key!r} is not a ref name")
    return key


def check_build_id(build_id: str) -> str:
    if not _BUILD_ID.fullmatch(build_id):
        raise InvalidArgument(f"{build_id!r} is not a build id")
    return build_id


def build_to_json(build: builder_pb2.Build) -> str:
    return json_format.MessageToJson(build, preserving_proto_field_name=True, indent=2)


def build_from_json(text: str | bytes) -> builder_pb2.Build:
    return json_format.Parse(text, builder_pb2.Build())


def _read_chunks(f: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    with f:
        while chunk := f.read(chunk_size):
            yield chunk

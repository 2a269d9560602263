"""The file artifact store: content-addressed, atomic, and the home of build records."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from kingpost.errors import InvalidArgument, NotFound
from kingpost.v1 import builder_pb2, events_pb2
from kingpost_builder.store import FileArtifactStore


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def staged(store: FileArtifactStore, data: bytes) -> Path:
    path = store.scratch_dir() / "artifact.tar.gz"
    path.write_bytes(data)
    return path


def test_put_get_and_chunks(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path / "artifacts")
    data = b"x" * 2500
    digest = digest_of(data)
    assert not store.exists(digest)
    assert store.put(digest, staged(store, data)) is True
    assert store.exists(digest)
    assert store.get(digest) == data
    assert list(store.open_chunks(digest, chunk_size=1000)) == [b"x" * 1000, b"x" * 1000, b"x" * 500]
    assert (tmp_path / "artifacts/sha256" / f"{digest.removeprefix('sha256:')}.tar.gz").is_file()


def test_same_content_again_is_not_stored_again(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    data = b"content"
    digest = digest_of(data)
    store.put(digest, staged(store, data))
    final = tmp_path / "sha256" / f"{digest.removeprefix('sha256:')}.tar.gz"
    first_inode = final.stat().st_ino
    second = staged(store, data)
    assert store.put(digest, second) is False
    assert not second.exists()
    assert final.stat().st_ino == first_inode


def test_no_temp_files_are_left_visible(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    store.put(digest_of(b"a"), staged(store, b"a"))
    assert [p.name for p in (tmp_path / "sha256").iterdir()] == [f"{hashlib.sha256(b'a').hexdigest()}.tar.gz"]


def test_unknown_and_malformed_digests(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    unknown = digest_of(b"never stored")
    with pytest.raises(NotFound, match=unknown):
        store.get(unknown)
    with pytest.raises(NotFound, match=unknown):
        store.open_chunks(unknown)
    with pytest.raises(InvalidArgument, match="not an artifact digest"):
        store.get("sha256:../../etc/passwd")


def test_build_records_round_trip(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    build = builder_pb2.Build(build_id="bld_abc", state=events_pb2.BUILD_STATE_SUCCEEDED,
                              artifact_digest=digest_of(b"a"), warnings=["w1"], cached=True,
                              truss=builder_pb2.TrussSummary(model_name="m", predict_concurrency=2))
    build.created_at.FromSeconds(1_700_000_000)
    store.put_build(build)
    assert store.get_build("bld_abc") == build
    assert (tmp_path / "builds/bld_abc.json").is_file()
    build.state = events_pb2.BUILD_STATE_FAILED
    store.put_build(build)  # replaced whole
    assert store.get_build("bld_abc").state == events_pb2.BUILD_STATE_FAILED


def test_unknown_build_names_the_id(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    with pytest.raises(NotFound, match="build 'bld_nope' not found"):
        store.get_build("bld_nope")
    with pytest.raises(NotFound):
        store.get_build("../secrets")

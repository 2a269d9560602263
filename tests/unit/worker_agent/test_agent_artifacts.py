import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kingpost.errors import InvalidArgument
from kingpost_worker_agent.archive import UnsafeArchive
from kingpost_worker_agent.artifacts import COMPLETE_MARKER, ArtifactStore, DigestMismatch
from tests.fixtures.archives import tar_of


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class FakeBuilder:
    """Stands in for BuildService.FetchArtifact; counts fetches."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs
        self.fetches: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def fetch(self, digest: str) -> AsyncIterator[bytes]:
        self.fetches.append(digest)
        await self.gate.wait()
        data = self.blobs[digest]
        for i in range(0, len(data), 7):
            yield data[i:i + 7]


TRUSS = tar_of({"config.yaml": b"model_name: tiny\n", "model/model.py": b"class Model: pass\n"})


async def test_fetches_once_then_reuses(tmp_path: Path) -> None:
    builder = FakeBuilder({_digest(TRUSS): TRUSS})
    store = ArtifactStore(tmp_path, builder.fetch)
    path = await store.materialise(_digest(TRUSS))
    assert (path / "model" / "model.py").read_bytes() == b"class Model: pass\n"
    assert (path / COMPLETE_MARKER).is_file()
    assert await ArtifactStore(tmp_path, builder.fetch).materialise(_digest(TRUSS)) == path
    assert len(builder.fetches) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary leftovers


async def test_concurrent_requests_for_one_digest_fetch_once(tmp_path: Path) -> None:
    builder = FakeBuilder({_digest(TRUSS): TRUSS})
    builder.gate.clear()
    store = ArtifactStore(tmp_path, builder.fetch)
    waiting = [asyncio.create_task(store.materialise(_digest(TRUSS))) for _ in range(5)]
    await asyncio.sleep(0)
    builder.gate.set()
    paths = await asyncio.gather(*waiting)
    assert len(set(paths)) == 1 and builder.fetches == [_digest(TRUSS)]


async def test_bytes_that_do_not_match_the_digest_are_refused_and_not_kept(tmp_path: Path) -> None:
    wanted = "sha256:" + "0" * 64
    store = ArtifactStore(tmp_path, FakeBuilder({wanted: TRUSS}).fetch)
    with pytest.raises(DigestMismatch, match="sha256"):
        await store.materialise(wanted)
    assert list(tmp_path.iterdir()) == []


async def test_an_unsafe_artifact_is_refused_and_not_kept(tmp_path: Path) -> None:
    evil = tar_of({"config.yaml": b"x: 1\n", "../../evil.py": b"boom"})
    store = ArtifactStore(tmp_path / "artifacts", FakeBuilder({_digest(evil): evil}).fetch)
    with pytest.raises(UnsafeArchive):
        await store.materialise(_digest(evil))
    assert list((tmp_path / "artifacts").iterdir()) == []
    assert not (tmp_path / "evil.py").exists()


async def test_a_malformed_digest_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="sha256:<64 hex digits>"):
        await ArtifactStore(tmp_path, FakeBuilder({}).fetch).materialise("md5:abc")

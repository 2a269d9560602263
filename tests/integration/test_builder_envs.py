"""Isolated model environments with real uv against PyPI: builder lock + wheels → agent venv, offline.

Small and cache-friendly: six (pure Python, many versions) and the runner's own packages, which
uv's and pip's caches keep after the first run.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kingpost.environment_manifest import EnvironmentManifest
from kingpost.errors import Internal, InvalidArgument
from kingpost_worker_agent import archive
from kingpost_worker_agent.artifacts import ArtifactStore
from kingpost_worker_agent.environments import EnvironmentStore
from kingpost_builder.archive import write_canonical
from kingpost_builder.build import STEPS, BuildWork, intake
from kingpost_builder.store import FileArtifactStore
from tests.fixtures.archives import tar_of

MODEL = b"import six\n\nclass Model:\n    def predict(self, x):\n        return six.__version__\n"


def build(store: FileArtifactStore, files: dict[str, bytes]) -> BuildWork:
    work_dir = store.scratch_dir()
    upload = work_dir / "upload.tar.gz"
    upload.write_bytes(tar_of(files))
    work = BuildWork(build_id="bld_test", work_dir=work_dir, upload=upload, max_unpacked_bytes=1 << 24,
                     wheelhouse=store.root.parent.parent / "wheelhouse")
    for step in (intake, *STEPS):
        step(work, store)
    return work


def truss(requirements: str, model: bytes = MODEL) -> dict[str, bytes]:
    return {"config.yaml": f"python_version: py311\nrequirements: {requirements}\n".encode(), "model/model.py": model}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One wheelhouse for the module (beside each test's store): the runner's wheels are fetched once."""
    return tmp_path_factory.mktemp("builder")


@pytest.fixture
def store(shared: Path, tmp_path: Path) -> FileArtifactStore:
    return FileArtifactStore(shared / tmp_path.name / "artifacts")


def node(store: FileArtifactStore, root: Path) -> tuple[ArtifactStore, EnvironmentStore]:
    async def fetch(digest: str) -> AsyncIterator[bytes]:
        yield store.get(digest)

    artifacts = ArtifactStore(root / "artifacts", fetch)
    return artifacts, EnvironmentStore(root / "envs", artifacts)


def run(python: str, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60, check=False)


async def test_conflicting_pins_get_their_own_isolated_environments(store: FileArtifactStore, tmp_path: Path) -> None:
    new = build(store, truss("[six==1.16.0]"))
    old = build(store, truss("[six==1.15.0]"))
    assert new.dependencies != old.dependencies and all(w.dependencies for w in (new, old))
    assert any("six==1.15.0" in e.text for e in old.log)  # what was locked is in the build log
    # The second lock shares the runner's wheels (and pydantic's) with the first: only six is fetched.
    locked = next(int(e.text.split()[1]) for e in old.log if e.text.startswith("locked "))
    assert locked >= 9  # six, the runner's six packages, pydantic and what they need
    assert any(f"{locked - 1} wheels from the builder's wheelhouse" in e.text for e in old.log)

    artifacts, envs = node(store, tmp_path / "node")
    pythons = []
    for work in (new, old):
        truss_dir = archive.truss_root(await artifacts.materialise(work.digest))
        pythons.append(await envs.python_for(truss_dir))
    assert pythons[0] != pythons[1] and pythons[0] != sys.executable
    assert run(pythons[0], "import six; print(six.__version__)").stdout.strip() == "1.16.0"
    assert run(pythons[1], "import six; print(six.__version__)").stdout.strip() == "1.15.0"
    # The runner and what it imports are there; the platform's own packages are not.
    ok = run(pythons[1], "import kingpost_runner.server, kingpost.errors, grpc, yaml, msgpack, anyio; print('ok')")
    assert ok.stdout.strip() == "ok", ok.stderr
    leak = run(pythons[1], "import sqlalchemy")
    assert leak.returncode != 0 and "No module named 'sqlalchemy'" in leak.stderr
    # Cached per dependency digest: asking again builds nothing.
    env_dirs = sorted(p.name for p in (tmp_path / "node" / "envs").iterdir())
    assert env_dirs == sorted(w.dependencies.removeprefix("sha256:") for w in (new, old))


async def test_changing_model_py_rebuilds_only_the_code_layer(store: FileArtifactStore) -> None:
    first = build(store, truss("[six==1.16.0]"))
    again = build(store, truss("[six==1.16.0]"))
    assert (again.digest, again.cached, again.dependencies_cached) == (first.digest, True, True)
    changed = build(store, truss("[six==1.16.0]", MODEL + b"# one more line\n"))
    assert changed.digest != first.digest and changed.cached is False
    assert changed.dependencies == first.dependencies and changed.dependencies_cached is True
    assert not any("downloaded" in e.text or "wheelhouse" in e.text for e in changed.log)


def test_unknown_requirement_fails_fast_naming_the_package(store: FileArtifactStore) -> None:
    with pytest.raises(InvalidArgument, match="surely-not-a-real-package-kp") as e:
        build(store, truss("[surely-not-a-real-package-kp==1.0]"))
    assert e.value.message.startswith("cannot resolve the requirements")


def test_pyproject_requirements_file_is_locked(store: FileArtifactStore) -> None:
    pyproject = b'[project]\nname = "m"\nversion = "0"\ndependencies = ["six==1.15.0"]\n'
    work = build(store, {"config.yaml": b"python_version: py311\nrequirements_file: pyproject.toml\n",
                         "model/model.py": MODEL, "pyproject.toml": pyproject})
    layer = tarfile.open(fileobj=io.BytesIO(store.get(work.dependencies)), mode="r:gz")
    names = layer.getnames()
    assert "lock.txt" in names and any(n.startswith("wheels/six-1.15.0") for n in names)


async def test_an_environment_that_cannot_be_built_leaves_nothing_behind(tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    (layer / "wheels").mkdir(parents=True)
    (layer / "lock.txt").write_text("six==1.16.0\n")  # and no wheel for it: offline install fails
    store = FileArtifactStore(tmp_path / "artifacts")
    staged = tmp_path / "layer.tar.gz"
    with open(staged, "wb") as out:
        digest = write_canonical(layer, out)
    store.put(digest, staged)
    truss_dir = tmp_path / "truss"
    (truss_dir / ".kingpost").mkdir(parents=True)
    (truss_dir / ".kingpost" / "environment.json").write_text(
        EnvironmentManifest(digest, "3.11", "deps-x").to_json())
    _, envs = node(store, tmp_path / "node")
    with pytest.raises(Internal, match="six"):
        await envs.python_for(truss_dir)
    assert list((tmp_path / "node" / "envs").iterdir()) == []  # no env, no temp dir

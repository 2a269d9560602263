"""The base environment's contents: the runner's declared packages and everything they need."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from kingpost import runner_packages
from kingpost.errors import Internal
from kingpost_worker_agent.artifacts import ArtifactStore
from kingpost_worker_agent.environments import EnvironmentStore, _installed_requires, base_distributions

FAKE = {
    "grpcio": ["typing-extensions>=4.12"],
    "typing-extensions": [],
    "anyio": ["idna>=2.8", "exceptiongroup; python_version < '3.0'", "trio>=0.26; extra == 'trio'"],
    "idna": [],
    "pydantic": ["pydantic-core==2.1", "Annotated_Types>=0.6"],
    "pydantic-core": ["typing-extensions"],
    "annotated-types": [],
}


def test_the_closure_follows_requirements_whose_markers_hold_and_no_extras() -> None:
    assert base_distributions(FAKE.get, roots=["grpcio", "anyio", "Pydantic"]) == [
        "annotated-types", "anyio", "grpcio", "idna", "pydantic", "pydantic-core", "typing-extensions"]


def test_a_missing_package_is_named() -> None:
    with pytest.raises(Internal, match="lacks msgpack"):
        base_distributions(FAKE.get, roots=["grpcio", "msgpack"])


def test_the_platforms_closure_holds_the_runners_declared_packages_and_not_the_platforms_own() -> None:
    names = base_distributions(_installed_requires)
    assert set(runner_packages.REQUIRED) | set(runner_packages.PROVIDED) <= set(names)
    # (click comes with uvicorn, the runner's HTTP data plane: it is no longer the platform's alone.)
    assert not {"sqlalchemy", "nats-py", "alembic", "httpx", "grpcio-tools", "numpy"} & set(names)


async def test_trusses_without_a_dependency_layer_share_one_base_environment(tmp_path: Path) -> None:
    store = EnvironmentStore(tmp_path / "envs", ArtifactStore(tmp_path / "artifacts", _no_fetch))
    plain = tmp_path / "plain"
    plain.mkdir()
    system_only = tmp_path / "system-only"  # system_packages and no requirements
    (system_only / ".kingpost").mkdir(parents=True)
    (system_only / ".kingpost" / "environment.json").write_text(json.dumps(
        {"dependencies": "", "python_version": "", "lock_key": "", "system": "sha256:" + "b" * 64}))
    python = await store.python_for(plain)
    assert await store.python_for(system_only) == python == store.base_python
    assert Path(python).parent.parent.parent == tmp_path / "envs"
    found = subprocess.run([python, "-c", "import importlib.util as u; print(u.find_spec('pydantic') is not None, "
                            "u.find_spec('sqlalchemy') is not None)"], capture_output=True, text=True, check=True)
    assert found.stdout.split() == ["True", "False"]


async def _no_fetch(digest: str):  # the base environment needs no artifact
    raise AssertionError(f"fetched {digest}")
    yield b""

"""The agent's view of a system layer: which Truss has one, and the PATH / LD_LIBRARY_PATH its runner gets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kingpost.errors import InvalidArgument
from kingpost_worker_agent import system_layer
from kingpost_worker_agent.artifacts import ArtifactStore
from kingpost_worker_agent.environments import EnvironmentStore

LAYER_DIGEST = "sha256:" + "b" * 64


def truss_with(tmp_path: Path, manifest: dict[str, str] | None) -> Path:
    truss = tmp_path / "truss"
    (truss / ".kingpost").mkdir(parents=True)
    if manifest is not None:
        (truss / ".kingpost" / "environment.json").write_text(json.dumps(manifest))
    return truss


def test_which_trusses_have_a_system_layer(tmp_path: Path) -> None:
    plain = truss_with(tmp_path / "a", None)
    assert system_layer.system_digest(plain) == ""
    deps = truss_with(tmp_path / "b", {"dependencies": "sha256:" + "a" * 64, "python_version": "3.11",
                                       "lock_key": "deps-x", "system": LAYER_DIGEST})
    assert system_layer.system_digest(deps) == LAYER_DIGEST
    only = truss_with(tmp_path / "c", {"dependencies": "", "python_version": "", "lock_key": "",
                                       "system": LAYER_DIGEST})
    assert system_layer.system_digest(only) == LAYER_DIGEST


async def test_a_manifest_that_is_not_json_is_named_for_either_layer(tmp_path: Path) -> None:
    truss = truss_with(tmp_path, None)
    (truss / ".kingpost" / "environment.json").write_text("{not json")
    with pytest.raises(InvalidArgument, match=r"\.kingpost/environment\.json in the artifact cannot be read"):
        system_layer.system_digest(truss)
    def no_fetch(digest: str) -> AsyncIterator[bytes]:
        raise AssertionError(f"fetched {digest} for an unreadable manifest")

    store = EnvironmentStore(tmp_path / "envs", ArtifactStore(tmp_path / "artifacts", no_fetch))
    with pytest.raises(InvalidArgument, match=r"environment\.json"):
        await store.python_for(truss)


def test_the_layer_comes_first_on_path_and_ld_library_path(tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    (layer / ".kingpost").mkdir(parents=True)
    (layer / ".kingpost" / "system.json").write_text(json.dumps({"multiarch": "aarch64-linux-gnu"}))
    env = system_layer.layer_env(layer, {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": "/opt/lib"})
    path = env["PATH"].split(":")
    assert path[:3] == [str(layer / "usr/local/bin"), str(layer / "usr/bin"), str(layer / "bin")]
    assert path[-2:] == ["/usr/bin", "/bin"]
    assert env["LD_LIBRARY_PATH"].split(":") == [str(layer / "usr/lib/aarch64-linux-gnu"),
                                                  str(layer / "lib/aarch64-linux-gnu"), str(layer / "usr/lib"),
                                                  "/opt/lib"]
    bare = system_layer.layer_env(layer, {"PATH": "/usr/bin"}, "x86_64-linux-gnu")
    assert bare["LD_LIBRARY_PATH"].endswith(str(layer / "usr/lib"))  # nothing empty appended

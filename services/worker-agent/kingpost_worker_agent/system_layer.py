"""A Truss's system layer on this node: the Debian packages its `system_packages` named, unpacked.

The builder stores the layer (services/builder/kingpost_builder/system_packages.py) and names its digest in the code
artifact's `.kingpost/environment.json` (`"system"`); the agent materialises it like any artifact
and starts the runner with the layer's program and library directories first on PATH and
LD_LIBRARY_PATH. Such a runner is always started fresh, never handed to a standby runner, whose
environment was fixed before it knew the layer.

    layer = await materialise(truss_dir, artifacts)      # None when the Truss has no system layer
    env.update(layer_env(layer, env))                     # PATH and LD_LIBRARY_PATH into the layer
"""

from __future__ import annotations

import json
import os
import sysconfig
from collections.abc import Mapping
from pathlib import Path

from kingpost import environment_manifest

from kingpost_worker_agent.artifacts import ArtifactStore

METADATA = ".kingpost/system.json"  # in the layer: {"multiarch": "x86_64-linux-gnu", "packages": [...], ...}
BIN_DIRS = ("usr/local/bin", "usr/bin", "bin", "usr/local/sbin", "usr/sbin", "sbin")


def system_digest(truss_dir: Path) -> str:
    """The system layer's digest the Truss's manifest names; "" when none."""
    manifest = environment_manifest.read(truss_dir)
    return manifest.system if manifest is not None else ""


def multiarch(layer: Path) -> str:
    """The multiarch triplet the layer's libraries live under (as the builder recorded it, else this node's)."""
    path = layer / METADATA
    if path.is_file():
        try:
            value = json.loads(path.read_text()).get("multiarch")
        except (ValueError, AttributeError):
            value = None
        if value:
            return str(value)
    return str(sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu")


def bin_dirs(layer: Path) -> list[str]:
    return [str(layer / d) for d in BIN_DIRS]


def library_dirs(layer: Path, triplet: str) -> list[str]:
    return [str(layer / "usr/lib" / triplet), str(layer / "lib" / triplet), str(layer / "usr/lib")]


def prepend(dirs: list[str], existing: str) -> str:
    """`dirs` ahead of the `existing` search path (which keeps its order; empty parts dropped)."""
    return os.pathsep.join([*dirs, *(p for p in existing.split(os.pathsep) if p)])


def layer_env(layer: Path, base: Mapping[str, str], triplet: str | None = None) -> dict[str, str]:
    """PATH and LD_LIBRARY_PATH for a runner of this layer: its directories first, then `base`'s."""
    triplet = triplet or multiarch(layer)
    return {"PATH": prepend(bin_dirs(layer), base.get("PATH", os.defpath)),
            "LD_LIBRARY_PATH": prepend(library_dirs(layer, triplet), base.get("LD_LIBRARY_PATH", ""))}


async def materialise(truss_dir: Path, artifacts: ArtifactStore) -> Path | None:
    """The Truss's system layer on this node (fetched when needed); None when it has none."""
    digest = system_digest(truss_dir)
    if not digest:
        return None
    return await artifacts.materialise(digest)

"""Model environments on this node: one virtual environment per dependency artifact, built offline.

A code artifact whose `.kingpost/environment.json` names a dependency artifact gets
`<work_dir>/envs/<hex>/`: `uv venv` (the Python the builder locked for when this node has it, else
the platform's, with a warning) + `uv pip sync --offline --no-index --find-links wheels lock.txt`
from that artifact alone, then the runner's code linked in (`kingpost_runner` and `kingpost`, which
import only what the lock pins: grpcio, protobuf, googleapis-common-protos, pyyaml, msgpack, anyio).
It is built in a temp dir and renamed into place with a marker, so nothing half-built is ever used;
concurrent replicas of one environment wait on one build. A Truss without the file runs on the
platform's Python.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
from collections import deque
from pathlib import Path

import uv

from kingpost import pythons
from kingpost.errors import Internal

from kingpost_agent.artifacts import ArtifactStore, digest_hex

log = logging.getLogger(__name__)

MANIFEST = ".kingpost/environment.json"
COMPLETE_MARKER = ".kingpost-env-complete"
RUNNER_PACKAGES = ("kingpost_runner", "kingpost")


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations, f"{name} is not installed"
    return Path(list(spec.submodule_search_locations)[0])


class EnvironmentStore:
    def __init__(self, root: Path, artifacts: ArtifactStore, platform_python: str = sys.executable) -> None:
        self._root = root
        self._artifacts = artifacts
        self._platform_python = platform_python
        self._locks: dict[str, asyncio.Lock] = {}

    async def python_for(self, truss_dir: Path, warn: list[str] | None = None) -> str:
        """The interpreter to run this Truss's runner with (building its environment when needed)."""
        manifest = truss_dir / MANIFEST
        if not manifest.is_file():
            return self._platform_python
        data = json.loads(manifest.read_text())
        digest, version = str(data["dependencies"]), str(data["python_version"])
        hexpart = digest_hex(digest)
        env = self._root / hexpart
        if (env / COMPLETE_MARKER).is_file():
            return str(env / "bin" / "python")
        async with self._locks.setdefault(hexpart, asyncio.Lock()):
            if not (env / COMPLETE_MARKER).is_file():
                layer = await self._artifacts.materialise(digest)
                await self._build(env, layer, version, warn if warn is not None else [])
        return str(env / "bin" / "python")

    async def _build(self, env: Path, layer: Path, version: str, warn: list[str]) -> None:
        self._root.mkdir(parents=True, exist_ok=True)
        python = pythons.find_python(version)
        if python is None:
            python = self._platform_python
            message = (f"Python {version} (the one the dependencies were locked for) is not on this node; "
                       f"using the platform's Python {pythons.platform_version()}")
            log.warning(message)
            warn.append(message)
        tmp = Path(tempfile.mkdtemp(prefix=f".{env.name[:12]}-", dir=self._root))
        try:
            await _run([uv.find_uv_bin(), "venv", "--quiet", "--relocatable", "--python", python, str(tmp)])
            await _run([uv.find_uv_bin(), "pip", "sync", "--quiet", "--offline", "--no-index", "--find-links",
                        str(layer / "wheels"), "--python", str(tmp / "bin" / "python"), str(layer / "lock.txt")])
            site = await _site_packages(tmp / "bin" / "python")
            for name in RUNNER_PACKAGES:
                (site / name).symlink_to(package_dir(name), target_is_directory=True)
            (tmp / COMPLETE_MARKER).write_text(f"{layer.name}\n")
            if env.exists():  # no marker, so a partial copy left by hand
                shutil.rmtree(env, ignore_errors=True)
            os.rename(tmp, env)
            log.info("environment %s built (python %s)", env.name, version)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["NO_COLOR"] = "1"
    return env


async def _run(argv: list[str]) -> str:
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT, env=_env())
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        tail = "\n".join(deque(text.splitlines(), maxlen=20))
        raise Internal(f"cannot build the model's environment: {Path(argv[0]).name} {argv[1]} "
                                 f"exited with code {proc.returncode}: {tail}")
    return text


async def _site_packages(python: Path) -> Path:
    out = await _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    return Path(out.strip().splitlines()[-1])


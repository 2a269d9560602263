"""Model environments on this node: one virtual environment per dependency artifact, built offline.

A code artifact whose `.kingpost/environment.json` names a dependency artifact gets
`<work_dir>/envs/<hex>/`: `uv venv` (the Python the builder locked for when this node has it, else
the platform's, with a warning) + `uv pip sync --offline --no-index --find-links wheels lock.txt`
from that artifact alone, then the runner's code linked in (`kingpost_runner` and `kingpost`, which
import only what the lock pins: the runner's declared packages, `kingpost.runner_packages.REQUIRED`).

A Truss without the file (no requirements) gets the node's **base environment**,
`<work_dir>/envs/base-<key>/`: a venv of the platform's Python holding exactly the runner's declared
packages and what Truss's server provides (`REQUIRED + PROVIDED` and what they depend on), each
file linked from the platform's own installation: built in milliseconds, offline, shared by every
such Truss (so one pre-started standby runner serves them all), and a model there cannot import a
platform package it did not ask for.

Every environment is built in a temp dir and renamed into place with a marker, so nothing
half-built is ever used; concurrent replicas of one environment wait on one build.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

import uv
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from kingpost import environment_manifest, pythons, runner_packages
from kingpost.errors import Internal

from kingpost_worker_agent.artifacts import ArtifactStore, digest_hex

log = logging.getLogger(__name__)

COMPLETE_MARKER = ".kingpost-env-complete"
RUNNER_PACKAGES = ("kingpost_runner", "kingpost")

# distribution name → its requirement strings (importlib.metadata.requires), None when not installed
RequiresOf = Callable[[str], "list[str] | None"]


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
        self._base_python: str | None = None

    @property
    def base_python(self) -> str | None:
        """The base environment's interpreter, once it is built."""
        return self._base_python

    async def python_for(self, truss_dir: Path, warn: list[str] | None = None) -> str:
        """The interpreter to run this Truss's runner with (building its environment when needed)."""
        manifest = environment_manifest.read(truss_dir)
        if manifest is None or not manifest.dependencies:  # no requirements (or a system layer alone)
            return await self._base()
        digest, version = manifest.dependencies, manifest.python_version
        hexpart = digest_hex(digest)
        env = self._root / hexpart
        if (env / COMPLETE_MARKER).is_file():
            return str(env / "bin" / "python")
        async with self._locks.setdefault(hexpart, asyncio.Lock()):
            if not (env / COMPLETE_MARKER).is_file():
                layer = await self._artifacts.materialise(digest)
                await self._build(env, layer, version, warn if warn is not None else [])
        return str(env / "bin" / "python")

    async def _base(self) -> str:
        if self._base_python is not None:
            return self._base_python
        async with self._locks.setdefault("base", asyncio.Lock()):
            if self._base_python is None:
                dists = base_distributions(_installed_requires)
                pins = [f"{name}=={importlib.metadata.version(name)}" for name in dists]
                key = hashlib.sha256("\n".join([self._platform_python, *pins]).encode()).hexdigest()[:16]
                env = self._root / f"base-{key}"
                if not (env / COMPLETE_MARKER).is_file():
                    await self._build_base(env, dists)
                self._base_python = str(env / "bin" / "python")
        return self._base_python

    async def _build_base(self, env: Path, dists: list[str]) -> None:
        self._root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".base-", dir=self._root))
        try:
            await _run([uv.find_uv_bin(), "venv", "--quiet", "--relocatable", "--python", self._platform_python,
                        str(tmp)])
            site = await _site_packages(tmp / "bin" / "python")
            linked = await asyncio.to_thread(_link_distributions, dists, site)
            for name in RUNNER_PACKAGES:
                (site / name).symlink_to(package_dir(name), target_is_directory=True)
            # Bytecode now: runners that run as users of their own cannot write it where they import from.
            await _run([str(tmp / "bin" / "python"), "-c", "import compileall, sys; "
                        "compileall.compile_dir(sys.argv[1], quiet=2, workers=0)", str(site)])
            (tmp / COMPLETE_MARKER).write_text("\n".join(dists) + "\n")
            if env.exists():
                shutil.rmtree(env, ignore_errors=True)
            os.rename(tmp, env)
            log.info("base environment %s built: %s (%d files linked)", env.name, ", ".join(dists), linked)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

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
            await _run([uv.find_uv_bin(), "pip", "sync", "--quiet", "--offline", "--no-index", "--compile-bytecode",
                        "--find-links", str(layer / "wheels"), "--python", str(tmp / "bin" / "python"),
                        str(layer / "lock.txt")])
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


def base_distributions(
    requires_of: RequiresOf, roots: Iterable[str] = (*runner_packages.REQUIRED, *runner_packages.PROVIDED)
) -> list[str]:
    """`roots` and everything they need (markers evaluated here, extras not followed), by canonical
    name, sorted. A root the platform lacks is an error; a dependency it lacks under a marker that
    holds is one too (the platform's installation is broken)."""
    seen: set[str] = set()
    todo = [canonicalize_name(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        requires = requires_of(name)
        if requires is None:
            raise Internal(f"the platform lacks {name}, which the runner's environment needs")
        seen.add(name)
        for text in requires:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
    return sorted(seen)


def _installed_requires(name: str) -> list[str] | None:
    try:
        return importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
        return None


def _link_distributions(dists: Iterable[str], site: Path) -> int:
    """Link every installed file of `dists` (their RECORD) into `site`, at the same relative paths."""
    count = 0
    for name in dists:
        dist = importlib.metadata.distribution(name)
        for file in dist.files or []:
            if file.parts and file.parts[0] == ".." or file.suffix == ".pyc":
                continue  # scripts outside site-packages; bytecode is rewritten where it is used
            source = Path(str(dist.locate_file(file)))
            target = site / file
            if target.exists() or not source.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source)
            count += 1
    return count

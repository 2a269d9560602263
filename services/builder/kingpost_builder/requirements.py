"""A Truss's Python requirements: what to lock, what the runner needs beside them, what a lock is keyed by.

Pure (no subprocess, no file system): `environment.py` runs uv and pip over what is decided here.

    lines = requirement_lines(text)                      # a pip requirements file's requirement lines
    pins = runner_pins(platform_version)                 # the runner's own packages, at the platform's versions
    check_runner_conflicts(lines, pins, source=...)      # InvalidArgument naming both sides of a clash
    key = dependency_key(lock_text, python_version)      # what the dependency layer is cached by
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from packaging import tags
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from kingpost import runner_packages
from kingpost.errors import InvalidArgument

VersionOf = Callable[[str], "str | None"]

# What `python -m kingpost_runner` imports inside the model's environment (kingpost.runner_packages);
# installed there at the platform's own versions, so the generated kingpost.v1 code matches protobuf.
RUNNER_PACKAGES = runner_packages.REQUIRED


def installed_version(name: str) -> str | None:
    """The version of distribution `name` installed in this environment, or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def requirement_lines(text: str) -> list[str]:
    """The requirement lines of a pip requirements file (comments and blank lines dropped)."""
    lines = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def python_of(truss_version: str) -> str:
    """`"py311"` → `"3.11"`."""
    return f"{truss_version[2]}.{truss_version[3:]}"


def runner_pins(version_of: VersionOf = installed_version) -> dict[str, str]:
    """The runner's packages → the platform's version of each (canonical names)."""
    pins = {}
    for name in RUNNER_PACKAGES:
        version = version_of(name)
        if version is None:
            raise RuntimeError(f"the platform lacks {name}, which the runner needs")
        pins[canonicalize_name(name)] = version
    return pins


def pin_lines(pins: Mapping[str, str]) -> list[str]:
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def runner_input_lines(pins: Mapping[str, str]) -> list[str]:
    """What the runner adds to a Truss's requirements: its own packages pinned, and what Truss's server
    provides unpinned (so the resolver honours a model's own requirement on it, and picks one otherwise)."""
    return [*pin_lines(pins), *runner_packages.PROVIDED]


def parse_requirements(lines: Iterable[str], *, source: str) -> list[Requirement]:
    """The lines that are requirements (pip options such as `--index-url` are left to uv)."""
    out = []
    for line in lines:
        if line.startswith("-"):
            continue
        try:
            out.append(Requirement(line))
        except InvalidRequirement as e:
            raise InvalidArgument(f"{source}: {line!r} is not a valid requirement: {e}") from None
    return out


def check_runner_conflicts(lines: Iterable[str], pins: Mapping[str, str], *, source: str) -> None:
    """A requirement that excludes the version of a package the runner needs fails the build, naming both."""
    clashes = []
    for req in parse_requirements(lines, source=source):
        name = canonicalize_name(req.name)
        if name not in pins:
            continue
        have = pins[name]
        if req.url or not req.specifier.contains(have, prereleases=True):
            clashes.append(f"{source} asks for {req} but the kingpost runner needs {name}=={have}")
    if clashes:
        raise InvalidArgument("; ".join(clashes) + " (the runner serves the model from inside its environment; "
                              "these packages must stay at the platform's versions)")


def dependency_key(lock_text: str, python_version: str) -> str:
    """What the dependency layer is cached by: the lock and the Python it was locked for."""
    digest = hashlib.sha256(f"python {python_version}\n{lock_text}".encode()).hexdigest()
    return f"deps-{digest}"


@dataclass(frozen=True)
class LockedPackage:
    """One package of a `pylock.toml` as uv writes it for one platform and Python."""

    name: str
    version: str
    marker: str = ""
    wheel_url: str = ""  # "" = no wheel for this platform: build it from its sdist
    wheel_sha256: str = ""

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}" + (f" ; {self.marker}" if self.marker else "")

    @property
    def wheel_name(self) -> str:
        return self.wheel_url.rsplit("/", 1)[-1].split("#", 1)[0]


def target_tags(python_version: str) -> list[tags.Tag]:
    """The wheel tags a CPython `python_version` ("3.13") on this platform accepts, best first."""
    version = tuple(int(part) for part in python_version.split("."))
    return [*tags.cpython_tags(python_version=version), *tags.compatible_tags(python_version=version)]


def best_wheel(wheels: list[dict[str, Any]], ranks: Mapping[tags.Tag, int]) -> dict[str, Any]:
    """The wheel entry whose tags rank best for the target; {} when none fits."""
    best: tuple[int, dict[str, Any]] | None = None
    for wheel in wheels:
        name = str(wheel.get("url", "")).rsplit("/", 1)[-1].split("#", 1)[0]
        try:
            _, _, _, wheel_tags = parse_wheel_filename(name)
        except InvalidWheelFilename:
            continue
        rank = min((ranks[t] for t in wheel_tags if t in ranks), default=None)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, wheel)
    return best[1] if best else {}


def locked_packages(pylock_text: str, python_version: str) -> list[LockedPackage]:
    """The packages of a pylock.toml (PEP 751), each with the one wheel uv picked for the target."""
    try:
        data = tomllib.loads(pylock_text)
    except tomllib.TOMLDecodeError as e:
        raise InvalidArgument(f"the lock uv wrote cannot be read: {e}") from None
    out = []
    ranks = {tag: i for i, tag in enumerate(target_tags(python_version))}
    for entry in data.get("packages", []):
        source = next((key for key in ("directory", "vcs", "archive") if key in entry), None)
        if source is not None:
            raise InvalidArgument(f"requirements: {entry.get('name')} comes from a {source} (a local path, VCS or "
                                  "URL requirement); kingpost locks only packages from an index")
        wheel = best_wheel(entry.get("wheels") or [], ranks)
        out.append(LockedPackage(name=canonicalize_name(entry["name"]), version=str(entry.get("version", "")),
                                 marker=str(entry.get("marker", "")), wheel_url=str(wheel.get("url", "")),
                                 wheel_sha256=str(wheel.get("hashes", {}).get("sha256", ""))))
    return out


def lock_requirements(packages: Iterable[LockedPackage]) -> str:
    """The lock as a requirements file, for `uv pip sync --offline` on the node."""
    return "".join(f"{p.pin}\n" for p in sorted(packages, key=lambda p: p.name))


def input_key(texts: Iterable[str], python_version: str) -> str:
    """What a lock is cached by: the requirement inputs' text and the Python; "" when an input names
    other files (`-r`, `-c`, `-e`, local paths), whose content this key would not cover."""
    texts = list(texts)
    for text in texts:
        for line in requirement_lines(text):
            if line.startswith(("-r", "-c", "-e", "--requirement", "--constraint", "--editable", ".", "/", "file:")):
                return ""
    digest = hashlib.sha256(json.dumps([python_version, *texts]).encode()).hexdigest()
    return f"lock-{digest}"


def locked_names(lock_text: str) -> list[str]:
    """The `name==version` pins of a uv lock (requirements format), in order."""
    return [line.split(";", 1)[0].strip() for line in requirement_lines(lock_text) if "==" in line]


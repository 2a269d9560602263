"""A Truss's Python requirements, until isolated environments arrive.

The builder cannot install packages yet. `check_requirements` accepts a Truss whose every
requirement is already satisfied by the platform's own environment (with a warning), and fails
it otherwise with a message that says why. The next step replaces this one function with
"resolve and lock with uv"; the build pipeline calls nothing else here.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterable

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from kingpost.errors import InvalidArgument

VersionOf = Callable[[str], "str | None"]

NOT_YET = "installing dependencies arrives with isolated environments"


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


def check_requirements(
    lines: Iterable[str], *, version_of: VersionOf = installed_version, source: str = "requirements"
) -> list[str]:
    """Warnings when the platform already satisfies every requirement; InvalidArgument otherwise."""
    lines = list(lines)
    missing: list[str] = []
    for line in lines:
        if line.startswith("-"):
            raise InvalidArgument(f"{source}: the pip option {line!r} cannot be honoured: {NOT_YET}")
        try:
            req = Requirement(line)
        except InvalidRequirement as e:
            raise InvalidArgument(f"{source}: {line!r} is not a valid requirement: {e}") from None
        if req.marker is not None and not req.marker.evaluate():
            continue
        version = version_of(canonicalize_name(req.name))
        if req.url or version is None or not req.specifier.contains(version, prereleases=True):
            have = f" (the platform has {version})" if version else ""
            missing.append(f"{line}{have}")
    if missing:
        raise InvalidArgument(
            f"{source}: not installed in the platform: {', '.join(missing)}; {NOT_YET} "
            "(until then, a Truss may only require packages the platform already has)"
        )
    if not lines:
        return []
    return [f"{source}: not installed by kingpost yet; every one is already present in the platform"]

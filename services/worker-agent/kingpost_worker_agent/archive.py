"""Extracting an artifact archive without letting it write outside its directory.

`check_member` is the rule, on names alone: no absolute paths, no `..`, no link that points out of
the tree, no device files. `extract` applies it to every member before writing anything, then
extracts with the standard library's `data` filter as a second line of defence.
"""

from __future__ import annotations

import copy
import os
import posixpath
import tarfile
from pathlib import Path

from kingpost.errors import InvalidArgument


class UnsafeArchive(InvalidArgument):
    """An archive member would land outside the extraction directory, or is not a plain file/dir/link."""


def _inside(path: str) -> bool:
    """True when a normalised relative POSIX path stays inside its root."""
    norm = posixpath.normpath(path)
    return norm != ".." and not norm.startswith("../") and not posixpath.isabs(norm)


def check_member(member: tarfile.TarInfo) -> None:
    name = member.name
    if not name or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"archive member {name!r} has an absolute path")
    if ".." in name.replace("\\", "/").split("/"):
        raise UnsafeArchive(f"archive member {name!r} climbs out with '..'")
    if member.issym():
        target = member.linkname
        if posixpath.isabs(target):
            raise UnsafeArchive(f"symlink {name!r} points to the absolute path {target!r}")
        # A symlink's target is relative to the directory the link is in.
        if not _inside(posixpath.join(posixpath.dirname(name), target)):
            raise UnsafeArchive(f"symlink {name!r} points outside the archive ({target!r})")
    elif member.islnk():
        target = member.linkname
        # A hard link's target is relative to the archive root.
        if posixpath.isabs(target) or not _inside(target):
            raise UnsafeArchive(f"hard link {name!r} points outside the archive ({target!r})")
    elif not (member.isfile() or member.isdir()):
        raise UnsafeArchive(f"archive member {name!r} is a device, fifo or other special file")


# Extraction filters arrived in Python 3.11.4; before that, `_plain_data` does their essential part.
_HAS_FILTERS = hasattr(tarfile, "data_filter")
_FILTER_ERRORS: tuple[type[Exception], ...] = (tarfile.FilterError,) if _HAS_FILTERS else ()  # type: ignore[attr-defined]


def _plain_data(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """No setuid/setgid/sticky bits, no group/other write, owner-readable, owned by whoever extracts."""
    clean = copy.copy(member)
    clean.uid, clean.gid, clean.uname, clean.gname = os.getuid(), os.getgid(), "", ""
    if clean.isfile() or clean.isdir():
        clean.mode = (clean.mode & 0o755) | (0o700 if clean.isdir() else 0o600)
    return clean


def extract(archive: Path, dest: Path) -> None:
    """Extract `archive` (tar, optionally gzip/bz2/xz) into the existing directory `dest`."""
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            members = tar.getmembers()
            for member in members:
                check_member(member)
            if _HAS_FILTERS:
                tar.extractall(dest, members=members, filter="data")
            else:
                tar.extractall(dest, members=[_plain_data(m) for m in members], numeric_owner=True)
    except _FILTER_ERRORS as e:
        raise UnsafeArchive(f"unsafe archive member: {e}") from e
    except tarfile.TarError as e:
        raise InvalidArgument(f"artifact is not a readable tar archive: {e}") from e


def truss_root(extracted: Path) -> Path:
    """The directory holding config.yaml: the archive root, or its single top-level directory."""
    if (extracted / "config.yaml").is_file():
        return extracted
    for name in ("truss", "src"):
        if (extracted / name / "config.yaml").is_file():
            return extracted / name
    dirs = [p for p in extracted.iterdir() if p.is_dir()]
    if len(dirs) == 1 and (dirs[0] / "config.yaml").is_file():
        return dirs[0]
    return extracted

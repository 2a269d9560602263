"""A development replica's own copy of its Truss, and the patches `kingpost watch` sends into it.

The artifact cache is shared and content-addressed: nothing is ever written there. The first patch
makes `<work_dir>/dev/<replica_id>/` from the artifact's Truss, with hard links where the file
system allows (a model's weights are not copied), and every patched file is written beside its
target and renamed over it, which replaces a link instead of writing through it. Later patches
go into the same copy, so a replica keeps every edit made since it started.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from kingpost.errors import InvalidArgument

DEV_DIR = "dev"
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc")


def check_path(rel: str) -> str:
    """A patch path: relative, POSIX, staying inside the Truss."""
    norm = posixpath.normpath(rel)
    if not rel or rel.startswith(("/", "\\")) or norm in (".", "..") or norm.startswith("../") \
            or ".." in rel.replace("\\", "/").split("/"):
        raise InvalidArgument(f"patch path {rel!r} is not a relative path inside the Truss")
    return norm


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def private_copy(source: Path, dest: Path) -> Path:
    """`dest`, made from `source` if it does not exist yet."""
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    shutil.copytree(source, partial / "t", symlinks=True, ignore=SKIP, copy_function=_link_or_copy)
    os.replace(partial / "t", dest)
    partial.rmdir()
    return dest


def apply(root: Path, files: Mapping[str, bytes], deleted: Iterable[str]) -> None:
    """Write `files` and remove `deleted` under `root`; every path is checked before anything changes."""
    writes = {check_path(rel): data for rel, data in files.items()}
    removes = [check_path(rel) for rel in deleted]
    for rel, data in writes.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".patch-", dir=target.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    for rel in removes:
        target = root / rel
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)

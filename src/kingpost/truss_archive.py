"""The archive `kingpost push` uploads: a Truss directory as a gzipped tar.

Files matching `.truss_ignore` (gitignore syntax, as truss reads it) are left out, and so are the
usual clutter (`.git`, `__pycache__`, `.venv`, `*.pyc`, `.DS_Store`, tool caches) and symlinks that
point outside the directory, which the builder would refuse. Entries are sorted with times and
owners zeroed, so the same directory always gives the same bytes.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import tarfile
from pathlib import Path

import pathspec

log = logging.getLogger(__name__)

IGNORE_FILE = ".truss_ignore"
DEFAULT_IGNORES = (
    ".git/", "__pycache__/", ".venv/", "*.pyc", "*.pyo", ".DS_Store",
    ".mypy_cache/", ".pytest_cache/", ".ruff_cache/",
)


def ignore_spec(truss_dir: Path) -> pathspec.GitIgnoreSpec:
    lines = list(DEFAULT_IGNORES)
    ignore_file = truss_dir / IGNORE_FILE
    if ignore_file.is_file():
        lines += ignore_file.read_text(errors="replace").splitlines()
    return pathspec.GitIgnoreSpec.from_lines(lines)


def archive_members(truss_dir: Path) -> list[str]:
    """The relative posix paths that go into the archive, in order (directories included)."""
    root = truss_dir.resolve()
    spec = ignore_spec(root)
    out: list[str] = []

    def walk(rel: str) -> None:
        with os.scandir(root / rel if rel else root) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            name = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_symlink():
                if spec.match_file(name) or not _link_stays_inside(root, Path(entry.path)):
                    if not spec.match_file(name):
                        log.warning("leaving out %s: a symlink that points outside %s", name, root)
                    continue
                out.append(name)
            elif entry.is_dir():
                if spec.match_file(name + "/"):
                    continue
                out.append(name)
                walk(name)
            elif entry.is_file() and not spec.match_file(name):
                out.append(name)

    walk("")
    return out


def make_truss_archive(truss_dir: Path) -> bytes:
    """The gzipped tar of `truss_dir` that BuildService.UploadSource takes."""
    root = Path(truss_dir).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{truss_dir} is not a directory")
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in archive_members(root):
                path = root / name
                info = tarfile.TarInfo(name)
                info.mtime = 0
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if path.is_symlink():
                    info.type = tarfile.SYMTYPE
                    info.linkname = _relative_link(root, path)
                    info.mode = 0o777
                    tar.addfile(info)
                elif path.is_dir():
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
                else:
                    st = path.stat()
                    info.size = st.st_size
                    info.mode = 0o755 if st.st_mode & 0o111 else 0o644
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
    return buffer.getvalue()


def _link_stays_inside(root: Path, link: Path) -> bool:
    real = Path(os.path.realpath(link))
    return real == root or root in real.parents


def _relative_link(root: Path, link: Path) -> str:
    """The link's resolved target, relative to the link: the builder accepts it as written."""
    return os.path.relpath(os.path.realpath(link), link.parent)

"""The archive `kingpost push` uploads: a Truss directory as a gzipped tar.

Files matching `.truss_ignore` (gitignore syntax, as truss reads it) are left out, and so are the
usual clutter (`.git`, `__pycache__`, `.venv`, `*.pyc`, `.DS_Store`, tool caches) and symlinks that
point outside the directory, which the builder would refuse. Entries are sorted with times and
owners zeroed, so the same directory always gives the same bytes.

`external_package_dirs` outside the Truss (truss copies them into the image) travel inside the
archive as `.kingpost/external_packages/<i>/`, where the runner looks for the i-th one.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import tarfile
from pathlib import Path

import pathspec
import yaml

from kingpost.errors import InvalidArgument

log = logging.getLogger(__name__)

IGNORE_FILE = ".truss_ignore"
EXTERNAL_PACKAGES = ".kingpost/external_packages"
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


def archive_members(truss_dir: Path, spec: pathspec.GitIgnoreSpec | None = None) -> list[str]:
    """The relative posix paths that go into the archive, in order (directories included)."""
    root = truss_dir.resolve()
    spec = spec if spec is not None else ignore_spec(root)
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
    entries = [(name, root, root / name) for name in archive_members(root)]
    for i, external in enumerate(external_package_dirs(root)):
        prefix = f"{EXTERNAL_PACKAGES}/{i}"
        entries += [(f"{prefix}/{name}", external, external / name)
                    for name in archive_members(external, ignore_spec(Path("/nonexistent")))]
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, base, path in entries:
                root = base
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


def external_package_dirs(root: Path) -> list[Path]:
    """config.yaml's `external_package_dirs` that lie outside the Truss (inside ones are uploaded anyway)."""
    try:
        config = yaml.safe_load((root / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return []  # the builder reports a missing or broken config.yaml, naming it
    dirs = config.get("external_package_dirs") if isinstance(config, dict) else None
    out = []
    for entry in dirs or ():
        path = (root / str(entry)).resolve()
        if not path.is_dir():
            raise InvalidArgument(f"config.yaml: external_package_dirs: {entry!r} is not a directory "
                                  f"(resolved to {path})")
        out.append(path)
    return [p for p in out if not (p == root or root in p.parents)] if out else []


def _link_stays_inside(root: Path, link: Path) -> bool:
    real = Path(os.path.realpath(link))
    return real == root or root in real.parents


def _relative_link(root: Path, link: Path) -> str:
    """The link's resolved target, relative to the link: the builder accepts it as written."""
    return os.path.relpath(os.path.realpath(link), link.parent)

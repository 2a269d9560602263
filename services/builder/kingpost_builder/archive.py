"""Uploaded source archives: received within a size limit, extracted safely, repacked canonically.

    spool = UploadSpool(path, max_bytes)          # PayloadTooLarge past the limit
    files = extract(path, into)                   # InvalidArgument for anything unsafe
    digest = write_canonical(into, out)           # "sha256:<hex>" of out's bytes

Extraction refuses absolute paths, `..` components, devices and other special files, symlinks
and hardlinks that point outside the directory, and writes through symlinks. The canonical
archive is a gzipped tar with entries sorted by name, mtimes, uids and gids zeroed, modes reduced
to 0o755/0o644 and no name or time in the gzip header; so its sha256, the artifact's content
address, depends on the content only: the same Truss pushed twice gives the same digest.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import posixpath
import shutil
import stat
import tarfile
import zlib
from pathlib import Path
from typing import BinaryIO

from kingpost.errors import InvalidArgument, PayloadTooLarge

DEFAULT_MAX_UPLOAD_BYTES = 1 << 30
# A small archive may unpack to much more (a "zip bomb"): its unpacked size is capped too.
UNPACK_RATIO_LIMIT = 8
_COPY_CHUNK = 1 << 20


def human_bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.4g} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError("unreachable")


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the upload is larger than the limit of {human_bytes(limit)} ({limit} bytes, max_upload_bytes); "
        "leave large files out with .truss_ignore"
    )


class UploadSpool:
    """Writes an upload's chunks to `path`, refusing to grow past `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.size = 0
        self._file: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise too_large(self.max_bytes)
        self._file.write(chunk)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> UploadSpool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def extract(archive: Path, into: Path, *, max_unpacked_bytes: int | None = None) -> set[str]:
    """Extract a (gzipped) tar into the existing directory `into`; the non-directory paths, posix, relative.

    Every entry is checked before anything is written for it; InvalidArgument names the entry.
    """
    root = into.resolve()
    files: set[str] = set()
    unpacked = 0
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for member in tar:
                name = _member_name(member)
                if name is None:
                    continue
                target = root / name
                _make_parents(root, name)
                if member.isdir():
                    _check_not_link(target, name)
                    target.mkdir(exist_ok=True)
                    continue
                _remove_existing(target, name)
                if member.issym():
                    _check_link_target(name, member.linkname, kind="symlink")
                    os.symlink(member.linkname, target)
                elif member.islnk():
                    source = _check_link_target(name, member.linkname, kind="hardlink", relative_to_root=True)
                    if source not in files or not (root / source).is_file() or (root / source).is_symlink():
                        raise InvalidArgument(f"archive entry {name!r}: hardlink to {member.linkname!r}, "
                                              "which is not a file earlier in the archive")
                    unpacked += (root / source).stat().st_size
                    shutil.copyfile(root / source, target)
                    shutil.copymode(root / source, target)
                elif member.isreg():
                    unpacked += member.size
                    if max_unpacked_bytes is not None and unpacked > max_unpacked_bytes:
                        raise PayloadTooLarge(f"the archive unpacks to more than {human_bytes(max_unpacked_bytes)}")
                    source_file = tar.extractfile(member)
                    assert source_file is not None
                    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                                 0o755 if member.mode & 0o111 else 0o644)
                    with os.fdopen(fd, "wb") as out:
                        shutil.copyfileobj(source_file, out, _COPY_CHUNK)
                else:
                    raise InvalidArgument(f"archive entry {name!r} is a device, fifo or other special file; "
                                          "only files, directories and links are allowed")
                files.add(name)
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise InvalidArgument(f"the upload is not a readable gzipped tar archive: {e}") from None
    _check_links_resolve_inside(root)
    return files


def write_canonical(source: Path, out: BinaryIO, *, compresslevel: int = 6) -> str:
    """Write `source` as a canonical gzipped tar to `out`; its digest, "sha256:<hex>"."""
    hashing = _HashingWriter(out)
    with gzip.GzipFile(filename="", mode="wb", fileobj=hashing, compresslevel=compresslevel, mtime=0) as gz:  # type: ignore[arg-type]
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _add_tree(tar, source, "")
    return f"sha256:{hashing.digest.hexdigest()}"


def canonical_bytes(source: Path) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    digest = write_canonical(source, buffer)
    return buffer.getvalue(), digest


# --- details ------------------------------------------------------------------------------------


class _HashingWriter:
    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self._out.write(data)

    def flush(self) -> None:
        self._out.flush()


def _add_tree(tar: tarfile.TarFile, root: Path, prefix: str) -> None:
    with os.scandir(root / prefix if prefix else root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        name = f"{prefix}/{entry.name}" if prefix else entry.name
        info = tarfile.TarInfo(name)
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(entry.path)
            info.mode = 0o777
            tar.addfile(info)
        elif stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
            _add_tree(tar, root, name)
        elif stat.S_ISREG(st.st_mode):
            info.mode = 0o755 if st.st_mode & 0o111 else 0o644
            info.size = st.st_size
            with open(entry.path, "rb") as f:
                tar.addfile(info, f)


def _member_name(member: tarfile.TarInfo) -> str | None:
    """The entry's normalised relative name; None for the root itself."""
    raw = member.name
    if raw.startswith(("/", "\\")) or (len(raw) > 1 and raw[1] == ":"):
        raise InvalidArgument(f"archive entry {raw!r} has an absolute path")
    parts = [p for p in raw.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidArgument(f"archive entry {raw!r} has a '..' component")
    if any("\x00" in p for p in parts):
        raise InvalidArgument(f"archive entry {raw!r} has a NUL byte in its name")
    return "/".join(parts) or None


def _check_link_target(name: str, linkname: str, *, kind: str, relative_to_root: bool = False) -> str:
    """The link's target relative to the root; InvalidArgument when it points outside."""
    if linkname.startswith("/") or not linkname:
        raise InvalidArgument(f"archive entry {name!r}: {kind} to {linkname!r}, an absolute path outside the truss")
    base = "" if relative_to_root else posixpath.dirname(name)
    resolved = posixpath.normpath(posixpath.join(base, linkname))
    if resolved == ".." or resolved.startswith("../"):
        raise InvalidArgument(f"archive entry {name!r}: {kind} to {linkname!r} points outside the truss")
    return resolved


def _make_parents(root: Path, name: str) -> None:
    """Create `name`'s parent directories, refusing to go through a symlink or a file."""
    current = root
    for part in name.split("/")[:-1]:
        current = current / part
        if current.is_symlink():
            raise InvalidArgument(f"archive entry {name!r} would be written through the symlink "
                                  f"{current.relative_to(root).as_posix()!r}")
        if current.exists() and not current.is_dir():
            raise InvalidArgument(f"archive entry {name!r} is inside {current.relative_to(root).as_posix()!r}, "
                                  "which is a file")
        current.mkdir(exist_ok=True)


def _check_not_link(target: Path, name: str) -> None:
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise InvalidArgument(f"archive entry {name!r} is a directory and also a file or link")


def _remove_existing(target: Path, name: str) -> None:
    """A later entry with the same name replaces the earlier one, as tar does (never a directory)."""
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        raise InvalidArgument(f"archive entry {name!r} is a file and also a directory")


def _check_links_resolve_inside(root: Path) -> None:
    """Each link checked alone can still escape through another link (a -> .., b -> a/..)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in dirnames + filenames:
            path = Path(dirpath) / entry
            if path.is_symlink():
                real = Path(os.path.realpath(path))
                if real != root and root not in real.parents:
                    name = path.relative_to(root).as_posix()
                    raise InvalidArgument(f"archive entry {name!r}: symlink to {os.readlink(path)!r} "
                                          "points outside the truss")

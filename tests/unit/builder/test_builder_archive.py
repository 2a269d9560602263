"""Uploaded archives: unsafe entries refused, sizes capped, and a digest that depends on content only."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from kingpost.errors import InvalidArgument, PayloadTooLarge
from kingpost_builder.archive import UploadSpool, canonical_bytes, extract, too_large

Entry = tuple  # (name, kind, payload) with kind in file|dir|sym|hard|fifo|chr


def make_tar(entries: list[Entry], *, mtime: int = 1_700_000_000, uid: int = 1000, gz: bool = True) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.uname = mtime, uid, "someone"
            if kind == "file":
                info.size = len(payload)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(payload))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                         "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}[kind]
            if kind in ("sym", "hard"):
                info.linkname = payload
            tar.addfile(info)
    data = raw.getvalue()
    return gzip.compress(data, mtime=mtime) if gz else data


def extract_bytes(tmp_path: Path, data: bytes, **kwargs) -> set[str]:
    archive = tmp_path / "upload.tar.gz"
    archive.write_bytes(data)
    dest = tmp_path / "out"
    dest.mkdir()
    return extract(archive, dest, **kwargs)


TRUSS = [("config.yaml", "file", b"model_name: m\n"), ("model", "dir", None),
         ("model/model.py", "file", b"class Model:\n    pass\n")]


def test_extracts_files_and_returns_their_paths(tmp_path: Path) -> None:
    files = extract_bytes(tmp_path, make_tar(TRUSS))
    assert files == {"config.yaml", "model/model.py"}
    assert (tmp_path / "out/model/model.py").read_bytes() == b"class Model:\n    pass\n"


def test_leading_dot_slash_is_normalised(tmp_path: Path) -> None:
    files = extract_bytes(tmp_path, make_tar([("./", "dir", None), ("./config.yaml", "file", b"x")]))
    assert files == {"config.yaml"}


def test_plain_uncompressed_tar_is_accepted(tmp_path: Path) -> None:
    assert extract_bytes(tmp_path, make_tar(TRUSS, gz=False)) == {"config.yaml", "model/model.py"}


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        ([("/etc/passwd", "file", b"x")], "absolute path"),
        ([("../escape.py", "file", b"x")], "'..' component"),
        ([("model/../../escape.py", "file", b"x")], "'..' component"),
        ([("link", "sym", "/etc/passwd")], "absolute path outside the truss"),
        ([("model", "dir", None), ("model/link", "sym", "../../outside")], "points outside the truss"),
        ([("hard", "hard", "../outside")], "points outside the truss"),
        ([("hard", "hard", "not-there")], "not a file earlier in the archive"),
        ([("pipe", "fifo", None)], "special file"),
        ([("dev", "chr", None)], "special file"),
        # each link alone stays inside; together they climb out
        ([("d", "dir", None), ("d/up", "sym", ".."), ("esc", "sym", "d/up/..")], "points outside"),
        # a link to a directory outside, then a file written through it
        ([("sub", "sym", "."), ("sub/x", "file", b"x")], "through the symlink 'sub'"),
    ],
)
def test_unsafe_entries_are_refused(tmp_path: Path, entries: list[Entry], reason: str) -> None:
    with pytest.raises(InvalidArgument, match=reason):
        extract_bytes(tmp_path, make_tar(entries))
    assert not (tmp_path / "escape.py").exists() and not (tmp_path / "outside").exists()


def test_links_inside_the_truss_are_kept(tmp_path: Path) -> None:
    files = extract_bytes(tmp_path, make_tar(TRUSS + [
        ("model/alias.py", "sym", "model.py"), ("copy.py", "hard", "model/model.py")]))
    assert {"model/alias.py", "copy.py"} <= files
    assert os.readlink(tmp_path / "out/model/alias.py") == "model.py"
    assert (tmp_path / "out/copy.py").read_bytes() == (tmp_path / "out/model/model.py").read_bytes()


@pytest.mark.parametrize("data", [b"this is not a tarball at all" * 20, make_tar(TRUSS)[:40]],
                         ids=["garbage", "truncated"])
def test_not_an_archive(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(InvalidArgument, match="not a readable gzipped tar"):
        extract_bytes(tmp_path, data)


def test_unpacked_size_is_capped(tmp_path: Path) -> None:
    bomb = make_tar([("zeros", "file", b"\0" * 100_000)])
    assert len(bomb) < 1000
    with pytest.raises(PayloadTooLarge, match="unpacks to more than"):
        extract_bytes(tmp_path, bomb, max_unpacked_bytes=50_000)


def test_spool_refuses_past_the_limit_naming_it(tmp_path: Path) -> None:
    with UploadSpool(tmp_path / "up", max_bytes=10) as spool:
        spool.write(b"12345")
        spool.write(b"67890")
        with pytest.raises(PayloadTooLarge, match=r"limit of 10 bytes \(10 bytes, max_upload_bytes\)"):
            spool.write(b"x")
    assert too_large(1 << 30).message.startswith("the upload is larger than the limit of 1 GiB")
    assert too_large(1 << 30).http_status == 413


def test_digest_depends_on_content_only(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    extract(_write(tmp_path / "a.tgz", make_tar(TRUSS, mtime=1, uid=0)), a)
    # same content, other times and owners, other entry order, no explicit directory entry
    extract(_write(tmp_path / "b.tgz", make_tar(list(reversed(TRUSS[1:] + TRUSS[:1]))[:-1] + [TRUSS[0]],
                                                mtime=2_000_000_000, uid=501)), b)
    os.utime(b / "config.yaml", (5, 5))
    data_a, digest_a = canonical_bytes(a)
    data_b, digest_b = canonical_bytes(b)
    assert digest_a == digest_b and data_a == data_b
    assert digest_a.startswith("sha256:") and len(digest_a) == 71

    (b / "config.yaml").write_bytes(b"model_name: other\n")
    assert canonical_bytes(b)[1] != digest_a


def test_canonical_archive_is_sorted_with_zeroed_metadata(tmp_path: Path) -> None:
    extract_bytes(tmp_path, make_tar(TRUSS + [("run.sh", "file", b"#!/bin/sh\n"),
                                              ("model/alias.py", "sym", "model.py")]))
    os.chmod(tmp_path / "out/run.sh", 0o700)
    data, _ = canonical_bytes(tmp_path / "out")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["config.yaml", "model", "model/alias.py", "model/model.py", "run.sh"]
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.uname == "" for m in members)
    modes = {m.name: m.mode for m in members if not m.issym()}
    assert modes == {"config.yaml": 0o644, "model": 0o755, "model/model.py": 0o644, "run.sh": 0o755}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path

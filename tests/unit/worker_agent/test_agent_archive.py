import io
import tarfile
from pathlib import Path

import pytest

from kingpost.errors import InvalidArgument
from kingpost_worker_agent.archive import UnsafeArchive, check_member, extract, truss_root


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def _link(name: str, target: str, *, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


@pytest.mark.parametrize("info, why", [
    (_file("/etc/passwd"), "absolute"),
    (_file("../outside.txt"), r"'\.\.'"),
    (_file("model/../../outside.txt"), r"'\.\.'"),
    (_link("model/evil", "/etc/passwd"), "absolute"),
    (_link("model/evil", "../../etc/passwd"), "outside"),
    (_link("evil", "model/../.."), "outside"),
    (_link("model/evil", "../../../x", hard=True), "outside"),
])
def test_members_that_would_escape_are_refused(info: tarfile.TarInfo, why: str) -> None:
    with pytest.raises(UnsafeArchive, match=why):
        check_member(info)


def test_device_files_are_refused() -> None:
    info = tarfile.TarInfo("dev")
    info.type = tarfile.CHRTYPE
    with pytest.raises(UnsafeArchive, match="special"):
        check_member(info)


def test_links_inside_the_tree_are_fine() -> None:
    check_member(_link("model/data", "../data"))
    check_member(_link("a/b", "c", hard=True))


def test_unsafe_archive_extracts_nothing(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "a.tar.gz", [(_file("config.yaml"), b"model_name: x\n"),
                                          (_file("../escape.txt"), b"gotcha")])
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafeArchive):
        extract(archive, dest)
    assert list(dest.iterdir()) == []
    assert not (tmp_path / "escape.txt").exists()


def test_a_truss_extracts_and_its_root_is_found(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "a.tar.gz", [(_file("my-truss/config.yaml"), b"model_name: x\n"),
                                          (_file("my-truss/model/model.py"), b"class Model: pass\n")])
    dest = tmp_path / "dest"
    dest.mkdir()
    extract(archive, dest)
    assert (dest / "my-truss" / "model" / "model.py").read_bytes() == b"class Model: pass\n"
    assert truss_root(dest) == dest / "my-truss"


def test_not_a_tar_is_invalid_argument(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"not a tar at all")
    with pytest.raises(InvalidArgument, match="artifact is not a readable tar archive"):
        extract(bad, tmp_path)


def test_without_stdlib_filters_modes_and_owners_are_made_plain() -> None:
    """Python < 3.11.4 has no extraction filters; `_plain_data` stands in for the `data` filter."""
    import os

    from kingpost_worker_agent.archive import _plain_data

    info = _file("model/run.sh")
    info.mode, info.uid, info.uname = 0o6777, 4242, "mallory"
    clean = _plain_data(info)
    assert clean.mode == 0o755 and (clean.uid, clean.uname) == (os.getuid(), "")
    assert info.mode == 0o6777  # the archive's own member is left alone
    locked = _file("data/secret")
    locked.mode = 0o000
    assert _plain_data(locked).mode == 0o600

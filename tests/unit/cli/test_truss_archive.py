"""The archive `kingpost push` uploads: .truss_ignore honoured, clutter and escaping links left out."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from kingpost.errors import InvalidArgument
from kingpost.truss_archive import make_truss_archive


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def make_truss(root: Path) -> Path:
    (root / "model").mkdir(parents=True)
    (root / "config.yaml").write_text("model_name: m\n")
    (root / "model/model.py").write_text("class Model: ...\n")
    return root


def test_includes_the_truss(tmp_path: Path) -> None:
    truss = make_truss(tmp_path / "t")
    data = make_truss_archive(truss)
    got = members(data)
    assert set(got) == {"config.yaml", "model", "model/model.py"}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        assert tar.extractfile("model/model.py").read() == b"class Model: ...\n"  # type: ignore[union-attr]


def test_default_clutter_is_left_out(tmp_path: Path) -> None:
    truss = make_truss(tmp_path / "t")
    for path in (".git/HEAD", "__pycache__/m.cpython-311.pyc", "model/__pycache__/x.pyc", ".venv/bin/python",
                 "model/old.pyc", ".DS_Store", "model/.DS_Store"):
        (truss / path).parent.mkdir(parents=True, exist_ok=True)
        (truss / path).write_text("x")
    assert set(members(make_truss_archive(truss))) == {"config.yaml", "model", "model/model.py"}


def test_truss_ignore_is_honoured_with_gitignore_syntax(tmp_path: Path) -> None:
    truss = make_truss(tmp_path / "t")
    (truss / ".truss_ignore").write_text("# weights stay local\nweights/\n*.bin\n!keep.bin\n/notes.txt\n")
    for path in ("weights/big.safetensors", "model/cache.bin", "keep.bin", "notes.txt", "model/notes.txt"):
        (truss / path).parent.mkdir(parents=True, exist_ok=True)
        (truss / path).write_text("x")
    assert set(members(make_truss_archive(truss))) == {
        ".truss_ignore", "config.yaml", "model", "model/model.py", "keep.bin", "model/notes.txt"}


def test_links_that_escape_are_left_out_and_inside_links_kept(tmp_path: Path) -> None:
    truss = make_truss(tmp_path / "t")
    (tmp_path / "secret.txt").write_text("do not upload")
    os.symlink(tmp_path / "secret.txt", truss / "abs-escape")
    os.symlink("../../secret.txt", truss / "model/rel-escape")
    os.symlink(truss / "model/model.py", truss / "abs-inside.py")
    os.symlink("model.py", truss / "model/alias.py")
    got = members(make_truss_archive(truss))
    assert "abs-escape" not in got and "model/rel-escape" not in got
    assert got["abs-inside.py"].issym() and got["abs-inside.py"].linkname == "model/model.py"
    assert got["model/alias.py"].linkname == "model.py"


def test_same_directory_gives_the_same_bytes(tmp_path: Path) -> None:
    truss = make_truss(tmp_path / "t")
    first = make_truss_archive(truss)
    os.utime(truss / "config.yaml", (1, 1))
    assert make_truss_archive(truss) == first


def test_external_package_dirs_outside_the_truss_travel_in_the_archive(tmp_path: Path) -> None:
    import io
    import tarfile

    (tmp_path / "libs" / "helper").mkdir(parents=True)
    (tmp_path / "libs" / "helper" / "__init__.py").write_text("X = 1\n")
    truss = tmp_path / "truss"
    (truss / "model").mkdir(parents=True)
    (truss / "model" / "model.py").write_text("class Model: pass\n")
    (truss / "config.yaml").write_text("external_package_dirs: [../libs]\n")
    with tarfile.open(fileobj=io.BytesIO(make_truss_archive(truss))) as tar:
        names = tar.getnames()
        assert ".kingpost/external_packages/0/helper/__init__.py" in names
        member = tar.extractfile(".kingpost/external_packages/0/helper/__init__.py")
        assert member is not None and member.read() == b"X = 1\n"


def test_a_missing_external_package_dir_is_named(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.py").write_text("class Model: pass\n")
    (tmp_path / "config.yaml").write_text("external_package_dirs: [../nowhere]\n")
    with pytest.raises(InvalidArgument, match="'../nowhere' is not a directory"):
        make_truss_archive(tmp_path)

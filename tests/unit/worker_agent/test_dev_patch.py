"""A development replica's private copy of its Truss: patches never reach the shared artifact."""

from __future__ import annotations

from pathlib import Path

import pytest

from kingpost.errors import InvalidArgument
from kingpost_worker_agent import dev_patch


def make_artifact(root: Path) -> Path:
    (root / "model").mkdir(parents=True)
    (root / "config.yaml").write_text("model_name: m\n")
    (root / "model" / "model.py").write_text("VERSION = 1\n")
    (root / "model" / "__pycache__").mkdir()
    (root / "model" / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"stale")
    (root / "data").mkdir()
    (root / "data" / "weights.bin").write_bytes(b"w" * 1000)
    return root


def test_patch_writes_the_copy_and_leaves_the_artifact_alone(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path / "artifact")
    copy = dev_patch.private_copy(artifact, tmp_path / "dev" / "rep_1")
    dev_patch.apply(copy, {"model/model.py": b"VERSION = 2\n", "model/extra.py": b"X = 1\n"},
                    ["data/weights.bin"])

    assert (copy / "model" / "model.py").read_text() == "VERSION = 2\n"
    assert (copy / "model" / "extra.py").read_text() == "X = 1\n"
    assert not (copy / "data" / "weights.bin").exists()
    assert not (copy / "model" / "__pycache__").exists()  # compiled code of the old sources is not carried
    # The artifact, hard-linked or not, is as it was.
    assert (artifact / "model" / "model.py").read_text() == "VERSION = 1\n"
    assert (artifact / "data" / "weights.bin").read_bytes() == b"w" * 1000
    assert not (artifact / "model" / "extra.py").exists()


def test_later_patches_build_on_the_same_copy(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path / "artifact")
    copy = dev_patch.private_copy(artifact, tmp_path / "dev" / "rep_1")
    dev_patch.apply(copy, {"model/extra.py": b"X = 1\n"}, [])
    again = dev_patch.private_copy(artifact, tmp_path / "dev" / "rep_1")
    dev_patch.apply(again, {"model/model.py": b"VERSION = 3\n"}, [])
    assert (again / "model" / "extra.py").read_text() == "X = 1\n"
    assert (again / "model" / "model.py").read_text() == "VERSION = 3\n"


@pytest.mark.parametrize("path", ["../escape.py", "/etc/passwd", "model/../../x", ""])
def test_paths_outside_the_truss_are_refused_before_anything_is_written(tmp_path: Path, path: str) -> None:
    copy = dev_patch.private_copy(make_artifact(tmp_path / "artifact"), tmp_path / "dev" / "r")
    with pytest.raises(InvalidArgument):
        dev_patch.apply(copy, {"model/model.py": b"VERSION = 9\n", path: b"x"}, [])
    assert (copy / "model" / "model.py").read_text() == "VERSION = 1\n"

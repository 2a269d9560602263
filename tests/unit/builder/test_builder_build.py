"""The build steps end to end on a file store: what a push of each kind of Truss turns into."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from kingpost.errors import InvalidArgument
from kingpost_builder.build import STEPS, BuildWork, intake
from kingpost_builder.store import FileArtifactStore
from tests.fixtures.archives import tar_of

MODEL = b"class Model:\n    def predict(self, x):\n        return x\n"


def run_build(tmp_path: Path, files: dict[str, bytes], *,
              allow_build_commands: bool = False) -> tuple[BuildWork, FileArtifactStore]:
    store = FileArtifactStore(tmp_path / "artifacts")
    work_dir = store.scratch_dir()
    upload = work_dir / "upload.tar.gz"
    upload.write_bytes(tar_of(files))
    work = BuildWork(build_id="bld_test", work_dir=work_dir, upload=upload, max_unpacked_bytes=1 << 20,
                     allow_build_commands=allow_build_commands)
    for step in (intake, *STEPS):
        step(work, store)
    return work, store


def test_valid_truss_is_packaged_and_stored(tmp_path: Path) -> None:
    work, store = run_build(tmp_path, {"config.yaml": b"model_name: echo\n", "model/model.py": MODEL})
    assert work.digest.startswith("sha256:") and store.exists(work.digest)
    assert work.cached is False and work.warnings == []
    with tarfile.open(fileobj=io.BytesIO(store.get(work.digest)), mode="r:gz") as tar:
        assert tar.extractfile("model/model.py").read() == MODEL  # type: ignore[union-attr]
    texts = [e.text for e in work.log]
    assert any("config.yaml is valid: model echo" in t for t in texts)
    assert any(work.digest in t and "stored" in t for t in texts)


def test_same_content_is_cached(tmp_path: Path) -> None:
    files = {"config.yaml": b"model_name: echo\n", "model/model.py": MODEL}
    first, _ = run_build(tmp_path, files)
    second, _ = run_build(tmp_path, dict(reversed(list(files.items()))))
    assert second.digest == first.digest and second.cached is True


def test_warnings_reach_the_build(tmp_path: Path) -> None:
    work, _ = run_build(tmp_path, {"config.yaml": b"base_image: {image: x}\nflavour: mint\n",
                                   "model/model.py": MODEL})
    assert work.warnings == ["flavour: unknown key, ignored",
                             "base_image: 'x' is not used: kingpost runs no Docker image, and its tag names no "
                             "Python version; the deployment uses python_version and its requirements"]
    assert [e.level for e in work.log].count("WARNING") == 2


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"config.yml": b"", "model/model.py": MODEL}, "rename it to config.yaml"),
        ({"config.yaml": b""}, "no model/model.py"),
        ({"config.yaml": b"runtime:\n  predict_concurrency: 0\n", "model/model.py": MODEL},
         "runtime.predict_concurrency: 0 is not valid: must be ≥ 1"),
        # A pin that clashes with the runner's own packages fails before anything is resolved, naming both sides.
        ({"config.yaml": b"requirements: [six, protobuf==3.20.0]\n", "model/model.py": MODEL},
         "requirements asks for protobuf==3.20.0 but the kingpost runner needs protobuf=="),
        ({"config.yaml": b"requirements_file: requirements.txt\n", "model/model.py": MODEL,
          "requirements.txt": b"grpcio<1.0  # old\n"}, "requirements_file requirements.txt asks for grpcio<1.0"),
        ({"config.yaml": b"requirements: ['numpy>>1']\n", "model/model.py": MODEL},
         "requirements: 'numpy>>1' is not a valid requirement"),
        ({"config.yaml": b"build_commands: ['touch x']\n", "model/model.py": MODEL},
         "build_commands: this builder does not run them (its setting allow_build_commands is false)"),
        ({"config.yaml": b"system_packages: [ffmpeg]\nbuild_commands: [x]\n", "model/model.py": MODEL},
         "system_packages and build_commands: this builder does not run them"),
        ({"config.yaml": b"system_packages: [hello]\n", "model/model.py": MODEL},
         "system_packages: this builder does not run them (its setting allow_build_commands is false)"),
    ],
)
def test_bad_truss_fails_with_the_reason(tmp_path: Path, files: dict[str, bytes], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_build(tmp_path, files)


def test_build_commands_run_where_allowed_and_change_the_code_layer(tmp_path: Path) -> None:
    files = {"config.yaml": b"build_commands: ['echo built > data/made.txt', 'echo hello']\n",
             "model/model.py": MODEL, "data/keep": b""}
    work, store = run_build(tmp_path, files, allow_build_commands=True)
    with tarfile.open(fileobj=io.BytesIO(store.get(work.digest)), mode="r:gz") as tar:
        assert tar.extractfile("data/made.txt").read() == b"built\n"  # type: ignore[union-attr]
    assert "hello" in [e.text for e in work.log]
    with pytest.raises(InvalidArgument, match="build_commands: 'false' exited with code 1"):
        run_build(tmp_path, {**files, "config.yaml": b"build_commands: ['false']\n"}, allow_build_commands=True)


def test_a_bad_system_package_name_fails_where_allowed_before_any_build_command_runs(tmp_path: Path) -> None:
    files = {"config.yaml": b"system_packages: ['-o=Dir=/x']\nbuild_commands: ['touch ran']\n",
             "model/model.py": MODEL}
    with pytest.raises(InvalidArgument, match="system_packages: '-o=Dir=/x' is not a Debian package name"):
        run_build(tmp_path, files, allow_build_commands=True)
    assert not list(tmp_path.rglob("ran"))


def test_no_requirements_no_dependency_layer_and_a_forged_manifest_is_dropped(tmp_path: Path) -> None:
    work, store = run_build(tmp_path, {"config.yaml": b"model_name: echo\n", "model/model.py": MODEL,
                                       ".kingpost/environment.json": b'{"dependencies": "sha256:00"}'})
    assert work.dependencies == ""
    with tarfile.open(fileobj=io.BytesIO(store.get(work.digest)), mode="r:gz") as tar:
        assert ".kingpost/environment.json" not in tar.getnames()

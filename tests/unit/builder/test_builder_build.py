"""The build steps end to end on a file store: what a push of each kind of Truss turns into."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from kingpost.errors import InvalidArgument
from kingpost_builder.build import STEPS, BuildWork, intake
from kingpost_builder.store import FileArtifactStore

MODEL = b"class Model:\n    def predict(self, x):\n        return x\n"


def tar_of(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def run_build(tmp_path: Path, files: dict[str, bytes]) -> tuple[BuildWork, FileArtifactStore]:
    store = FileArtifactStore(tmp_path / "artifacts")
    work_dir = store.scratch_dir()
    upload = work_dir / "upload.tar.gz"
    upload.write_bytes(tar_of(files))
    work = BuildWork(build_id="bld_test", work_dir=work_dir, upload=upload, max_unpacked_bytes=1 << 20)
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
    work, _ = run_build(tmp_path, {"config.yaml": b"system_packages: [ffmpeg]\nflavour: mint\n",
                                   "model/model.py": MODEL})
    assert work.warnings == ["system_packages: accepted but not acted on by kingpost yet",
                             "flavour: unknown key, ignored"]
    assert [e.level for e in work.log].count("WARNING") == 2


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"config.yml": b"", "model/model.py": MODEL}, "rename it to config.yaml"),
        ({"config.yaml": b""}, "no model/model.py"),
        ({"config.yaml": b"runtime:\n  predict_concurrency: 0\n", "model/model.py": MODEL},
         "runtime.predict_concurrency: 0 is not valid: must be ≥ 1"),
        ({"config.yaml": b"requirements: [surely-not-installed-pkg==1.0]\n", "model/model.py": MODEL},
         "surely-not-installed-pkg==1.0"),
        ({"config.yaml": b"requirements_file: requirements.txt\n", "model/model.py": MODEL,
          "requirements.txt": b"surely-not-installed-pkg\n"}, "isolated environments"),
        ({"config.yaml": b"requirements_file: pyproject.toml\n", "model/model.py": MODEL,
          "pyproject.toml": b""}, "pyproject.toml and uv.lock files cannot be honoured"),
    ],
)
def test_bad_truss_fails_with_the_reason(tmp_path: Path, files: dict[str, bytes], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_build(tmp_path, files)


def test_requirements_already_in_the_platform_are_accepted_with_a_warning(tmp_path: Path) -> None:
    work, store = run_build(tmp_path, {"config.yaml": b"requirements: ['pydantic>=2', 'PyYAML']\n",
                                       "model/model.py": MODEL})
    assert store.exists(work.digest)
    assert any("not installed by kingpost yet" in w for w in work.warnings)

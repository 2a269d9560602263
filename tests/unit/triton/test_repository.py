"""A Triton model repository: recognised by its layout; what Triton would refuse is named before it ships."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kingpost import triton_repository
from kingpost.triton_repository import RepositoryError

ADD_SUB = Path(__file__).parents[2] / "trusses" / "triton_add_sub"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(ADD_SUB, tmp_path / "repo")
    return tmp_path / "repo"


def config_of(repo: Path) -> Path:
    return repo / "add_sub" / "config.pbtxt"


def test_layout_tells_a_triton_repository_from_a_truss() -> None:
    assert triton_repository.is_repository(["config.yaml", "add_sub/config.pbtxt", "add_sub/1/model.py"])
    assert not triton_repository.is_repository(["config.yaml", "model/model.py", "model/__init__.py"])
    assert not triton_repository.is_repository(["config.pbtxt"])  # a lone file is no model folder


def test_the_example_parses_with_its_inputs_outputs_and_batching(repo: Path) -> None:
    parsed = triton_repository.parse(repo)
    model = parsed.model(None)
    assert (model.name, model.backend, model.max_batch_size, model.versions) == ("add_sub", "python", 64, (1,))
    assert [(t.name, t.datatype, t.dims) for t in model.inputs] == [("INPUT0", "FP32", (4,)),
                                                                   ("INPUT1", "FP32", (4,))]
    assert model.dynamic_batching == "max_queue_delay_microseconds: 1000"
    assert "dynamic_batching {max_queue_delay_microseconds: 1000}" in parsed.summary()


def test_a_config_that_does_not_parse_names_file_line_and_column(repo: Path) -> None:
    config_of(repo).write_text('name: "add_sub"\nbackend: "python"\ninput [ { nme: "X" } ]\n')
    with pytest.raises(RepositoryError, match=r"add_sub/config.pbtxt does not parse: 3:\d+ .*nme"):
        triton_repository.parse(repo)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace('backend: "python"\n', ""), r"add_sub/config.pbtxt: backend: missing"),
    (lambda t: t.replace('{ name: "INPUT1" data_type: TYPE_FP32 dims: [ 4 ] }',
                         '{ name: "INPUT1" dims: [ 4 ] }'), r"input\[1\] \(INPUT1\): data_type: missing"),
    (lambda t: t.replace('name: "add_sub"', 'name: "other"'), r"name: 'other' differs from its folder"),
])
def test_a_missing_field_is_named(repo: Path, edit, message: str) -> None:
    config_of(repo).write_text(edit(config_of(repo).read_text()))
    with pytest.raises(RepositoryError, match=message):
        triton_repository.parse(repo)


def test_no_version_folder_is_named(repo: Path) -> None:
    shutil.rmtree(repo / "add_sub" / "1")
    with pytest.raises(RepositoryError, match=r"add_sub/: no version folder"):
        triton_repository.parse(repo)


def test_a_python_model_without_model_py_is_named(repo: Path) -> None:
    (repo / "add_sub" / "1" / "model.py").unlink()
    with pytest.raises(RepositoryError, match=r"add_sub/1/model.py: missing"):
        triton_repository.parse(repo)


def test_a_request_picks_its_model_by_name_or_the_only_one(repo: Path) -> None:
    parsed = triton_repository.parse(repo)
    assert parsed.model("add_sub").name == "add_sub"
    with pytest.raises(RepositoryError, match="no model 'mul' in this repository; it serves add_sub"):
        parsed.model("mul")


def test_a_backend_the_platforms_tritonserver_lacks_is_named(repo: Path) -> None:
    parsed = triton_repository.parse(repo)
    parsed.check_backends({"python"})
    with pytest.raises(RepositoryError, match=r"add_sub/config.pbtxt: backend: 'python' needs the 'python' "
                                              r"backend, which this platform's tritonserver lacks \(it has: onnxruntime\)"):
        parsed.check_backends({"onnxruntime"})
    config_of(repo).write_text(config_of(repo).read_text().replace('backend: "python"', 'platform: "onnxruntime_onnx"'))
    (repo / "add_sub" / "1" / "model.py").rename(repo / "add_sub" / "1" / "model.onnx")
    with pytest.raises(RepositoryError, match=r"platform: 'onnxruntime_onnx' needs the 'onnxruntime' backend"):
        triton_repository.parse(repo).check_backends({"python"})

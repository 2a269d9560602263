"""Which edits `kingpost watch` sends as a live reload and which need a push (a rebuild)."""

from __future__ import annotations

from pathlib import Path

from kingpost.watch import Action, classify, diff, snapshot

CONFIG = {"model_name": "m", "requirements": ["numpy==2.0"], "python_version": "py311",
          "model_metadata": {"example_model_input": {}}}


def test_model_code_and_data_are_a_reload() -> None:
    decision = classify({"model/model.py", "packages/helper.py", "data/table.csv"}, {"model/old.py"},
                        CONFIG, CONFIG)
    assert decision.action is Action.RELOAD


def test_nothing_changed_is_nothing() -> None:
    assert classify(set(), set(), CONFIG, CONFIG).action is Action.NONE


def test_requirements_and_python_version_in_config_are_a_push() -> None:
    for key, value in (("requirements", ["numpy==2.1"]), ("python_version", "py312"),
                       ("system_packages", ["ffmpeg"]), ("environment_variables", {"A": "1"}),
                       ("runtime", {"predict_concurrency": 4})):
        decision = classify({"config.yaml"}, set(), CONFIG, {**CONFIG, key: value})
        assert decision.action is Action.PUSH, key
        assert key in decision.reason


def test_config_keys_the_runner_rereads_are_a_reload() -> None:
    new = {**CONFIG, "model_metadata": {"example_model_input": {"x": 1}}, "description": "now documented"}
    assert classify({"config.yaml"}, set(), CONFIG, new).action is Action.RELOAD


def test_the_requirements_file_is_a_push_even_with_other_edits() -> None:
    config = {**CONFIG, "requirements_file": "./requirements.txt"}
    decision = classify({"model/model.py", "requirements.txt"}, set(), config, config)
    assert decision.action is Action.PUSH and "requirements.txt" in decision.reason
    # A file merely named requirements.txt that config.yaml does not use is model code.
    assert classify({"requirements.txt"}, set(), CONFIG, CONFIG).action is Action.RELOAD


def test_broken_config_and_truss_ignore_are_a_push() -> None:
    assert classify({"config.yaml"}, set(), CONFIG, None).action is Action.PUSH
    assert classify(set(), {"config.yaml"}, CONFIG, None).action is Action.PUSH
    assert classify({".truss_ignore"}, set(), CONFIG, CONFIG).action is Action.PUSH


def test_snapshot_honours_truss_ignore_and_diff_finds_edits(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "config.yaml").write_text("model_name: m\n")
    (tmp_path / "model" / "model.py").write_text("class Model: ...\n")
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "big.bin").write_bytes(b"0")
    (tmp_path / ".truss_ignore").write_text("weights/\n")
    (tmp_path / "model" / "__pycache__").mkdir()
    (tmp_path / "model" / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"")
    before = snapshot(tmp_path)
    assert set(before) == {"config.yaml", "model/model.py", ".truss_ignore"}

    (tmp_path / "model" / "model.py").write_text("class Model:\n    pass\n")
    (tmp_path / "weights" / "big.bin").write_bytes(b"01")
    (tmp_path / "config.yaml").unlink()
    (tmp_path / "model" / "new.py").write_text("")
    changed, deleted = diff(before, snapshot(tmp_path))
    assert changed == {"model/model.py", "model/new.py"} and deleted == {"config.yaml"}

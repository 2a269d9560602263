"""config.yaml as the runner reads it."""

from __future__ import annotations

import pathlib

import pytest

from kingpost_runner.truss_config import TrussConfigError, load_config, parse_config


def test_defaults_are_truss_defaults() -> None:
    config = parse_config({"model_name": "m"})
    assert config.model_module_dir == "model" and config.model_class_filename == "model.py"
    assert config.model_class_name == "Model"
    assert config.predict_concurrency == 1 and config.streaming_read_timeout_s == 60.0
    assert config.raw == {"model_name": "m"}


def test_runtime_env_and_secrets() -> None:
    config = parse_config({
        "runtime": {"predict_concurrency": 4, "streaming_read_timeout": 5},
        "environment_variables": {"A": True, "B": 3, "C": "x"},
        "secrets": {"hf": None, "k": "dflt"},
        "external_package_dirs": ["../shared"],
    })
    assert config.predict_concurrency == 4 and config.streaming_read_timeout_s == 5.0
    assert config.environment_variables == {"A": "true", "B": "3", "C": "x"}
    assert config.secrets == {"hf": None, "k": "dflt"}
    root = pathlib.Path("/t/truss")
    assert config.package_dirs(root) == [root / "packages", pathlib.Path("/t/shared")]


@pytest.mark.parametrize("runtime", [{"predict_concurrency": 0}, {"predict_concurrency": "2"},
                                     {"streaming_read_timeout": -1}])
def test_bad_runtime_values_name_the_key(runtime: dict[str, object]) -> None:
    with pytest.raises(TrussConfigError, match=r"runtime\.\w+"):
        parse_config({"runtime": runtime})


def test_missing_or_broken_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(TrussConfigError, match="no config.yaml"):
        load_config(tmp_path)
    (tmp_path / "config.yaml").write_text("a: [")
    with pytest.raises(TrussConfigError, match="not valid YAML"):
        load_config(tmp_path)
    (tmp_path / "config.yaml").write_text("")
    assert load_config(tmp_path).model_class_name == "Model"

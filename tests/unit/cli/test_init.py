from pathlib import Path

import pytest
import yaml

from kingpost.cli.init_command import init_truss
from kingpost.errors import InvalidArgument
from kingpost_builder.truss_config import parse_truss_config


def test_init_makes_a_truss_the_builder_accepts_without_warnings(tmp_path: Path) -> None:
    truss = init_truss(tmp_path / "my-model")
    config_text = (truss / "config.yaml").read_text()
    assert yaml.safe_load(config_text)["model_name"] == "my-model"
    assert (truss / "model" / "model.py").read_text().startswith("class Model")
    parsed = parse_truss_config(config_text)
    assert not parsed.warnings


def test_init_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("keep me")
    with pytest.raises(InvalidArgument, match="not empty"):
        init_truss(tmp_path / "x")
    assert (tmp_path / "x" / "file").read_text() == "keep me"


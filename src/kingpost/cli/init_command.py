"""`kingpost init DIR`: a new Truss, ready to push — the same layout `truss init` makes."""

from __future__ import annotations

from pathlib import Path

import click

from kingpost.cli.app import cli, json_option, print_json
from kingpost.errors import InvalidArgument

CONFIG = """\
model_name: {name}
python_version: py311
requirements: []
resources:
  cpu: "1"
  memory: 2Gi
  accelerator: null
runtime:
  predict_concurrency: 1
model_metadata:
  example_model_input: {{"text": "hello"}}
"""

MODEL = '''\
class Model:
    def __init__(self, **kwargs):
        # kwargs: config (config.yaml as a dict), data_dir, secrets, environment
        self._config = kwargs.get("config")

    def load(self):
        # Runs once, in the background, before the first request: load weights here.
        pass

    def predict(self, model_input):
        return {"echo": model_input}
'''


def init_truss(directory: Path, name: str | None = None) -> Path:
    if directory.exists() and any(directory.iterdir()):
        raise InvalidArgument(f"{directory} exists and is not empty; choose a new directory")
    model_name = name or directory.resolve().name
    (directory / "model").mkdir(parents=True, exist_ok=True)
    (directory / "data").mkdir(exist_ok=True)
    (directory / "packages").mkdir(exist_ok=True)
    (directory / "config.yaml").write_text(CONFIG.format(name=model_name))
    (directory / "model" / "model.py").write_text(MODEL)
    return directory


@cli.command("init")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--name", help="Model name (default: the directory's name).")
@json_option
def init(directory: Path, name: str | None, as_json: bool) -> None:
    """Create a new Truss in DIRECTORY: config.yaml and model/model.py."""
    init_truss(directory, name)
    if as_json:
        print_json({"path": str(directory)})
    else:
        click.echo(f"Created a Truss in {directory}. Edit model/model.py, then: kingpost push {directory}")

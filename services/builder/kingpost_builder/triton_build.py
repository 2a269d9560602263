"""A pushed Triton model repository: checked with Triton's own schema, given the config.yaml a Truss has.

The repository ships as it is; the artifact's `config.yaml` is the user's (name, resources,
autoscaling, runtime) or an empty one, with `runtime.predict_concurrency` raised to
`PREDICT_CONCURRENCY` when the user set none: Triton queues and batches requests itself, and a
replica that let the router send it one request at a time would never form a batch.
Where this builder sees a tritonserver (`KINGPOST_TRITON_HOME`, as `kingpost up` gives every service),
a backend it lacks fails the push, naming the file and the field; elsewhere Triton says so when the
replica starts. config.yaml's requirements are locked as a Truss's are: the Python backend imports them.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from kingpost import triton_repository
from kingpost.errors import InvalidArgument
from kingpost.triton_install import find_home

from kingpost_builder.strict_yaml import load_yaml_mapping
from kingpost_builder.truss_config import CONFIG_FILE

PREDICT_CONCURRENCY = 64


def prepare(source_dir: Path, files: set[str]) -> triton_repository.Repository:
    """Check the repository and write its config.yaml; InvalidArgument names the file and field."""
    home = find_home()
    try:
        repository = triton_repository.parse(source_dir)
        if home is not None and home.backends.is_dir():  # the Triton this builder can see; else Triton says
            repository.check_backends({p.name for p in home.backends.iterdir() if p.is_dir()})
    except triton_repository.RepositoryError as e:
        raise InvalidArgument(str(e)) from None
    config_path = source_dir / CONFIG_FILE
    if config_path.is_symlink():
        raise InvalidArgument(f"{CONFIG_FILE} is a symlink; it must be a file")
    raw = load_yaml_mapping(config_path.read_text(errors="replace"), source=CONFIG_FILE) \
        if CONFIG_FILE in files else {}
    runtime = raw.setdefault("runtime", {}) or {}
    if not isinstance(runtime, dict):
        raise InvalidArgument(f"{CONFIG_FILE}: runtime: must be a mapping")
    raw["runtime"] = runtime
    runtime.setdefault("predict_concurrency", PREDICT_CONCURRENCY)
    config_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    files.add(CONFIG_FILE)
    return repository

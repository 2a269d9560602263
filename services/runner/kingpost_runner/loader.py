"""Loading a Truss in this process, as truss's server does at startup.

`prepare_process` (before anything of the model is imported): set config.yaml's
`environment_variables` (config.yaml wins over the inherited environment, as it does in a truss
image), make the truss directory the working directory and put it first on sys.path (truss runs
from /app), and append the bundled `packages/` dir and `external_package_dirs` to sys.path.

`load_model` (in a background thread): import the model file, construct the class with the
kwargs it asks for, call `setup_environment(environment)` if defined, then `load()`, retried
NUM_LOAD_RETRIES_TRUSS times (default 1, i.e. two attempts) one second apart.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import pathlib
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from kingpost_runner.truss_config import TrussConfig
from kingpost_runner.truss_model import ModelMethods, describe, init_kwargs, load_model_class
from kingpost_runner.truss_secrets import Secrets

log = logging.getLogger(__name__)

LOAD_RETRY_GAP_S = 1.0


class NoLazyData:
    """`lazy_data_resolver`: kingpost has no lazily fetched data (bptr manifests), so nothing to wait for."""

    def block_until_download_complete(self, *args: Any, **kwargs: Any) -> None:
        return None


def load_retries(environ: Mapping[str, str]) -> int:
    raw = environ.get("NUM_LOAD_RETRIES_TRUSS", "1")
    try:
        return max(0, int(raw))
    except ValueError:
        log.warning("NUM_LOAD_RETRIES_TRUSS=%r is not an integer; using 1", raw)
        return 1


def prepare_process(truss_dir: pathlib.Path, config: TrussConfig) -> None:
    for key in ("PORT", "HOSTNAME"):
        if key in config.environment_variables:
            log.warning("environment variable %s in config.yaml is reserved by Truss", key)
    os.environ.update(config.environment_variables)
    os.chdir(truss_dir)
    sys.path.insert(0, str(truss_dir))
    for path in config.package_dirs(truss_dir):
        if path.is_dir() and str(path) not in sys.path:
            sys.path.append(str(path))


def _call_sync(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a model hook from the load thread, sync or async."""
    if inspect.iscoroutinefunction(fn):
        return asyncio.run(fn(*args))
    return fn(*args)


def load_model(
    truss_dir: pathlib.Path,
    config: TrussConfig,
    *,
    environment: str | None,
    secrets_dir: pathlib.Path,
    retries: int,
    retry_gap_s: float = LOAD_RETRY_GAP_S,
) -> tuple[object, ModelMethods]:
    """Import, construct and load the model; raises whatever the model's code raised."""
    model_class = load_model_class(config.model_file(truss_dir), config.model_class_name)
    data_dir = truss_dir / config.data_dir
    try:
        data_dir.mkdir(exist_ok=True)  # as truss does; a read-only truss dir just goes without
    except OSError:
        log.info("no data dir %s (the Truss's directory is read-only here)", data_dir)
    env_value = {"name": environment} if environment else None
    available: dict[str, Any] = {
        "config": dict(config.raw),
        "data_dir": data_dir,
        "secrets": Secrets(config.secrets, secrets_dir=secrets_dir),
        "environment": env_value,
        "lazy_data_resolver": NoLazyData(),
    }
    model = model_class(**init_kwargs(model_class, available))
    methods = describe(model)
    if methods.setup_environment is not None:
        _call_sync(methods.setup_environment, env_value)
    load = getattr(model, "load", None)
    if callable(load):
        log.info("Executing model.load()...")
        start = time.perf_counter()
        for attempt in range(retries + 1):
            try:
                _call_sync(load)
                break
            except Exception:
                if attempt >= retries:
                    raise
                log.warning("Failed to load model. Retrying (%d of %d)...", attempt + 1, retries,
                            exc_info=True)
                time.sleep(retry_gap_s)
        log.info("Completed model.load() execution in %d ms", (time.perf_counter() - start) * 1000)
    return model, methods

"""The parts of a Truss's config.yaml that the runner acts on, read once, with truss's defaults.

The builder validates the whole file; the runner only needs where the model lives, what to put on
sys.path and in the environment, which secrets exist, and the two runtime knobs it enforces.
The full dict is kept as `raw`, because `Model.__init__(config=...)` receives all of it.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping
from typing import Any

import yaml

DEFAULT_PREDICT_CONCURRENCY = 1
DEFAULT_STREAMING_READ_TIMEOUT_S = 60.0


class TrussConfigError(ValueError):
    """config.yaml is missing or cannot serve as a Truss config."""


@dataclasses.dataclass(frozen=True)
class TrussConfig:
    raw: Mapping[str, Any]
    model_module_dir: str = "model"
    model_class_filename: str = "model.py"
    model_class_name: str = "Model"
    data_dir: str = "data"
    bundled_packages_dir: str = "packages"
    external_package_dirs: tuple[str, ...] = ()
    environment_variables: Mapping[str, str] = dataclasses.field(default_factory=dict)
    secrets: Mapping[str, str | None] = dataclasses.field(default_factory=dict)
    predict_concurrency: int = DEFAULT_PREDICT_CONCURRENCY
    streaming_read_timeout_s: float = DEFAULT_STREAMING_READ_TIMEOUT_S

    def model_file(self, truss_dir: pathlib.Path) -> pathlib.Path:
        return truss_dir / self.model_module_dir / self.model_class_filename

    def package_dirs(self, truss_dir: pathlib.Path) -> list[pathlib.Path]:
        """Bundled packages first, then external dirs, as truss appends them.

        An external dir outside the truss travels in the artifact as
        `.kingpost/external_packages/<i>` (see kingpost.truss_archive); one inside is used in place.
        """
        dirs = [truss_dir / self.bundled_packages_dir]
        for i, d in enumerate(self.external_package_dirs):
            shipped = truss_dir / ".kingpost" / "external_packages" / str(i)
            dirs.append(shipped if shipped.is_dir() else (truss_dir / d).resolve())
        return dirs


def _env_value(value: Any) -> str:
    # Truss stringifies values, with YAML booleans as lower-case words.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _positive_int(raw: Mapping[str, Any], key: str, default: int) -> int:
    value = raw.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TrussConfigError(f"runtime.{key} must be an integer >= 1, got {value!r}")
    return value


def parse_config(raw: Any) -> TrussConfig:
    """Build a TrussConfig from the parsed YAML document."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise TrussConfigError(f"config.yaml must be a mapping, got {type(raw).__name__}")
    runtime = raw.get("runtime") or {}
    if not isinstance(runtime, dict):
        raise TrussConfigError("`runtime` in config.yaml must be a mapping")
    timeout = runtime.get("streaming_read_timeout", DEFAULT_STREAMING_READ_TIMEOUT_S)
    if timeout is None:
        timeout = DEFAULT_STREAMING_READ_TIMEOUT_S
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise TrussConfigError(f"runtime.streaming_read_timeout must be > 0 seconds, got {timeout!r}")
    env = raw.get("environment_variables") or {}
    secrets = raw.get("secrets") or {}
    if not isinstance(env, dict) or not isinstance(secrets, dict):
        raise TrussConfigError("`environment_variables` and `secrets` in config.yaml must be mappings")
    return TrussConfig(
        raw=raw,
        model_module_dir=str(raw.get("model_module_dir") or "model"),
        model_class_filename=str(raw.get("model_class_filename") or "model.py"),
        model_class_name=str(raw.get("model_class_name") or "Model"),
        data_dir=str(raw.get("data_dir") or "data"),
        bundled_packages_dir=str(raw.get("bundled_packages_dir") or "packages"),
        external_package_dirs=tuple(str(d) for d in raw.get("external_package_dirs") or ()),
        environment_variables={str(k): _env_value(v) for k, v in env.items()},
        secrets={str(k): (None if v is None else str(v)) for k, v in secrets.items()},
        predict_concurrency=_positive_int(runtime, "predict_concurrency", DEFAULT_PREDICT_CONCURRENCY),
        streaming_read_timeout_s=float(timeout),
    )


def load_config(truss_dir: pathlib.Path) -> TrussConfig:
    path = truss_dir / "config.yaml"
    if not path.is_file():
        raise TrussConfigError(f"no config.yaml in {truss_dir}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise TrussConfigError(f"config.yaml is not valid YAML: {e}") from e
    return parse_config(raw)

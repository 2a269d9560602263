"""A Truss's `config.yaml`: parsed, defaulted and validated the way truss does (truss-compat.md §1).

Pure: text in, a frozen `TrussConfig` and a list of warnings out; no file system.

    parsed = parse_truss_config(text)            # InvalidArgument naming key, value and reason
    check_layout(parsed.config, files)           # model/model.py (or the configured path) present

Three kinds of keys:
- keys kingpost acts on (modelled below, with truss's defaults);
- keys truss knows and kingpost accepts but does not act on yet (base_image, weights, ...):
  a warning names each one that is set to something, so nothing is silently dropped;
- unknown keys: accepted (truss accepts them too) with a warning naming each.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kingpost import instance_types
from kingpost.errors import InvalidArgument
from kingpost_builder import custom_server
from kingpost_builder.strict_yaml import load_yaml_mapping

CONFIG_FILE = "config.yaml"

PYTHON_VERSIONS = tuple(f"py3{minor}" for minor in range(9, 15))  # py39 .. py314
ACCELERATORS = (
    "T4", "L4", "A10G", "V100", "A100", "A100_40GB", "H100", "H100_40GB", "H200", "B200", "L40S",
    "RTX_PRO_6000", "B300", "GB300", "B10",
)
RESERVED_ENV_VARS = ("PORT", "HOSTNAME")

_CPU = re.compile(r"^\d+(\.\d+)?m?$")
_MEMORY = re.compile(r"^\d+(\.\d+)?(k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


class Resources(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    cpu: str = "1"
    memory: str = "2Gi"
    accelerator: str | None = None

    @field_validator("cpu", mode="before")
    @classmethod
    def _cpu(cls, value: Any) -> str:
        text = _scalar_text(value)
        if not _CPU.match(text) or float(text.rstrip("m")) <= 0:
            raise ValueError('must be a positive number of CPUs ("1", "2.5") or millicpus ("500m")')
        return text

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> str:
        text = _scalar_text(value)
        if not _MEMORY.match(text):
            raise ValueError('must be a number with an optional unit k, M, G, T, Ki, Mi, Gi, Ti ... ("2Gi", "512Mi")')
        return text

    @field_validator("accelerator", mode="before")
    @classmethod
    def _accelerator(cls, value: Any) -> str | None:
        if value is None or value == "":
            return None
        kind, sep, count = str(value).partition(":")
        if kind not in ACCELERATORS:
            raise ValueError(f"must be <TYPE>[:count] with TYPE one of {', '.join(ACCELERATORS)}")
        if sep and (not count.isdigit() or int(count) < 1):
            raise ValueError("the count after ':' must be a whole number ≥ 1")
        return f"{kind}:{int(count)}" if sep and int(count) > 1 else kind

    @property
    def accelerator_type(self) -> str | None:
        return self.accelerator.partition(":")[0] if self.accelerator else None

    @property
    def accelerator_count(self) -> int:
        if not self.accelerator:
            return 0
        _, _, count = self.accelerator.partition(":")
        return int(count) if count else 1

    @property
    def use_gpu(self) -> bool:
        return self.accelerator is not None


class Runtime(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    predict_concurrency: int = 1
    streaming_read_timeout: int = 60
    enable_tracing_data: bool = False
    enable_debug_logs: bool = False
    # startup_threshold_seconds and restart_threshold_seconds time a docker_server's health checks.
    health_checks: dict[str, Any] | None = None

    @field_validator("predict_concurrency")
    @classmethod
    def _concurrency(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be ≥ 1")
        return value

    @field_validator("streaming_read_timeout")
    @classmethod
    def _timeout(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be ≥ 1 second")
        return value


class TrussConfig(BaseModel):
    """The keys kingpost acts on, with truss's defaults."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    model_name: str | None = None
    model_metadata: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None
    python_version: str = "py313"
    requirements: tuple[str, ...] = ()
    requirements_file: str | None = None
    environment_variables: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, str | None] = Field(default_factory=dict)
    resources: Resources = Field(default_factory=Resources)
    runtime: Runtime = Field(default_factory=Runtime)
    model_module_dir: str = "model"
    model_class_filename: str = "model.py"
    model_class_name: str = "Model"
    bundled_packages_dir: str = "packages"
    data_dir: str = "data"
    examples_filename: str = "examples.yaml"
    external_package_dirs: tuple[str, ...] = ()
    live_reload: bool = False
    # Checked by custom_server.py (kingpost.docker_server): a custom server instead of model.py, and
    # the Python version of an image kingpost does not run.
    docker_server: dict[str, Any] | None = None
    base_image: dict[str, Any] | None = None

    @field_validator("python_version")
    @classmethod
    def _python_version(cls, value: str) -> str:
        if value not in PYTHON_VERSIONS:
            raise ValueError(f"must be one of {', '.join(PYTHON_VERSIONS)}")
        return value

    @field_validator("requirements", mode="before")
    @classmethod
    def _requirements(cls, value: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, list):
            return tuple(str(line).strip() for line in value if str(line).strip())
        return value

    @field_validator("environment_variables", mode="before")
    @classmethod
    def _environment(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            return value  # pydantic reports "should be a valid dictionary"
        return {str(k): _env_text(v) for k, v in value.items()}

    @field_validator("secrets", mode="before")
    @classmethod
    def _secrets(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            return value
        return {str(k): None if v is None else _env_text(v) for k, v in value.items()}

    @field_validator("model_module_dir", "model_class_filename", "bundled_packages_dir", "data_dir",
                     "requirements_file")
    @classmethod
    def _relative_path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = value.replace("\\", "/").split("/")
        if value.startswith("/") or ".." in parts or not value.strip():
            raise ValueError("must be a path inside the truss directory")
        return value

    @field_validator("model_class_name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not value.isidentifier():
            raise ValueError("must be a Python class name")
        return value

    @property
    def requirements_path(self) -> str | None:
        """requirements_file relative to the truss directory (posix, normalised)."""
        return posixpath.normpath(self.requirements_file) if self.requirements_file else None

    @property
    def model_file(self) -> str:
        """The model's file, relative to the truss directory (posix)."""
        return f"{self.model_module_dir.strip('/')}/{self.model_class_filename}"


@dataclass(frozen=True)
class ParsedConfig:
    config: TrussConfig
    raw: dict[str, Any]
    warnings: tuple[str, ...]


# --- keys truss knows that kingpost does not act on yet -----------------------------------------

# Top-level keys truss knows; kingpost accepts them but does not act on them (yet).
NOT_ACTED_ON = (
    "trt_llm", "weights",
    "model_cache", "hf_cache", "external_data", "build", "bdn", "training_checkpoints", "bis_llm",
)
# Internal or legacy keys: silent at truss's default, a warning otherwise.
LEGACY_DEFAULTS: dict[str, Any] = {
    "apply_library_patches": True, "use_local_src": False, "cache_internal": None, "input_type": "Any",
    "model_framework": "custom", "model_type": "Model", "spec_version": "2.0",
}
# Acted on by the build steps (run where the builder allows it, else the build fails saying so).
BUILD_KEYS = ("system_packages", "build_commands")
RESOURCES_NOT_ACTED_ON = ("instance_type", "node_count", "fabric")
RUNTIME_NOT_ACTED_ON = (
    "transport", "is_websocket_endpoint", "oidc", "remote_ssh", "egress_restrictions",
    "truss_server_version_override",
)
_RESOURCES_KEYS = set(Resources.model_fields) | {"use_gpu"}  # use_gpu is computed; truss ignores its input
_RUNTIME_KEYS = set(Runtime.model_fields) | {"num_workers"}


def parse_truss_config(text: str, *, source: str = CONFIG_FILE) -> ParsedConfig:
    """Parse `config.yaml` text; InvalidArgument names each bad key path, its value and the reason."""
    raw = load_yaml_mapping(text, source=source)
    errors = _structural_errors(raw)
    try:
        config = TrussConfig.model_validate(raw)
    except ValidationError as e:
        errors.extend(_describe(e))
    if errors:
        raise InvalidArgument(f"{source}: " + "; ".join(errors))
    try:
        instance_type(config, raw)
    except InvalidArgument as e:
        raise InvalidArgument(f"{source}: {e}") from None
    server_warnings, python = custom_server.warnings(raw)
    if python is not None:  # base_image's Python, where the config names none
        config = config.model_copy(update={"python_version": python})
    return ParsedConfig(config=config, raw=raw, warnings=tuple(_warnings(raw, config) + server_warnings))


def instance_type(config: TrussConfig, raw: Mapping[str, Any]) -> instance_types.InstanceType:
    """The smallest instance type that meets the resources; InvalidArgument naming the value and the
    choices where none does (an accelerator no type offers, an unknown `instance_type`)."""
    named = raw.get("resources", {}).get("instance_type") if isinstance(raw.get("resources"), dict) else None
    r = config.resources
    return instance_types.smallest_fit(instance_types.request_of(
        r.cpu, r.memory, r.accelerator, instance_type=str(named) if named else None))


def check_layout(config: TrussConfig, files: Set[str]) -> None:
    """The files the config names exist in the truss (`files`: posix paths relative to its root).
    A custom server (`docker_server`) needs no model file."""
    if config.model_file not in files and config.docker_server is None:
        hint = "" if config.model_file == "model/model.py" else " (set by model_module_dir/model_class_filename)"
        raise InvalidArgument(f"the truss has no {config.model_file}{hint}: it must hold the class "
                              f"{config.model_class_name}")
    if config.requirements_file and config.requirements_path not in files:
        raise InvalidArgument(f"requirements_file: {config.requirements_file!r} is not in the truss")
    for i, entry in enumerate(config.external_package_dirs):
        inside = posixpath.normpath(entry)
        shipped = f".kingpost/external_packages/{i}"
        if not (inside in files or any(f.startswith(shipped + "/") or f == shipped for f in files)):
            raise InvalidArgument(f"external_package_dirs: {entry!r} is not in the upload "
                                  "(`kingpost push` includes directories outside the truss)")


def find_config_file(files: Set[str]) -> str:
    """The config file's name, or an error that says what is wrong (".yml" gets a hint)."""
    if CONFIG_FILE in files:
        return CONFIG_FILE
    if "config.yml" in files:
        raise InvalidArgument("the truss has config.yml; truss reads config.yaml: rename it to config.yaml")
    raise InvalidArgument("the truss has no config.yaml at its root (is this a Truss directory?)")


def summary_fields(config: TrussConfig) -> dict[str, Any]:
    """What the scheduler needs (the TrussSummary message's fields)."""
    return {
        "model_name": config.model_name or "",
        "predict_concurrency": config.runtime.predict_concurrency,
        "cpu": config.resources.cpu,
        "memory": config.resources.memory,
        "accelerator": config.resources.accelerator or "",
        "secrets": sorted(config.secrets),
        # A declared secret without a default (null, or empty) must be set for the model to read it.
        "required_secrets": sorted(name for name, default in config.secrets.items() if not default),
    }


# --- validation details -------------------------------------------------------------------------


def _structural_errors(raw: Mapping[str, Any]) -> list[str]:
    """Rules across keys, and truss's hard errors for keys kingpost does not model."""
    errors: list[str] = []
    if raw.get("requirements") and raw.get("requirements_file"):
        errors.append("requirements and requirements_file are mutually exclusive: use one of them")
    runtime = raw.get("runtime")
    if isinstance(runtime, Mapping) and "num_workers" in runtime and runtime["num_workers"] != 1:
        errors.append(f"runtime.num_workers: {_show(runtime['num_workers'])} is not valid: "
                      "only 1 worker per server is allowed (as in truss ≥ 0.9.49)")
    build = raw.get("build")
    if isinstance(build, Mapping) and build.get("no_cache") is True:
        errors.append("build.no_cache: true is not valid: it may not be set in config.yaml")
    if raw.get("weights") and (raw.get("model_cache") or raw.get("hf_cache")):
        errors.append("weights and model_cache are mutually exclusive: use weights")
    errors += custom_server.errors(raw)
    for key in ("resources", "runtime"):
        if key in raw and raw[key] is not None and not isinstance(raw[key], Mapping):
            errors.append(f"{key}: {_show(raw[key])} is not valid: must be a mapping")
    return errors


def _describe(e: ValidationError) -> list[str]:
    out = []
    for err in e.errors():
        path = ".".join(str(p) for p in err["loc"])
        reason = err["msg"].removeprefix("Value error, ")
        out.append(f"{path}: {_show(err.get('input'))} is not valid: {reason}")
    return out


def _warnings(raw: Mapping[str, Any], config: TrussConfig) -> list[str]:
    warnings: list[str] = []
    known = set(TrussConfig.model_fields) | set(BUILD_KEYS)
    for key, value in raw.items():
        if key in known:
            continue
        if key in NOT_ACTED_ON:
            if _is_set(value):
                warnings.append(f"{key}: accepted but not acted on by kingpost yet")
        elif key in LEGACY_DEFAULTS:
            if value != LEGACY_DEFAULTS[key] and value is not None:
                warnings.append(f"{key}: accepted but not acted on by kingpost")
        else:
            warnings.append(f"{key}: unknown key, ignored")
    warnings += _nested_warnings(raw.get("resources"), "resources", _RESOURCES_KEYS, RESOURCES_NOT_ACTED_ON)
    warnings += _nested_warnings(raw.get("runtime"), "runtime", _RUNTIME_KEYS, RUNTIME_NOT_ACTED_ON)
    for name in RESERVED_ENV_VARS:
        if name in config.environment_variables:
            warnings.append(f"environment_variables.{name}: reserved by the server; it may be overridden")
    if "python_version" in raw and config.python_version == "py39":
        warnings.append("python_version: py39 is deprecated")
    return warnings


def _nested_warnings(section: Any, prefix: str, known: Set[str], not_acted_on: tuple[str, ...]) -> list[str]:
    if not isinstance(section, Mapping):
        return []
    out = []
    for key, value in section.items():
        if key in known:
            continue
        if key in not_acted_on:
            if _is_set(value) and not (key == "node_count" and value == 1):
                out.append(f"{prefix}.{key}: accepted but not acted on by kingpost yet")
        else:
            out.append(f"{prefix}.{key}: unknown key, ignored")
    return out


def _is_set(value: Any) -> bool:
    return value not in (None, "", False) and value != [] and value != {}


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("must be a string or a number")
    return str(value).strip()


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise ValueError("values must be strings, numbers or booleans")
    return str(value)


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)

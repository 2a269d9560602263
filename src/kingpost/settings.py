"""Typed settings, shared fields first: every service reads `KINGPOST_*` variables and a TOML file.

`kingpost <service> --config FILE` loads FILE; variables override it. Each service subclasses
`ServiceSettings` with its own fields. Validation messages name the key, the value and the rule.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from kingpost import keepalive
from kingpost.errors import InvalidArgument


def default_home() -> Path:
    return Path(os.environ.get("KINGPOST_HOME") or Path.home() / ".kingpost")


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KINGPOST_", extra="forbid", frozen=True)

    home: Path = Field(default_factory=default_home)
    nats_url: str = "nats://127.0.0.1:4222"
    # This service's gRPC listener.
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(0, ge=0, le=65535)
    # Prometheus text at http://metrics_host:metrics_port/metrics; 0 picks a free port.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(0, ge=0, le=65535)
    # Sent by services to each other; empty in the embedded default (loopback only).
    internal_token: str = ""
    # How often this service pings the other end of its gRPC connections (kingpost.keepalive).
    grpc_keepalive_seconds: float = Field(keepalive.DEFAULT_SECONDS, ge=keepalive.MIN_SECONDS)
    log_level: str = "INFO"
    # "text" (for people) or "json" (one object a line, for a log pipeline: kingpost/log_format.py).
    log_format: Literal["text", "json"] = "text"

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> Self:
        values: dict[str, Any] = {}
        if config_file is not None:
            try:
                values = tomllib.loads(Path(config_file).read_text())
            except FileNotFoundError as e:
                raise InvalidArgument(f"config file {config_file} does not exist") from e
            except tomllib.TOMLDecodeError as e:
                raise InvalidArgument(f"config file {config_file} is not valid TOML: {e}") from e
            # Variables win over the file: drop file values that the environment sets.
            values = {k: v for k, v in values.items() if f"KINGPOST_{k.upper()}" not in os.environ}
        values.update(overrides)
        try:
            return cls(**values)
        except ValidationError as e:
            raise InvalidArgument(describe_validation_error(e, source=str(config_file or "settings"))) from e


def describe_validation_error(e: ValidationError, *, source: str) -> str:
    parts = []
    for err in e.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(root)"
        value = err.get("input")
        if err["type"] == "extra_forbidden":
            parts.append(f"{source}: unknown key '{key}'")
        else:
            parts.append(f"{source}: '{key}' = {value!r}: {err['msg']}")
    return "; ".join(parts)

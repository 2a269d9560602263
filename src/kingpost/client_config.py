"""Where a client finds the platform, and with which key.

Each value comes from the first place that has it:
  1. the environment: `KINGPOST_URL`, `KINGPOST_GRPC`, `KINGPOST_API_KEY`;
  2. `$KINGPOST_HOME/config.toml` (home: `~/.kingpost` by default), which `kingpost up` writes;
  3. the defaults: `http://127.0.0.1:8080` and `127.0.0.1:50051` (there is no default key).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kingpost.errors import InvalidArgument, Unauthenticated
from kingpost.flat_toml import to_toml

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_GRPC = "127.0.0.1:50051"
CONFIG_FILENAME = "config.toml"


@dataclass(frozen=True)
class ClientConfig:
    url: str = DEFAULT_URL
    grpc: str = DEFAULT_GRPC
    api_key: str = ""
    # Where the values were read from, for error messages.
    config_path: Path | None = None

    def require_api_key(self) -> str:
        if not self.api_key:
            where = f" ({self.config_path} has none)" if self.config_path else ""
            raise Unauthenticated(
                f"no API key{where}: run `kingpost up` (it writes one) or set KINGPOST_API_KEY"
            )
        return self.api_key


def home_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("KINGPOST_HOME") or Path.home() / ".kingpost")


def resolve(env: Mapping[str, str], file_values: Mapping[str, Any], *,
            config_path: Path | None = None) -> ClientConfig:
    """Pure precedence: environment, then the config file, then the defaults."""

    def pick(env_key: str, file_key: str, default: str) -> str:
        value = env.get(env_key) or file_values.get(file_key) or default
        if not isinstance(value, str):
            raise InvalidArgument(f"{config_path}: '{file_key}' = {value!r}: must be a string")
        return value.strip()

    return ClientConfig(
        url=pick("KINGPOST_URL", "url", DEFAULT_URL).rstrip("/"),
        grpc=pick("KINGPOST_GRPC", "grpc", DEFAULT_GRPC),
        api_key=pick("KINGPOST_API_KEY", "api_key", ""),
        config_path=config_path,
    )


def read_file(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as e:
        raise InvalidArgument(f"{path} is not valid TOML: {e}") from e


def load(env: Mapping[str, str] | None = None) -> ClientConfig:
    env = os.environ if env is None else env
    path = home_dir(env) / CONFIG_FILENAME
    values = read_file(path)
    return resolve(env, values, config_path=path if values else None)


def write(home: Path, config: ClientConfig) -> Path:
    """Write `home/config.toml`, readable by its owner only (it holds the admin key)."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / CONFIG_FILENAME
    text = to_toml({"url": config.url, "grpc": config.grpc, "api_key": config.api_key})
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return path

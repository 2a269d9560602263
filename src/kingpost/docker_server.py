"""A Truss's `docker_server` block: a custom server (vLLM, SGLang, TEI, a team's FastAPI app) that
kingpost runs as a process in the deployment's environment instead of a `model.py`
(reference/truss-compat.md §1.4). Pure: the builder validates a pushed config with it (errors name
the key), the runner reads the same block to start and watch the server.

    docker_server:
      start_command: python -m vllm.entrypoints.openai.api_server --port 8000
      server_port: 8000
      predict_endpoint: /v1/chat/completions
      readiness_endpoint: /health
      liveness_endpoint: /health

Health timing comes from truss's `runtime.health_checks`: `startup_threshold_seconds` (how long the
server may take to answer its readiness endpoint; default 1800, truss's) and
`restart_threshold_seconds` (how long its liveness endpoint may fail before it is restarted;
default 60).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# truss-server's own port in a Truss image, and kingpost's REST port: truss refuses it too.
RESERVED_PORT = 8080
DEFAULT_STARTUP_THRESHOLD_SECONDS = 1800.0
DEFAULT_RESTART_THRESHOLD_SECONDS = 60.0
REQUIRED = ("start_command", "server_port", "predict_endpoint", "readiness_endpoint", "liveness_endpoint")
KNOWN = (*REQUIRED, "run_as_user_id", "no_build")


# Where a start command names its port: `--port 8000`, `--port=8000`, `-p 8000`, `--http-port 8000`,
# `host:8000` (`--bind 0.0.0.0:8000`), `PORT=8000`. A bare number elsewhere (`--max-tokens 8000`) is left.
_PORT_SPOTS = r"((?:--[a-z-]*port[= ]+|-p[= ]+|:|\bPORT=)['\"]?){port}(?![0-9])"


def with_port(command: str, declared: int, actual: int) -> str | None:
    """`command` listening on `actual` instead of `declared`, or None when it names its port nowhere
    that can be recognised (then it must have `declared` to itself on the node)."""
    pattern = re.compile(_PORT_SPOTS.format(port=declared))
    if not pattern.search(command):
        return None
    return pattern.sub(lambda m: f"{m.group(1)}{actual}", command)


class BadDockerServer(ValueError):
    """The block cannot run; the message names the key at fault."""


@dataclass(frozen=True, slots=True)
class DockerServer:
    start_command: str
    server_port: int
    predict_endpoint: str
    readiness_endpoint: str
    liveness_endpoint: str
    startup_threshold_seconds: float = DEFAULT_STARTUP_THRESHOLD_SECONDS
    restart_threshold_seconds: float = DEFAULT_RESTART_THRESHOLD_SECONDS
    # Keys truss knows that kingpost accepts without acting on them (for the push's warnings).
    ignored: tuple[str, ...] = ()


def _endpoint(block: Mapping[str, Any], key: str) -> str:
    value = block.get(key)
    if not isinstance(value, str) or not value.startswith("/"):
        raise BadDockerServer(f"docker_server.{key}: {value!r} is not valid: must be a path starting with '/'")
    return value


def _seconds(health: Mapping[str, Any], key: str, default: float) -> float:
    value = health.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise BadDockerServer(f"runtime.health_checks.{key}: {value!r} is not valid: must be seconds > 0")
    return float(value)


def parse(raw: Mapping[str, Any]) -> DockerServer | None:
    """The whole config's `docker_server` block, checked; None when the Truss has none."""
    block = raw.get("docker_server")
    if block is None:
        return None
    if not isinstance(block, Mapping):
        raise BadDockerServer(f"docker_server: {block!r} is not valid: must be a mapping")
    missing = [k for k in REQUIRED if block.get(k) in (None, "")]
    if missing:
        raise BadDockerServer(f"docker_server: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                              "required (kingpost runs start_command; there is no image to run as is)")
    command = block["start_command"]
    if not isinstance(command, str) or not command.strip():
        raise BadDockerServer(f"docker_server.start_command: {command!r} is not valid: must be a shell command")
    port = block["server_port"]
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise BadDockerServer(f"docker_server.server_port: {port!r} is not valid: must be a port number 1-65535")
    if port == RESERVED_PORT:
        raise BadDockerServer(f"docker_server.server_port: {port} is reserved (truss's and kingpost's own "
                              "HTTP port): have the server listen on another port, e.g. 8000")
    unknown = [k for k in block if k not in KNOWN]
    if unknown:
        raise BadDockerServer(f"docker_server: unknown key {', '.join(map(str, unknown))} "
                              f"(known: {', '.join(KNOWN)})")
    runtime = raw.get("runtime") or {}
    health = runtime.get("health_checks") if isinstance(runtime, Mapping) else None
    health = health if isinstance(health, Mapping) else {}
    ignored = tuple(f"docker_server.{k}" for k in ("run_as_user_id", "no_build") if block.get(k) not in (None, False))
    return DockerServer(
        start_command=command,
        server_port=port,
        predict_endpoint=_endpoint(block, "predict_endpoint"),
        readiness_endpoint=_endpoint(block, "readiness_endpoint"),
        liveness_endpoint=_endpoint(block, "liveness_endpoint"),
        startup_threshold_seconds=_seconds(health, "startup_threshold_seconds", DEFAULT_STARTUP_THRESHOLD_SECONDS),
        restart_threshold_seconds=_seconds(health, "restart_threshold_seconds", DEFAULT_RESTART_THRESHOLD_SECONDS),
        ignored=ignored,
    )

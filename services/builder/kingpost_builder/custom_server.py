"""The push-time checks of a custom server Truss (`docker_server`) and of `base_image`.

kingpost runs no Docker image: a `docker_server`'s `start_command` runs in the deployment's own
environment (its requirements, system packages and Python), and a `base_image` is honoured for what
the node can honour without Docker, the Python version its tag names (`python:3.11-slim`,
`…/truss-base:py312`); everything else about the image is named in a warning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kingpost import docker_server

_PY_TAG = re.compile(r"(?:^|[:/_-])(?:python|py)[:-]?(3)\.?(\d{1,2})(?:\b|[._-])")


def errors(raw: Mapping[str, Any]) -> list[str]:
    """What makes the `docker_server` block unrunnable (each names its key); [] when fine or absent."""
    try:
        docker_server.parse(raw)
    except docker_server.BadDockerServer as e:
        return [str(e)]
    return []


def is_custom_server(raw: Mapping[str, Any]) -> bool:
    return raw.get("docker_server") is not None


def base_image_python(image: str) -> str | None:
    """"3.11" for `python:3.11-slim`, "3.12" for `…/truss-base:py312`; None when the tag names none."""
    match = _PY_TAG.search(image.lower())
    return f"{match.group(1)}.{match.group(2)}" if match else None


def warnings(raw: Mapping[str, Any]) -> tuple[list[str], str | None]:
    """Warnings for `docker_server` keys not acted on and for `base_image`, and the Python version
    `base_image` names when the config sets no `python_version` of its own (as `py3XX`)."""
    out: list[str] = []
    python = None
    try:
        spec = docker_server.parse(raw)
    except docker_server.BadDockerServer:
        spec = None
    if spec is not None:
        out += [f"{key}: accepted but not acted on by kingpost (the server runs as its replica's own user)"
                for key in spec.ignored]
    block = raw.get("base_image")
    if isinstance(block, Mapping) and block.get("image"):
        image = str(block["image"])
        version = base_image_python(image)
        if version is None:
            out.append(f"base_image: {image!r} is not used: kingpost runs no Docker image, and its tag names "
                       "no Python version; the deployment uses python_version and its requirements")
        else:
            out.append(f"base_image: kingpost runs no Docker image; of {image!r} it honours Python {version} "
                       "only (add what else the image holds to requirements or system_packages)")
            if "python_version" not in raw:
                python = "py" + version.replace(".", "")
        if block.get("python_executable_path") or block.get("docker_auth"):
            out.append("base_image.python_executable_path and base_image.docker_auth: not acted on by kingpost")
    return out, python

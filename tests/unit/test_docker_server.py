"""A Truss's docker_server block: what runs, and bad blocks refused naming the key."""

from __future__ import annotations

import pytest

from kingpost.docker_server import BadDockerServer, DockerServer, parse, with_port
from kingpost_builder.custom_server import base_image_python, warnings

BLOCK = {"start_command": "vllm serve m --port 8000", "server_port": 8000, "predict_endpoint": "/v1/chat/completions",
         "readiness_endpoint": "/health", "liveness_endpoint": "/health"}


def test_a_full_block_with_truss_health_check_timing() -> None:
    spec = parse({"docker_server": BLOCK, "runtime": {"health_checks": {"startup_threshold_seconds": 30}}})
    assert spec == DockerServer(start_command="vllm serve m --port 8000", server_port=8000,
                                predict_endpoint="/v1/chat/completions", readiness_endpoint="/health",
                                liveness_endpoint="/health", startup_threshold_seconds=30.0)
    assert parse({}) is None


@pytest.mark.parametrize(("change", "named"), [
    ({"server_port": 8080}, "docker_server.server_port: 8080 is reserved"),
    ({"server_port": "80"}, "docker_server.server_port: '80' is not valid"),
    ({"server_port": None}, "docker_server: server_port is required"),
    ({"readiness_endpoint": "health"}, "docker_server.readiness_endpoint: 'health' is not valid"),
    ({"start_command": ["a"]}, "docker_server.start_command: ['a'] is not valid"),
    ({"port": 1}, "docker_server: unknown key port"),
])
def test_bad_blocks_name_the_key(change: dict, named: str) -> None:
    with pytest.raises(BadDockerServer, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse({"docker_server": {**BLOCK, **change}})


def test_bad_health_check_timing_is_named() -> None:
    with pytest.raises(BadDockerServer, match="runtime.health_checks.restart_threshold_seconds: 0"):
        parse({"docker_server": BLOCK, "runtime": {"health_checks": {"restart_threshold_seconds": 0}}})


def test_base_image_is_honoured_for_its_python_version_only() -> None:
    assert base_image_python("python:3.11-slim") == "3.11"
    assert base_image_python("baseten/truss-server-base:3.12-v0.4.3") is None
    assert base_image_python("nvcr.io/nvidia/tritonserver:24.01-py3") is None
    assert base_image_python("vllm/vllm-openai:v0.6.0") is None
    said, python = warnings({"base_image": {"image": "python:3.12-slim"}})
    assert python == "py312" and "honours Python 3.12 only" in said[0]
    assert warnings({"base_image": {"image": "python:3.12"}, "python_version": "py311"})[1] is None
    said, python = warnings({"base_image": {"image": "vllm/vllm-openai:v0.6.0"}})
    assert python is None and "is not used" in said[0]


@pytest.mark.parametrize(("command", "moved"), [
    ("python server.py --port 8000", "python server.py --port 9001"),
    ("vllm serve m --port=8000 --max-model-len 8000", "vllm serve m --port=9001 --max-model-len 8000"),
    ("gunicorn -b 0.0.0.0:8000 app", "gunicorn -b 0.0.0.0:9001 app"),
    ("PORT=8000 node server.js", "PORT=9001 node server.js"),
    ("text-generation-launcher -p 8000", "text-generation-launcher -p 9001"),
    ("python server.py", None),
    ("x --port 80001", None),
])
def test_a_replica_is_given_its_own_port_where_the_command_names_it(command: str, moved: str | None) -> None:
    assert with_port(command, 8000, 9001) == moved

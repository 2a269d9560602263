"""The configuration and context types of a Chain, with Truss Chains' names, fields and defaults.

Pure data (pydantic models): a Chainlet declares `remote_config = chains.RemoteConfig(...)` and its
`__init__` may take a `DeploymentContext`. See reference: truss_chains/public_types.py.
"""

from __future__ import annotations

import enum
import pathlib
from collections.abc import Mapping
from typing import Any

import pydantic


class BasetenImage(enum.Enum):
    PY39 = "py39"
    PY310 = "py310"
    PY311 = "py311"


class CustomImage(pydantic.BaseModel):
    image: str = "python:3.11-slim"
    python_executable_path: str | None = None
    docker_auth: Any = None


class DockerImage(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(arbitrary_types_allowed=True)
    base_image: BasetenImage | CustomImage = BasetenImage.PY311
    pip_requirements: list[str] = []
    pip_requirements_file: str | None = None
    requirements_file: str | None = None
    apt_requirements: list[str] = []
    data_dir: str | None = None
    external_package_dirs: list[str] | None = None
    truss_server_version_override: str | None = None


class Compute(pydantic.BaseModel):
    cpu_count: int = 1
    memory: str = "2Gi"
    gpu: str | None = None
    gpu_count: int = 1
    predict_concurrency: int | str = 1
    instance_type: str | None = None


class Assets(pydantic.BaseModel):
    cached: tuple[Any, ...] = ()
    secret_keys: tuple[str, ...] = ()
    external_data: tuple[Any, ...] = ()
    weights: tuple[Any, ...] = ()


class ChainletOptions(pydantic.BaseModel):
    enable_b10_tracing: bool = False
    enable_debug_logs: bool = False
    env_variables: dict[str, str] = {}
    health_checks: Any = None
    metadata: Any = None
    streaming_read_timeout: int = 60
    transport: Any = None


class RemoteConfig(pydantic.BaseModel):
    docker_image: DockerImage = DockerImage()
    compute: Compute = Compute()
    assets: Assets = Assets()
    name: str | None = None
    options: ChainletOptions = ChainletOptions()
    build_commands: list[str] = []


class RPCOptions(pydantic.BaseModel):
    """How a Chainlet calls one dependency. `retries` counts attempts (1 = no retry), as truss does."""

    retries: int = pydantic.Field(1, ge=1)
    timeout_sec: float = pydantic.Field(600.0, gt=0)
    use_binary: bool = False
    concurrency_limit: int = pydantic.Field(300, ge=1)


class Environment(pydantic.BaseModel):
    name: str


class InternalURL(pydantic.BaseModel):
    gateway_run_remote_url: str
    hostname: str


class DeployedServiceDescriptor(pydantic.BaseModel):
    """Where a dependency answers. kingpost adds `model` and `deployment_id`/`target`: the router
    address of the dependency's deployment (calls go through the router, never straight to a runner)."""

    name: str
    display_name: str
    options: RPCOptions = RPCOptions()
    predict_url: str | None = None
    internal_url: InternalURL | None = None
    model: str = ""
    deployment_id: str = ""
    target: str = ""


class DeploymentContext(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(arbitrary_types_allowed=True)
    chainlet_to_service: Mapping[str, DeployedServiceDescriptor] = {}
    secrets: Mapping[str, str] = {}
    data_dir: pathlib.Path | None = None
    environment: Environment | None = None

    def get_service_descriptor(self, chainlet_name: str) -> DeployedServiceDescriptor:
        if chainlet_name not in self.chainlet_to_service:
            raise KeyError(f"No descriptor for chainlet `{chainlet_name}`; known: "
                           f"{sorted(self.chainlet_to_service)}")
        return self.chainlet_to_service[chainlet_name]

    def get_baseten_api_key(self) -> str:
        key = self.secrets.get("baseten_chain_api_key")
        if not key or key == "***":
            raise ValueError("the secret `baseten_chain_api_key` is not set")
        return key


class StackFrame(pydantic.BaseModel):
    filename: str
    lineno: int | None = None
    name: str
    line: str | None = None


class RemoteErrorDetail(pydantic.BaseModel):
    """An exception raised in a Chainlet, as it travels to its caller (truss's wire shape)."""

    exception_cls_name: str
    exception_module_name: str | None = None
    exception_message: str
    user_stack_trace: list[StackFrame] = []

    def format(self) -> str:
        lines = ["Chainlet-Traceback (most recent call last):"]
        for frame in self.user_stack_trace:
            lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
            if frame.line:
                lines.append(f"    {frame.line}")
        lines.append(f"{self.exception_cls_name}: {self.exception_message}")
        return "\n".join(lines)


class GenericRemoteException(Exception):
    """A dependency raised an exception whose class the caller cannot resolve."""


class ChainsUsageError(TypeError):
    """A Chainlet used the wrong way (instantiated directly, outside `run_local`)."""


class ChainsRuntimeError(Exception):
    """A Chainlet could not be served or called as deployed."""

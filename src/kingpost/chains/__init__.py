"""kingpost's Chains SDK, with the names and behaviour of Truss Chains (`truss_chains`).

A chain file written with `import truss_chains as chains` deploys unchanged: kingpost's CLI and
runners make `truss_chains` name this package (loading.install_alias).

    import kingpost.chains as chains

    class RandInt(chains.ChainletBase):
        async def run_remote(self, max_value: int) -> int: ...

    @chains.mark_entrypoint
    class HelloWorld(chains.ChainletBase):
        def __init__(self, rand_int: RandInt = chains.depends(RandInt, retries=3)) -> None: ...
        async def run_remote(self, max_value: int) -> str: ...
"""

from kingpost.chains.framework import (
    ChainletBase,
    depends,
    depends_context,
    mark_entrypoint,
    run_local,
)
from kingpost.chains.graph import ChainValidationError
from kingpost.chains.public_types import (
    Assets,
    BasetenImage,
    ChainletOptions,
    ChainsRuntimeError,
    ChainsUsageError,
    Compute,
    CustomImage,
    DeployedServiceDescriptor,
    DeploymentContext,
    DockerImage,
    Environment,
    GenericRemoteException,
    RemoteConfig,
    RemoteErrorDetail,
    RPCOptions,
)
from kingpost.chains import streaming
from kingpost.chains.pydantic_numpy import NumpyArrayField


def make_abs_path_here(file_path: str) -> str:
    """A path relative to the calling file, made absolute (truss's helper for requirements files)."""
    import inspect
    import pathlib

    caller = inspect.stack()[1].filename
    return str((pathlib.Path(caller).parent / file_path).resolve())


__all__ = [
    "Assets", "BasetenImage", "ChainValidationError", "ChainletBase", "ChainletOptions", "ChainsRuntimeError",
    "ChainsUsageError", "Compute", "CustomImage", "DeployedServiceDescriptor", "DeploymentContext",
    "DockerImage", "Environment", "GenericRemoteException", "NumpyArrayField", "RPCOptions", "RemoteConfig",
    "RemoteErrorDetail", "depends", "depends_context", "make_abs_path_here", "mark_entrypoint", "run_local",
    "streaming",
]

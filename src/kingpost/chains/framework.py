"""Chainlets as the user writes them: `ChainletBase`, `depends`, `depends_context`,
`mark_entrypoint` and `run_local`.

A Chainlet's dependencies are `__init__` parameters whose default is `depends(Cls)`; its context is
a trailing `context=depends_context()` parameter. Nothing constructs a Chainlet but the platform:
inside `run_local` (in-process instances), or in its runner (remote stubs for the dependencies).
Constructing one anywhere else is a `ChainsUsageError`, as in truss.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import pathlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from kingpost.chains.public_types import (
    ChainsUsageError,
    DeployedServiceDescriptor,
    DeploymentContext,
    RemoteConfig,
    RPCOptions,
)

ENTRYPOINT_ATTR = "_kingpost_chains_entrypoint"
CONTEXT_PARAM = "context"


@dataclass(frozen=True)
class DependencyMarker:
    """The default of a dependency parameter: which Chainlet, and how it is called."""

    chainlet_cls: type
    options: RPCOptions

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise ChainsUsageError(
            f"`{self.chainlet_cls.__name__}` was not injected: Chainlets are built by the platform "
            f"(deployed, or inside `chains.run_local()`), never instantiated directly")


@dataclass(frozen=True)
class ContextMarker:
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise ChainsUsageError("the DeploymentContext was not injected: use `chains.run_local()`")


def depends(chainlet_cls: type, retries: int = 1, timeout_sec: float = 600.0, use_binary: bool = False,
            concurrency_limit: int = 300) -> Any:
    """Declare a dependency on another Chainlet (as an `__init__` parameter's default)."""
    return DependencyMarker(chainlet_cls, RPCOptions(retries=retries, timeout_sec=timeout_sec,
                                                     use_binary=use_binary,
                                                     concurrency_limit=concurrency_limit))


def depends_context() -> Any:
    """Declare the `context: DeploymentContext` parameter of `__init__`."""
    return ContextMarker()


# Who may construct Chainlets now: None (nobody), or a factory filling in the injected arguments.
_injector: contextvars.ContextVar[Injector | None] = contextvars.ContextVar("kingpost_chains_injector",
                                                                            default=None)


class Injector:
    """Fills a Chainlet's dependency and context parameters when it is constructed."""

    def kwargs_for(self, cls: type) -> dict[str, Any]:
        raise NotImplementedError


class ChainletBase:
    """Base class of every Chainlet. Subclasses define `run_remote` and may set `remote_config`."""

    remote_config: ClassVar[RemoteConfig] = RemoteConfig()
    meta_data: ClassVar[Any] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        original = cls.__dict__.get("__init__")
        if original is None:
            return

        @functools.wraps(original)
        def __init__(self: Any, *args: Any, **kw: Any) -> None:
            injector = _injector.get()
            if injector is None:
                raise ChainsUsageError(
                    f"Chainlet `{type(self).__name__}` cannot be instantiated directly: it is built by "
                    f"the platform when deployed, or inside `with chains.run_local():`")
            if type(self) is cls:  # inject once, for the class actually being built
                for name, value in injector.kwargs_for(cls).items():
                    kw.setdefault(name, value)
            original(self, *args, **kw)

        cls.__init__ = __init__  # type: ignore[misc]


def mark_entrypoint(cls_or_name: Any = None) -> Any:
    """`@chains.mark_entrypoint` or `@chains.mark_entrypoint("Chain Name")` on exactly one Chainlet."""
    if isinstance(cls_or_name, type):
        setattr(cls_or_name, ENTRYPOINT_ATTR, cls_or_name.__name__)
        return cls_or_name

    def mark(cls: type) -> type:
        setattr(cls, ENTRYPOINT_ATTR, cls_or_name or cls.__name__)
        return cls

    return mark


def is_entrypoint(cls: type) -> bool:
    return ENTRYPOINT_ATTR in cls.__dict__


def chain_display_name(cls: type) -> str:
    return str(cls.__dict__.get(ENTRYPOINT_ATTR) or cls.__name__)


def display_name(cls: type) -> str:
    config = getattr(cls, "remote_config", None)
    return (config.name if isinstance(config, RemoteConfig) and config.name else None) or cls.__name__


def init_markers(cls: type) -> tuple[dict[str, DependencyMarker], bool]:
    """A Chainlet's dependency parameters (name → marker) and whether it takes the context."""
    init = cls.__dict__.get("__init__")
    if init is None:
        return {}, False
    sig = inspect.signature(inspect.unwrap(init))
    deps = {name: p.default for name, p in sig.parameters.items() if isinstance(p.default, DependencyMarker)}
    takes_context = any(isinstance(p.default, ContextMarker) for p in sig.parameters.values())
    return deps, takes_context


def dependencies(cls: type) -> list[type]:
    return [m.chainlet_cls for m in init_markers(cls)[0].values()]


@contextlib.contextmanager
def injecting(injector: Injector) -> Iterator[None]:
    token = _injector.set(injector)
    try:
        yield
    finally:
        _injector.reset(token)


class _LocalInjector(Injector):
    """run_local: one in-process instance per Chainlet class; mocks passed in win."""

    def __init__(self, context: DeploymentContext, overrides: Mapping[type, Any]) -> None:
        self._context = context
        self._instances: dict[type, Any] = dict(overrides)

    def kwargs_for(self, cls: type) -> dict[str, Any]:
        deps, takes_context = init_markers(cls)
        kwargs: dict[str, Any] = {name: self.instance(m.chainlet_cls) for name, m in deps.items()}
        if takes_context:
            kwargs[CONTEXT_PARAM] = self._context
        return kwargs

    def instance(self, cls: type) -> Any:
        if cls not in self._instances:
            self._instances[cls] = cls()
        return self._instances[cls]


@contextlib.contextmanager
def run_local(secrets: Mapping[str, str] | None = None, data_dir: pathlib.Path | str | None = None,
              chainlet_to_service: Mapping[str, DeployedServiceDescriptor] | None = None,
              ) -> Iterator[None]:
    """Run a Chain in this process: dependencies become local instances (no network, no
    serialization). Pass a mock for any Chainlet by constructing it yourself:
    `HelloWorld(rand_int=FakeRandInt())`."""
    context = DeploymentContext(secrets=dict(secrets or {}), chainlet_to_service=dict(chainlet_to_service or {}),
                                data_dir=pathlib.Path(data_dir) if data_dir else None)
    with injecting(_LocalInjector(context, {})):
        yield

"""A Truss model class: found by file path, constructed with the kwargs it asks for, and described.

Truss's contract (reference/truss-compat.md §2.1–2.2):
- the module is loaded by file path, the class by name;
- `__init__` gets `config`, `data_dir`, `secrets`, `environment`, `lazy_data_resolver` only when it
  names them or takes **kwargs;
- `preprocess`, `predict`, `postprocess` each take `()`, `(inputs)`, `(request)` or `(inputs, request)`,
  may be sync or async, and may be (async) generators;
- when the first parameter of `preprocess` (or of `predict`, without preprocess) is annotated with a
  pydantic model, the request body is validated into it.

"Request" parameters are recognised by annotation (`fastapi.Request`, `starlette.requests.Request`,
or this package's `ModelRequest`; also as strings) or, without an annotation, by the name `request`.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib.util
import inspect
import pathlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

MODEL_METHODS = ("preprocess", "predict", "postprocess")
# truss-server's OpenAI-compatible routes and the model method each calls (reference §2.4), reached
# through `{prefix}/sync/v1/...`.
OPENAI_ROUTES = {
    "/v1/chat/completions": "chat_completions",
    "/v1/completions": "completions",
    "/v1/embeddings": "embeddings",
    "/v1/messages": "messages",
    "/v1/responses": "responses",
}
INIT_KWARGS = ("config", "data_dir", "secrets", "environment", "lazy_data_resolver")
_REQUEST_TYPE_NAMES = frozenset({"Request", "ModelRequest"})
_REQUEST_MODULES = ("fastapi", "starlette", "kingpost_runner")


class ModelDefinitionError(Exception):
    """The model file or class breaks the Truss contract (the message says how)."""


class ArgMode(enum.Enum):
    NONE = enum.auto()
    INPUTS = enum.auto()
    REQUEST = enum.auto()
    INPUTS_AND_REQUEST = enum.auto()


@dataclasses.dataclass(frozen=True)
class Method:
    name: str
    fn: Callable[..., Any]
    args: ArgMode
    is_async: bool  # a coroutine function: awaited on the event loop
    is_generator: bool  # a (async) generator function: its iterator is streamed
    input_type: type | None  # pydantic model the first parameter is annotated with

    def call_args(self, inputs: Any, request: Any) -> tuple[Any, ...]:
        if self.args is ArgMode.NONE:
            return ()
        if self.args is ArgMode.INPUTS:
            return (inputs,)
        if self.args is ArgMode.REQUEST:
            return (request,)
        return (inputs, request)


@dataclasses.dataclass(frozen=True)
class ModelMethods:
    # None for a websocket model (truss allows `predict` or `websocket`, not both).
    predict: Method | None
    preprocess: Method | None = None
    postprocess: Method | None = None
    is_healthy: Callable[[], Any] | None = None
    setup_environment: Callable[[Any], Any] | None = None
    # The OpenAI-style methods the model has, by name (OPENAI_ROUTES).
    openai: Mapping[str, Method] = dataclasses.field(default_factory=dict)
    # `async def websocket(self, ws)`, served at `{prefix}/websocket` (websocket.py).
    websocket: Callable[[Any], Any] | None = None

    @property
    def input_type(self) -> type | None:
        first = self.preprocess or self.predict
        return None if first is None else first.input_type

    @property
    def skip_input_parsing(self) -> bool:
        """The first method takes only the request: the body is not decoded for it."""
        first = self.preprocess or self.predict
        return first is None or first.args is ArgMode.REQUEST


def load_model_class(model_file: pathlib.Path, class_name: str) -> type:
    """Import `model_file` by path (as truss does: `model/model.py` becomes module `model.model`)."""
    if not model_file.is_file():
        raise ModelDefinitionError(f"model file not found: {model_file}")
    path = model_file.resolve()
    stem, parent = path.stem, path.parent.name
    module_name = f"{parent}.{stem}" if parent == stem else stem
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ModelDefinitionError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    if "." in module_name:
        module.__package__ = None  # relative imports in the top-level model file stay unsupported
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    try:
        cls = getattr(module, class_name)
    except AttributeError:
        raise ModelDefinitionError(f"{model_file.name} defines no class `{class_name}`") from None
    if not inspect.isclass(cls):
        raise ModelDefinitionError(f"`{class_name}` in {model_file.name} is not a class")
    return cls


def init_kwargs(cls: type, available: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of `available` that the class's __init__ names (all of it, with **kwargs)."""
    params = inspect.signature(cls).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return {k: v for k, v in available.items() if takes_any or k in params}


def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    try:
        return inspect.signature(fn, eval_str=True)
    except Exception:  # unresolvable string annotations: keep them as strings
        return inspect.signature(fn)


def is_request_annotation(annotation: Any) -> bool:
    if annotation is inspect.Parameter.empty or annotation is None:
        return False
    if isinstance(annotation, str):
        return annotation.rsplit(".", 1)[-1] in _REQUEST_TYPE_NAMES
    if inspect.isclass(annotation):
        return any(
            k.__name__ in _REQUEST_TYPE_NAMES and k.__module__.startswith(_REQUEST_MODULES)
            for k in annotation.__mro__
        )
    return False


def _is_request_param(param: inspect.Parameter) -> bool:
    if param.annotation is inspect.Parameter.empty:
        return param.name == "request"
    return is_request_annotation(param.annotation)


def pydantic_model_of(annotation: Any) -> type | None:
    """The annotation, if it is a pydantic BaseModel subclass (pydantic is never imported here:
    a model that annotates with one has imported it already)."""
    pydantic = sys.modules.get("pydantic")
    if pydantic is None or not inspect.isclass(annotation):
        return None
    return annotation if issubclass(annotation, pydantic.BaseModel) else None


def describe_method(name: str, fn: Callable[..., Any]) -> Method:
    params = [
        p for p in _signature(fn).parameters.values()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    if len(params) == 0:
        args = ArgMode.NONE
    elif len(params) == 1:
        args = ArgMode.REQUEST if is_request_annotation(params[0].annotation) else ArgMode.INPUTS
    elif len(params) == 2:
        if is_request_annotation(params[0].annotation):
            raise ModelDefinitionError(
                f"`{name}` with two arguments must take the request second, got {_signature(fn)}"
            )
        if not _is_request_param(params[1]):
            raise ModelDefinitionError(
                f"`{name}` with two arguments must take (inputs, request: fastapi.Request), "
                f"got {_signature(fn)}"
            )
        args = ArgMode.INPUTS_AND_REQUEST
    else:
        raise ModelDefinitionError(f"`{name}` takes at most two arguments, got {_signature(fn)}")
    input_type = None
    if args in (ArgMode.INPUTS, ArgMode.INPUTS_AND_REQUEST):
        input_type = pydantic_model_of(params[0].annotation)
    return Method(
        name=name,
        fn=fn,
        args=args,
        is_async=inspect.iscoroutinefunction(fn),
        is_generator=inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn),
        input_type=input_type,
    )


def describe(model: object) -> ModelMethods:
    """Check the model's methods against the contract and say how to call each."""
    found = {
        n: describe_method(n, getattr(model, n)) for n in MODEL_METHODS if callable(getattr(model, n, None))
    }
    name = type(model).__name__
    websocket = getattr(model, "websocket", None)
    if callable(websocket):
        if "predict" in found:
            raise ModelDefinitionError(f"{name} has both `predict` and `websocket`: a Truss model serves one of them")
        if "preprocess" in found or "postprocess" in found:
            raise ModelDefinitionError(f"{name} has a `websocket`: it cannot have `preprocess` or `postprocess`")
        if not inspect.iscoroutinefunction(websocket) or len(_signature(websocket).parameters) != 1:
            raise ModelDefinitionError(f"`websocket` must be `async def websocket(self, ws)`, got {_signature(websocket)}")
        return ModelMethods(predict=None, websocket=websocket, is_healthy=_callable_or_none(model, "is_healthy"),
                            setup_environment=_callable_or_none(model, "setup_environment"))
    if "predict" not in found:
        raise ModelDefinitionError(f"{name} has no `predict` method")
    if "preprocess" in found and found["predict"].args is ArgMode.REQUEST:
        raise ModelDefinitionError("`predict` cannot take only the request when there is a `preprocess`")
    if "postprocess" in found and found["postprocess"].args is ArgMode.REQUEST:
        raise ModelDefinitionError("`postprocess` cannot take only the request")
    openai = {n: describe_method(n, getattr(model, n)) for n in OPENAI_ROUTES.values()
              if callable(getattr(model, n, None))}
    return ModelMethods(
        openai=openai,
        predict=found["predict"],
        preprocess=found.get("preprocess"),
        postprocess=found.get("postprocess"),
        is_healthy=_callable_or_none(model, "is_healthy"),
        setup_environment=_callable_or_none(model, "setup_environment"),
    )


def _callable_or_none(model: object, name: str) -> Callable[..., Any] | None:
    method = getattr(model, name, None)
    return method if callable(method) else None

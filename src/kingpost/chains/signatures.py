"""A Chainlet's `run_remote`, read once: its parameters and return type, checked against the I/O
types a Chain may send, and turned into the pydantic models that parse its requests and responses.

Allowed (as in truss): int, float, complex, bool, str, bytes, None, pydantic models, list[...]/dict[...]
of those (built-in generics), tuple[...] returns, Optional/unions of those. A streaming endpoint is an
async generator annotated `AsyncIterator[str]` or `AsyncIterator[bytes]` (truss's rule); structured data
streams as bytes through `chains.streaming`.
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from dataclasses import dataclass
from typing import Any

import pydantic

ENDPOINT = "run_remote"
_SCALARS = (int, float, complex, bool, str, bytes, type(None))
_ITERATORS = (collections.abc.AsyncIterator, collections.abc.Iterator, collections.abc.Generator,
              collections.abc.AsyncGenerator)
_STREAM_ITEMS = (str, bytes)


class SignatureError(ValueError):
    """`run_remote` does not meet the rules; the message names what breaks which."""


@dataclass(frozen=True)
class Endpoint:
    name: str
    is_async: bool
    params: tuple[tuple[str, Any, Any], ...]  # (name, annotation, default or inspect._empty)
    returns: Any
    input_model: type[pydantic.BaseModel]
    output_model: type[pydantic.RootModel[Any]]
    stream_item: type | None = None  # str or bytes for a streaming endpoint

    @property
    def is_streaming(self) -> bool:
        return self.stream_item is not None

    def parse_input(self, payload: Any) -> dict[str, Any]:
        """The keyword arguments for `run_remote` from a decoded request body (ValidationError if bad)."""
        parsed = self.input_model.model_validate(payload)
        return {name: getattr(parsed, name) for name in parsed.model_fields_set | self._required}

    @property
    def _required(self) -> set[str]:
        return {name for name, _, default in self.params if default is inspect.Parameter.empty}

    def dump_input(self, kwargs: dict[str, Any], mode: str = "json") -> Any:
        return self.input_model.model_validate(kwargs).model_dump(mode=mode, exclude_unset=True)

    def dump_output(self, value: Any, mode: str = "json") -> Any:
        return self.output_model.model_validate(value).model_dump(mode=mode)

    def parse_output(self, payload: Any) -> Any:
        return self.output_model.model_validate(payload).root


def check_type(annotation: Any, where: str) -> None:
    if isinstance(annotation, str):
        raise SignatureError(f"{where} is the string annotation {annotation!r}: Chains need real types "
                             f"(remove `from __future__ import annotations`)")
    if annotation in _SCALARS or annotation is None:
        return
    if inspect.isclass(annotation) and (issubclass(annotation, pydantic.BaseModel)
                                        or hasattr(annotation, "__get_pydantic_core_schema__")):
        return
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            check_type(arg, where)
        return
    if origin is typing.Annotated:
        check_type(typing.get_args(annotation)[0], where)
        return
    if origin in (list, dict, tuple) and not hasattr(annotation, "_name"):  # builtin generics only
        for arg in typing.get_args(annotation):
            if arg is not Ellipsis:
                check_type(arg, where)
        return
    if origin in _ITERATORS:
        raise SignatureError(f"{where} is a stream ({annotation}): only `run_remote`'s return type may be "
                             f"one (AsyncIterator[str] or AsyncIterator[bytes], with `yield`)")
    raise SignatureError(f"{where} has type {annotation!r}, which a Chain cannot send: use int, float, bool, "
                         f"str, bytes, None, a pydantic model, or list[...]/dict[...]/tuple[...] of those")


def read_endpoint(cls: type) -> Endpoint:
    """`cls.run_remote`, checked. Raises SignatureError naming the parameter at fault."""
    fn = cls.__dict__.get(ENDPOINT) or getattr(cls, ENDPOINT, None)
    if fn is None or not callable(fn):
        raise SignatureError(f"Chainlet `{cls.__name__}` has no `{ENDPOINT}` method")
    if inspect.isgeneratorfunction(fn):
        raise SignatureError(f"`{cls.__name__}.{ENDPOINT}` is a sync generator: streaming endpoints (with "
                             f"`yield`) must be `async def`")
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable string annotations: report them one by one below
        hints = {}
    params = []
    for i, (name, p) in enumerate(sig.parameters.items()):
        if i == 0 and name == "self":
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise SignatureError(f"`{cls.__name__}.{ENDPOINT}` takes *{name}: every parameter must be named")
        annotation = hints.get(name, p.annotation)
        if annotation is inspect.Parameter.empty:
            raise SignatureError(f"parameter `{name}` of `{cls.__name__}.{ENDPOINT}` has no type annotation")
        check_type(annotation, f"parameter `{name}` of `{cls.__name__}.{ENDPOINT}`")
        params.append((name, annotation, p.default))
    returns = hints.get("return", sig.return_annotation)
    if returns is inspect.Signature.empty:
        raise SignatureError(f"`{cls.__name__}.{ENDPOINT}` has no return annotation")
    stream_item = _stream_item(cls, returns, streaming=inspect.isasyncgenfunction(fn))
    if stream_item is None:
        check_type(returns, f"the return type of `{cls.__name__}.{ENDPOINT}`")
    fields = {name: (ann, ... if default is inspect.Parameter.empty else default)
              for name, ann, default in params}
    input_model = pydantic.create_model(f"{cls.__name__}Input", **fields)  # type: ignore[call-overload]
    output_model = pydantic.RootModel[stream_item or returns]  # type: ignore[valid-type]
    return Endpoint(name=cls.__name__, is_async=inspect.iscoroutinefunction(fn) or stream_item is not None,
                    params=tuple(params), returns=returns, input_model=input_model, output_model=output_model,
                    stream_item=stream_item)


def _stream_item(cls: type, returns: Any, streaming: bool) -> type | None:
    """str or bytes for a streaming endpoint (an async generator returning AsyncIterator[str|bytes]);
    None for any other; SignatureError when the two halves disagree."""
    where = f"`{cls.__name__}.{ENDPOINT}`"
    origin = typing.get_origin(returns) or returns
    if origin not in _ITERATORS:
        if streaming:
            raise SignatureError(f"{where} has `yield` (it streams), so its return type must be "
                                 f"AsyncIterator[str] or AsyncIterator[bytes], not {returns!r}")
        return None
    if not streaming:
        raise SignatureError(f"{where} returns a stream ({returns!r}) but has no `yield`: a streaming "
                             f"endpoint is an async generator")
    args = typing.get_args(returns)
    if origin not in (collections.abc.AsyncIterator, collections.abc.AsyncGenerator) or not args \
            or args[0] not in _STREAM_ITEMS:
        raise SignatureError(f"{where} streams {returns!r}: a stream is AsyncIterator[str] or "
                             f"AsyncIterator[bytes]; for structured data use chains.streaming's "
                             f"stream_writer and stream_reader")
    return typing.cast(type, args[0])


def describe_validation_error(error: pydantic.ValidationError) -> str:
    """truss's wording: "Input Parsing Error: `max_value`: Field required."."""
    parts = []
    for e in error.errors():
        loc = ".".join(str(x) for x in e.get("loc", ()))
        parts.append(f"`{loc}`: {e.get('msg', 'invalid')}." if loc else f"{e.get('msg', 'invalid')}.")
    return "Input Parsing Error: " + " ".join(parts)

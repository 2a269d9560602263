"""A Chainlet's `run_remote`, read once: its parameters and return type, checked against the I/O
types a Chain may send, and turned into the pydantic models that parse its requests and responses.

Allowed (as in truss): int, float, complex, bool, str, bytes, None, pydantic models, list[...]/dict[...]
of those (built-in generics), tuple[...] returns, Optional/unions of those. Streaming endpoints
(AsyncIterator) are not served by kingpost yet and are refused by name.
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
    if origin in (collections.abc.AsyncIterator, collections.abc.Iterator, collections.abc.Generator,
                  collections.abc.AsyncGenerator):
        raise SignatureError(f"{where} is a stream ({annotation}); streaming Chainlets are not supported "
                             f"by kingpost yet")
    raise SignatureError(f"{where} has type {annotation!r}, which a Chain cannot send: use int, float, bool, "
                         f"str, bytes, None, a pydantic model, or list[...]/dict[...]/tuple[...] of those")


def read_endpoint(cls: type) -> Endpoint:
    """`cls.run_remote`, checked. Raises SignatureError naming the parameter at fault."""
    fn = cls.__dict__.get(ENDPOINT) or getattr(cls, ENDPOINT, None)
    if fn is None or not callable(fn):
        raise SignatureError(f"Chainlet `{cls.__name__}` has no `{ENDPOINT}` method")
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise SignatureError(f"`{cls.__name__}.{ENDPOINT}` is a generator; streaming Chainlets are not "
                             f"supported by kingpost yet")
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
    check_type(returns, f"the return type of `{cls.__name__}.{ENDPOINT}`")
    fields = {name: (ann, ... if default is inspect.Parameter.empty else default)
              for name, ann, default in params}
    input_model = pydantic.create_model(f"{cls.__name__}Input", **fields)  # type: ignore[call-overload]
    output_model = pydantic.RootModel[returns]  # type: ignore[valid-type]
    return Endpoint(name=cls.__name__, is_async=inspect.iscoroutinefunction(fn), params=tuple(params),
                    returns=returns, input_model=input_model, output_model=output_model)


def describe_validation_error(error: pydantic.ValidationError) -> str:
    """truss's wording: "Input Parsing Error: `max_value`: Field required."."""
    parts = []
    for e in error.errors():
        loc = ".".join(str(x) for x in e.get("loc", ()))
        parts.append(f"`{loc}`: {e.get('msg', 'invalid')}." if loc else f"{e.get('msg', 'invalid')}.")
    return "Input Parsing Error: " + " ".join(parts)

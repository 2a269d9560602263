"""Exceptions across Chainlets: raised in one, carried as a `RemoteErrorDetail`, raised again in
its caller as the same builtin class (or `GenericRemoteException`), with the chained tree of
remote tracebacks in the message, root cause at the bottom (truss's format).

Pure: exceptions and JSON text in and out.
"""

from __future__ import annotations

import builtins
import json
import sys
import traceback
from typing import Any

import pydantic

from kingpost.chains.public_types import GenericRemoteException, RemoteErrorDetail, StackFrame

TREE_HEADER = "(showing chained remote errors, root error at the bottom)"
# Frames from these paths are the platform's, not the user's: left out of a remote traceback.
_PLATFORM_PARTS = ("/kingpost/", "/kingpost_runner/", "/site-packages/", "/asyncio/", "/concurrent/",
                   "/anyio/", "/threading.py", "/grpc/")


class ChainletHTTPError(Exception):
    """Raised by a served Chainlet: the runner answers `status_code` with `detail` as the message."""

    def __init__(self, status_code: int, detail: Any) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


def detail_of(exc: BaseException) -> RemoteErrorDetail:
    frames = [
        StackFrame(filename=f.filename, lineno=f.lineno, name=f.name, line=f.line)
        for f in traceback.extract_tb(exc.__traceback__)
        if not any(part in f.filename for part in _PLATFORM_PARTS)
    ]
    return RemoteErrorDetail(exception_cls_name=type(exc).__name__,
                             exception_module_name=type(exc).__module__,
                             exception_message=str(exc), user_stack_trace=frames)


def chained_message(chainlet: str, status: int, detail: RemoteErrorDetail) -> str:
    """The message a caller's exception carries: its dependency's traceback, nested under a header."""
    inner = detail.format().replace(TREE_HEADER + "\n", "")
    body = "\n".join("│   " + line for line in inner.splitlines())
    return f"{TREE_HEADER}\n├─ Error calling dependency Chainlet `{chainlet}`, HTTP status={status}.\n{body}"


def parse_detail(message: str) -> RemoteErrorDetail | None:
    try:
        return RemoteErrorDetail.model_validate(json.loads(message))
    except (ValueError, pydantic.ValidationError, TypeError):
        return None


def exception_class(detail: RemoteErrorDetail) -> type[BaseException]:
    candidate = getattr(builtins, detail.exception_cls_name, None)
    if candidate is None and detail.exception_module_name:
        module = sys.modules.get(detail.exception_module_name)
        candidate = getattr(module, detail.exception_cls_name, None) if module else None
    if isinstance(candidate, type) and issubclass(candidate, Exception):
        return candidate
    return GenericRemoteException


def remote_exception(chainlet: str, status: int, message: str) -> BaseException:
    """The exception to raise in the caller for its dependency's error response."""
    detail = parse_detail(message)
    if detail is None:
        return GenericRemoteException(
            f"Error calling dependency Chainlet `{chainlet}`, HTTP status={status}: {message!r}")
    text = chained_message(chainlet, status, detail)
    cls = exception_class(detail)
    try:
        return cls(text)
    except Exception:  # a class whose constructor wants more than a message
        return GenericRemoteException(text)

"""The one seam between `kingpost.errors` and gRPC statuses, for servers and clients alike.

Servers raise a KingpostError; `abort_on_error` (on each unary method of a servicer) or
`grpc_abort` (in a streaming handler) ends the RPC with the error's code and message, and its exact
HTTP status in the trailer `x-http-status`, which the gateway uses so that statuses gRPC has no code
for (413, a model's own 418) reach REST clients unchanged. Clients get the same class back from
`from_rpc_error` (kingpost.rpc calls it for every outgoing RPC).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc

from kingpost.errors import (
    Conflict, DeadlineExceeded, Internal, InvalidArgument, KingpostError, NotFound, PayloadTooLarge,
    PermissionDenied, TooManyRequests, Unauthenticated, Unavailable,
)

HTTP_STATUS_KEY = "x-http-status"

# A status back into the platform's class. Each class goes out as grpc.StatusCode[cls.wire_code];
# coming back, ALREADY_EXISTS (from peers that are not kingpost) is a Conflict too, INTERNAL is
# always Internal (a ModelError is told apart by its x-http-status only), and codes not listed
# (UNKNOWN, CANCELLED, ...) are Internal.
_CLASS_BY_CODE: dict[grpc.StatusCode, type[KingpostError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: Conflict,
    grpc.StatusCode.FAILED_PRECONDITION: Conflict,
    grpc.StatusCode.OUT_OF_RANGE: PayloadTooLarge,
    grpc.StatusCode.RESOURCE_EXHAUSTED: TooManyRequests,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.INTERNAL: Internal,
}

# Retrying these cannot make things worse: the call did not run, or runs idempotently.
RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE})

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def status_code(err: KingpostError) -> grpc.StatusCode:
    """The gRPC code `err` travels as."""
    return grpc.StatusCode[err.wire_code]


def trailing_metadata(err: KingpostError) -> tuple[tuple[str, str], ...]:
    return ((HTTP_STATUS_KEY, str(err.http_status)),)


# The message travels as an HTTP/2 trailer (grpc-message): one that echoes a huge input (a 10 MB
# model name) broke the stream to Envoy, and the client got 502 instead of the 400.
MAX_MESSAGE_CHARS = 16 * 1024


def wire_message(message: str) -> str:
    """The message as sent: cut, and said to be, past MAX_MESSAGE_CHARS."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[:MAX_MESSAGE_CHARS] + f"... ({len(message) - MAX_MESSAGE_CHARS} more characters)"


async def grpc_abort(context: grpc.aio.ServicerContext, err: KingpostError) -> NoReturn:
    """End an RPC with `err`'s code, message and exact HTTP status."""
    context.set_trailing_metadata(trailing_metadata(err))
    await context.abort(status_code(err), wire_message(err.message))
    raise AssertionError("unreachable")  # context.abort raises


def abort_on_error(method: F) -> F:
    """For every unary-response handler: a KingpostError it raises ends the RPC via `grpc_abort`.

    The handler takes the servicer context last, as grpc passes it: `(self, request, context)` on a
    servicer. Anything else it raises propagates, and grpc answers UNKNOWN (a bug). Streaming-response
    handlers call `grpc_abort` themselves, where their stream needs it.
    """
    if not inspect.iscoroutinefunction(method):
        raise TypeError(f"abort_on_error wraps `async def` unary-response handlers; "
                        f"{method.__qualname__} is not one (a streaming handler calls grpc_abort itself)")

    @functools.wraps(method)
    async def wrapper(*args: Any) -> Any:
        try:
            return await method(*args)
        except KingpostError as e:
            await grpc_abort(args[-1], e)

    return wrapper  # type: ignore[return-value]


def from_rpc_error(e: grpc.RpcError) -> KingpostError:
    """Translate a gRPC status back into the platform's error (the client-side seam)."""
    code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
    message = (e.details() if hasattr(e, "details") else None) or str(code)
    status = None
    trailers = e.trailing_metadata() if hasattr(e, "trailing_metadata") else None
    for key, value in trailers or ():
        if key == HTTP_STATUS_KEY:
            try:
                status = int(value)
            except ValueError:
                status = None
    cls = _CLASS_BY_CODE.get(code, Internal)
    return cls(message, http_status=status)

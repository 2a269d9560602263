"""The platform's one error hierarchy, and its one mapping to gRPC codes and HTTP statuses.

    KingpostError
    ├── InvalidArgument      400  INVALID_ARGUMENT
    ├── Unauthenticated      401  UNAUTHENTICATED
    ├── PermissionDenied     403  PERMISSION_DENIED
    ├── NotFound             404  NOT_FOUND
    ├── Conflict             409  ALREADY_EXISTS / FAILED_PRECONDITION
    ├── PayloadTooLarge      413  (OUT_OF_RANGE + x-http-status)
    ├── TooManyRequests      429  RESOURCE_EXHAUSTED
    ├── DeadlineExceeded     504  DEADLINE_EXCEEDED
    ├── Unavailable          503  UNAVAILABLE
    ├── ModelError           500  (INTERNAL + x-http-status; the model raised)
    └── Internal             500  INTERNAL

Servers raise these; `grpc_abort` turns one into a status for the wire, and `from_rpc_error`
turns a status back into the same class on the client. The exact HTTP status travels in the
trailing metadata key `x-http-status`, which the gateway uses, so that statuses gRPC has no
code for (413, a model's own 418) reach REST clients unchanged.
"""

from __future__ import annotations

from typing import ClassVar, NoReturn

import grpc

HTTP_STATUS_KEY = "x-http-status"


class KingpostError(Exception):
    """Base of every error the platform raises on purpose."""

    http_status: ClassVar[int] = 500
    grpc_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if http_status is not None:
            self.http_status = http_status  # type: ignore[misc]

    def __str__(self) -> str:
        return self.message


class InvalidArgument(KingpostError):
    """The request is malformed or names something that breaks the rules."""

    http_status = 400
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class Unauthenticated(KingpostError):
    """No API key, or one that is not valid."""

    http_status = 401
    grpc_code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(KingpostError):
    """A valid key that may not do this."""

    http_status = 403
    grpc_code = grpc.StatusCode.PERMISSION_DENIED


class NotFound(KingpostError):
    """Unknown, deleted or inactive."""

    http_status = 404
    grpc_code = grpc.StatusCode.NOT_FOUND


class Conflict(KingpostError):
    """Refused because of the current state (a duplicate, an illegal transition)."""

    http_status = 409
    grpc_code = grpc.StatusCode.FAILED_PRECONDITION


class PayloadTooLarge(KingpostError):
    """A body or upload over the configured limit."""

    http_status = 413
    grpc_code = grpc.StatusCode.OUT_OF_RANGE


class TooManyRequests(KingpostError):
    """Back-pressure: a queue is full."""

    http_status = 429
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class DeadlineExceeded(KingpostError):
    """The request ran past its deadline."""

    http_status = 504
    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unavailable(KingpostError):
    """Not ready, or not reachable; trying again later may work."""

    http_status = 503
    grpc_code = grpc.StatusCode.UNAVAILABLE


class ModelError(KingpostError):
    """The model's own code failed, or answered with an error status of its own."""

    http_status = 500
    grpc_code = grpc.StatusCode.INTERNAL


class Internal(KingpostError):
    """A bug or failure in the platform itself."""

    http_status = 500
    grpc_code = grpc.StatusCode.INTERNAL


_BY_CODE: dict[grpc.StatusCode, type[KingpostError]] = {
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
    await context.abort(err.grpc_code, wire_message(err.message))
    raise AssertionError("unreachable")  # context.abort raises


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
    cls = _BY_CODE.get(code, Internal)
    return cls(message, http_status=status)

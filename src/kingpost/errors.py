"""The platform's one error hierarchy: what went wrong, its HTTP status, and the gRPC code it travels as.

    KingpostError                 HTTP  wire code
    ├── InvalidArgument            400  INVALID_ARGUMENT
    ├── Unauthenticated            401  UNAUTHENTICATED
    ├── PermissionDenied           403  PERMISSION_DENIED
    ├── NotFound                   404  NOT_FOUND
    ├── Conflict                   409  FAILED_PRECONDITION (ALREADY_EXISTS comes back as one too)
    ├── PayloadTooLarge            413  OUT_OF_RANGE (gRPC has no 413: x-http-status carries it)
    ├── TooManyRequests            429  RESOURCE_EXHAUSTED
    ├── DeadlineExceeded           504  DEADLINE_EXCEEDED
    ├── Unavailable                503  UNAVAILABLE
    ├── ModelError                 500  INTERNAL (the model raised; its own status rides in x-http-status)
    └── Internal                   500  INTERNAL

Pure: no grpc here, so the decision modules that raise these stay free of it. The wire code is the
name of a gRPC status code, spelled as a string; `kingpost.grpc_status` is the one seam that turns
an error into a gRPC status and back, with the exact HTTP status in the trailer `x-http-status`.
"""

from __future__ import annotations

from typing import ClassVar, Literal

# The names of the gRPC status codes these errors travel as (grpc.StatusCode members).
WireCode = Literal[
    "INVALID_ARGUMENT", "UNAUTHENTICATED", "PERMISSION_DENIED", "NOT_FOUND", "FAILED_PRECONDITION",
    "OUT_OF_RANGE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "UNAVAILABLE", "INTERNAL",
]


class KingpostError(Exception):
    """Base of every error the platform raises on purpose."""

    http_status: ClassVar[int] = 500
    wire_code: ClassVar[WireCode] = "INTERNAL"

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
    wire_code = "INVALID_ARGUMENT"


class Unauthenticated(KingpostError):
    """No API key, or one that is not valid."""

    http_status = 401
    wire_code = "UNAUTHENTICATED"


class PermissionDenied(KingpostError):
    """A valid key that may not do this."""

    http_status = 403
    wire_code = "PERMISSION_DENIED"


class NotFound(KingpostError):
    """Unknown, deleted or inactive."""

    http_status = 404
    wire_code = "NOT_FOUND"


class Conflict(KingpostError):
    """Refused because of the current state (a duplicate, an illegal transition)."""

    http_status = 409
    wire_code = "FAILED_PRECONDITION"


class PayloadTooLarge(KingpostError):
    """A body or upload over the configured limit."""

    http_status = 413
    wire_code = "OUT_OF_RANGE"


class TooManyRequests(KingpostError):
    """Back-pressure: a queue is full."""

    http_status = 429
    wire_code = "RESOURCE_EXHAUSTED"


class DeadlineExceeded(KingpostError):
    """The request ran past its deadline."""

    http_status = 504
    wire_code = "DEADLINE_EXCEEDED"


class Unavailable(KingpostError):
    """Not ready, or not reachable; trying again later may work."""

    http_status = 503
    wire_code = "UNAVAILABLE"


class ModelError(KingpostError):
    """The model's own code failed, or answered with an error status of its own."""

    http_status = 500
    wire_code = "INTERNAL"


class Internal(KingpostError):
    """A bug or failure in the platform itself."""

    http_status = 500
    wire_code = "INTERNAL"

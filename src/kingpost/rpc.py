"""Outgoing RPCs, wrapped once: deadline, retries on retryable codes only, auth metadata,
and the gRPC status → KingpostError translation.

    channel = rpc.channel("127.0.0.1:50051")
    stub = ManagementServiceStub(channel)
    reply = await rpc.call(stub.GetModel, GetModelRequest(model_id="m"), auth=rpc.api_key(key))
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

import grpc

from kingpost import keepalive
from kingpost.auth import INTERNAL_TOKEN_KEY
from kingpost.grpc_status import RETRYABLE_CODES, from_rpc_error
from kingpost.wire_limits import MESSAGE_LIMITS

T = TypeVar("T")

# This process's keepalive interval (kingpost.keepalive); a service sets it once at start from its
# settings (`kingpost.service.configure`), before it opens any channel.
_keepalive_seconds = keepalive.DEFAULT_SECONDS

Metadata = Sequence[tuple[str, str]]


def use_keepalive(seconds: float) -> None:
    """Set the keepalive interval of the channels and servers this process opens from now on."""
    global _keepalive_seconds
    keepalive.channel_options(seconds)  # refuses an interval below the minimum, naming it
    _keepalive_seconds = seconds


def channel_options(keepalive_seconds: float | None = None) -> tuple[tuple[str, int], ...]:
    """Message limits and the client's keepalive (this process's interval unless one is given)."""
    seconds = _keepalive_seconds if keepalive_seconds is None else keepalive_seconds
    return (*MESSAGE_LIMITS, *keepalive.channel_options(seconds))


def server_options(keepalive_seconds: float | None = None) -> tuple[tuple[str, int], ...]:
    """Message limits and the server's keepalive policy, which accepts every client's pings."""
    seconds = _keepalive_seconds if keepalive_seconds is None else keepalive_seconds
    return (*MESSAGE_LIMITS, *keepalive.server_options(seconds))


def channel(address: str, *, keepalive_seconds: float | None = None) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=channel_options(keepalive_seconds))


def api_key(key: str) -> Metadata:
    return (("authorization", f"Api-Key {key}"),)


def internal(token: str) -> Metadata:
    return ((INTERNAL_TOKEN_KEY, token),) if token else ()


async def call(
    method: Callable[..., Any],
    request: Any,
    *,
    auth: Metadata = (),
    timeout: float = 30.0,
    attempts: int = 3,
    backoff: float = 0.2,
    idempotency_key: str | None = None,
) -> Any:
    """A unary call with a deadline, retried only when the server never ran it (UNAVAILABLE)."""
    metadata = list(auth) + [("x-idempotency-key", idempotency_key or uuid.uuid4().hex)]
    for attempt in range(1, attempts + 1):
        try:
            return await method(request, timeout=timeout, metadata=metadata)
        except grpc.aio.AioRpcError as e:
            if e.code() in RETRYABLE_CODES and attempt < attempts:
                await asyncio.sleep(backoff * 2 ** (attempt - 1))
                continue
            raise from_rpc_error(e) from None
    raise AssertionError("unreachable")


async def stream(
    method: Callable[..., Any], request: Any, *, auth: Metadata = (), timeout: float | None = None
) -> AsyncIterator[Any]:
    """A server-streaming call; errors arrive as KingpostError."""
    try:
        async for item in method(request, timeout=timeout, metadata=list(auth)):
            yield item
    except grpc.aio.AioRpcError as e:
        raise from_rpc_error(e) from None

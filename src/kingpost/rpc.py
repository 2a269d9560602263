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

from kingpost.auth import INTERNAL_TOKEN_KEY
from kingpost.errors import RETRYABLE_CODES, from_rpc_error

T = TypeVar("T")

MAX_MESSAGE_BYTES = 256 * 1024 * 1024
# Request headers reach services as gRPC metadata. gRPC's own limits (8 KiB, past which calls fail
# at random, up to 16 KiB, past which all do, as RESOURCE_EXHAUSTED → 429, naming every header)
# would refuse what Envoy accepts; Envoy answers 431 itself above its max_request_headers_kb (32),
# and this leaves room for twice that (x-kingpost-host repeats the Host) and what Envoy adds.
MAX_METADATA_BYTES = 96 * 1024
METADATA_OPTIONS = (
    ("grpc.max_metadata_size", MAX_METADATA_BYTES),
    ("grpc.absolute_max_metadata_size", MAX_METADATA_BYTES),
)
CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    *METADATA_OPTIONS,
)

Metadata = Sequence[tuple[str, str]]


def channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)


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

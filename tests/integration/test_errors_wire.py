"""Errors raised in a real gRPC server reach a real client as the same class and HTTP status."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from kingpost import errors
from kingpost.grpc_status import abort_on_error, from_rpc_error, grpc_abort

SERVICE = "kingpost.test.Errors"


@abort_on_error  # how every unary handler ends: it raises
async def upload(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise errors.PayloadTooLarge(f"upload is {len(request)} bytes; the limit is 4")


async def teapot(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await grpc_abort(context, errors.ModelError("I'm a teapot", http_status=418))  # as streaming handlers do


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([
        grpc.method_handlers_generic_handler(SERVICE, {
            "Upload": grpc.unary_unary_rpc_method_handler(upload),
            "Teapot": grpc.unary_unary_rpc_method_handler(teapot),
        })
    ])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            yield ch
    finally:
        await server.stop(grace=None)


async def call(channel: grpc.aio.Channel, method: str, body: bytes) -> errors.KingpostError:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await channel.unary_unary(f"/{SERVICE}/{method}")(body, timeout=10)
    return from_rpc_error(e.value)


async def test_payload_too_large_arrives_as_413(channel: grpc.aio.Channel) -> None:
    err = await call(channel, "Upload", b"0123456789")
    assert type(err) is errors.PayloadTooLarge
    assert err.http_status == 413
    assert err.message == "upload is 10 bytes; the limit is 4"


async def test_a_models_own_status_crosses_the_wire(channel: grpc.aio.Channel) -> None:
    err = await call(channel, "Teapot", b"")
    assert err.http_status == 418
    assert err.message == "I'm a teapot"

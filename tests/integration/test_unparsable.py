"""A request its message type cannot parse answers INVALID_ARGUMENT (400) naming the type, not a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from kingpost.unparsable import UnparsableRequestInterceptor
from kingpost.v1 import management_pb2, management_pb2_grpc


class Management(management_pb2_grpc.ManagementServiceServicer):
    async def GetModel(self, request, context):  # noqa: N802
        return management_pb2.Model(id=request.model_id)


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server(interceptors=[UnparsableRequestInterceptor()])
    management_pb2_grpc.add_ManagementServiceServicer_to_server(Management(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            yield ch
    finally:
        await server.stop(grace=None)


def get_model(channel: grpc.aio.Channel):
    return channel.unary_unary("/kingpost.v1.ManagementService/GetModel", request_serializer=None,
                               response_deserializer=management_pb2.Model.FromString)


async def test_a_string_that_is_not_utf8_is_invalid_argument_naming_the_type(channel) -> None:
    not_utf8 = b"\x0a\x02\xc3\x28"  # field 1 (model_id), 2 bytes that are not UTF-8
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await get_model(channel)(not_utf8)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "kingpost.v1.GetModelRequest" in refused.value.details()


async def test_a_request_that_parses_reaches_the_servicer_every_time(channel) -> None:
    for name in ("m1", "m2"):  # the second call uses the handler wrapped by the first
        reply = await get_model(channel)(management_pb2.GetModelRequest(model_id=name).SerializeToString())
        assert reply.id == name

"""A request its message type cannot parse is the caller's fault: 400, not gRPC's own 500.

gRPC parses a request before the servicer runs; when protobuf refuses the bytes (a string field
that is not UTF-8, or what Envoy's transcoder makes of `{"files": {"a": {}}}` for a
`map<string, bytes>`), gRPC answers UNKNOWN, "Unexpected <class DecodeError>", which REST clients
see as a 500. This interceptor makes such a request answer INVALID_ARGUMENT (400), naming the
message type. It wraps each unary-request method's handler once, on its first call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError


class _Unparsable:
    """Stands in for a request that did not parse, so the wrapped handler can refuse it."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def _lenient(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    descriptor = getattr(getattr(deserialize, "__self__", None), "DESCRIPTOR", None)
    type_name = descriptor.full_name if descriptor is not None else "the method's request message"

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError:
            return _Unparsable(f"the request cannot be read as {type_name}: a field holds a value of "
                               f"the wrong type, or a string that is not UTF-8")

    return parse


def _refusing(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """`handler` with a deserializer that does not raise, and a behaviour that refuses what did not parse."""
    if handler.unary_unary is not None:
        unary = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if isinstance(request, _Unparsable):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
            return await unary(request, context)

        return handler._replace(request_deserializer=_lenient(handler.request_deserializer),
                                unary_unary=unary_unary)
    stream = handler.unary_stream

    async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, _Unparsable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
        async for reply in stream(request, context):
            yield reply

    return handler._replace(request_deserializer=_lenient(handler.request_deserializer),
                            unary_stream=unary_stream)


class UnparsableRequestInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or handler.request_streaming or handler.request_deserializer is None:
            return handler  # nothing to parse up front (a refused call's handler reads nothing)
        cached = self._wrapped.get(details.method)
        if cached is None or cached[0] is not handler:
            cached = self._wrapped[details.method] = (handler, _refusing(handler))
        return cached[1]

"""KServe V2 gRPC (`inference.GRPCInferenceService`, as Triton serves it) in front of Triton deployments.

A V2 client (tritonclient.grpc, any KServe client) talks to kingpost's gRPC address as it would to
Triton, naming the kingpost model in metadata:

    kingpost-model: <model id or name>           (required)
    kingpost-environment: <name> | kingpost-deployment: <id> | kingpost-target: development
                                                 (optional; production by default)
    authorization: Api-Key <key>

`ModelInfer` (and each request of a `ModelStreamInfer` stream, whose responses stream back as a
decoupled model sends them) goes the way of every predict (resolve, canary split, hold at zero, a slot, forward):
its request stays serialized bytes end to end, and the replica's runner hands them to its
tritonserver. The request's `model_name` is the model inside the deployment's repository.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from google.api import httpbody_pb2

from kingpost.errors import InvalidArgument
from kingpost.grpc_status import grpc_abort

SERVICE = "inference.GRPCInferenceService"
METHODS = ("ModelInfer",)
STREAM_METHOD = "ModelStreamInfer"
MODEL_KEY = "kingpost-model"
ENVIRONMENT_KEY = "kingpost-environment"
DEPLOYMENT_ID_KEY = "kingpost-deployment"
TARGET_KEY = "kingpost-target"
GRPC_PROTO = "application/grpc+proto"


@dataclass(frozen=True)
class V2Call:
    """What RouterServicer.Predict reads from a request, for one V2 gRPC call."""
    model_id: str
    target: str
    environment: str
    deployment_id: str
    body: httpbody_pb2.HttpBody
    v2_path: str


def call_of(method: str, data: bytes, metadata: tuple[tuple[str, str], ...]) -> V2Call:
    found = {k: v for k, v in metadata if k in (MODEL_KEY, ENVIRONMENT_KEY, DEPLOYMENT_ID_KEY, TARGET_KEY)}
    model = found.get(MODEL_KEY, "")
    if not model:
        raise InvalidArgument(f"V2 gRPC calls name the kingpost model in the metadata key {MODEL_KEY!r} "
                              "(a model id or name)")
    return V2Call(model, found.get(TARGET_KEY, ""), found.get(ENVIRONMENT_KEY, ""),
                  found.get(DEPLOYMENT_ID_KEY, ""), httpbody_pb2.HttpBody(content_type=GRPC_PROTO, data=data),
                  f"/{SERVICE}/{method}")


def handler(router) -> grpc.GenericRpcHandler:  # router: RouterServicer (no import: it imports us not)
    def unary(method: str):
        async def call(data: bytes, context: grpc.aio.ServicerContext) -> bytes:
            try:
                v2 = call_of(method, data, tuple(context.invocation_metadata() or ()))
            except InvalidArgument as e:
                await grpc_abort(context, e)
            chunks = [chunk.data async for chunk in router.Predict(v2, context)]
            return b"".join(chunks)

        return grpc.unary_unary_rpc_method_handler(call, request_deserializer=None, response_serializer=None)

    async def stream(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        """ModelStreamInfer: each request in turn, each of its responses passed on as it comes (a
        decoupled model's many, chunk by chunk)."""
        metadata = tuple(context.invocation_metadata() or ())
        async for data in requests:
            try:
                v2 = call_of(STREAM_METHOD, data, metadata)
            except InvalidArgument as e:
                await grpc_abort(context, e)
            async for chunk in router.Predict(v2, context):
                yield chunk.data

    handlers = {m: unary(m) for m in METHODS}
    handlers[STREAM_METHOD] = grpc.stream_stream_rpc_method_handler(
        stream, request_deserializer=None, response_serializer=None)
    return grpc.method_handlers_generic_handler(SERVICE, handlers)

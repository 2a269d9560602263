"""The async API's RPCs, as the router serves them: queue (a model's async_predict, a chain's
async_run_remote), count a deployment's queue, read or cancel one request. The queue itself is
async_queue.py's; which deployment a request names is the servicer's `_target`, as for Predict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from kingpost.errors import KingpostError, Unavailable
from kingpost.grpc_status import HTTP_STATUS_KEY, abort_on_error
from kingpost.v1 import inference_pb2
from kingpost_router.async_queue import AsyncQueue
from kingpost_router.routes import HOST_KEY, Deployment, RouteSnapshot, model_from_host


def metadata_value(context: grpc.aio.ServicerContext, key: str) -> str:
    for k, value in context.invocation_metadata() or ():
        if k == key:
            return value
    return ""


class AsyncFront:
    """Mixed into RouterServicer, which provides the route snapshot, `_target` and `async_queue`."""

    _snapshot: RouteSnapshot
    async_queue: AsyncQueue | None

    if TYPE_CHECKING:
        def _target(self, request: inference_pb2.AsyncPredictRequest | inference_pb2.GetAsyncQueueStatusRequest,
                    context: grpc.aio.ServicerContext) -> Deployment: ...

    @abort_on_error
    async def AsyncRunRemote(self, request: inference_pb2.AsyncRunRemoteRequest,
                             context: grpc.aio.ServicerContext) -> inference_pb2.AsyncPredictResponse:
        """A chain's entrypoint, queued: AsyncPredict on the model that serves it (as RunRemote)."""
        return await self.AsyncPredict(inference_pb2.AsyncPredictRequest(
            model_id=request.chain_id, target=request.target, environment=request.environment,
            deployment_id=request.deployment_id, body=request.body), context)

    @abort_on_error
    async def AsyncPredict(self, request: inference_pb2.AsyncPredictRequest,
                           context: grpc.aio.ServicerContext) -> inference_pb2.AsyncPredictResponse:
        deployment = self._target(request, context)
        request_id = await self._async_queue().enqueue(deployment, request.body.data, context.invocation_metadata())
        await context.send_initial_metadata(((HTTP_STATUS_KEY, "201"),))  # Baseten's 201 Created
        return inference_pb2.AsyncPredictResponse(request_id=request_id)

    @abort_on_error
    async def GetAsyncQueueStatus(self, request: inference_pb2.GetAsyncQueueStatusRequest,
                                  context: grpc.aio.ServicerContext) -> inference_pb2.GetAsyncQueueStatusResponse:
        return await self._async_queue().queue_status(self._target(request, context))

    @abort_on_error
    async def GetAsyncRequest(self, request: inference_pb2.GetAsyncRequestRequest,
                              context: grpc.aio.ServicerContext) -> inference_pb2.GetAsyncRequestResponse:
        return await self._async_queue().status(request.request_id, self._model_ids(request.model_id, context))

    @abort_on_error
    async def CancelAsyncRequest(self, request: inference_pb2.CancelAsyncRequestRequest,
                                 context: grpc.aio.ServicerContext) -> inference_pb2.CancelAsyncRequestResponse:
        return await self._async_queue().cancel(request.request_id, self._model_ids(request.model_id, context))

    def _async_queue(self) -> AsyncQueue:
        if self.async_queue is None:
            raise Unavailable("async inference is not available yet: the router is not connected to NATS")
        return self.async_queue

    def _model_ids(self, model_id: str, context: grpc.aio.ServicerContext) -> tuple[str, ...]:
        """The id and name of the model the route names (by path or Host); () when none."""
        key = model_id
        if not key:
            try:
                key = model_from_host(metadata_value(context, HOST_KEY))
            except KingpostError:  # a bare path on a host that names no model: any model's request
                return ()
        model = self._snapshot.by_id.get(key) or self._snapshot.by_name.get(key)
        # Not in the route table (deleted, or a router just started): its id still finds its requests.
        return (model.model_id, key) if model is not None else (key,)

"""InferenceService.Predict: resolve → take a replica slot → forward the bytes → stream the chunks back.

The hot path reads one immutable `RouteSnapshot` (routes.py), takes a slot from the slot queue
(slots.py) and forwards (forwarding.py); it parses no body, opens no channel and starts no task.
The rest lives beside it: waiting for a slot, holding at zero and pokes (activator.py),
concurrency samples (sampling.py), route-table updates (`apply_table`).

Errors: a `KingpostError` goes out through `grpc_abort` (code, message, `x-http-status`); a
runner's own status passes through unchanged (forwarding.py says why).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.api import httpbody_pb2
from opentelemetry.trace import Tracer

from kingpost.auth import KeyCache
from kingpost.bus import Publisher
from kingpost.errors import KingpostError, PayloadTooLarge
from kingpost.grpc_status import HTTP_STATUS_KEY, abort_on_error, grpc_abort
from kingpost.v1 import events_pb2, inference_pb2, inference_pb2_grpc, runner_pb2, scheduler_pb2
from kingpost_router import key_scope, metrics, sampling, sync_request, tracing
from kingpost_router.activator import Activator
from kingpost_router.async_front import AsyncFront, metadata_value
from kingpost_router.async_queue import AsyncQueue
from kingpost_router.forwarding import Forwarder, NotConnected, OnHeaders, Passthrough
from kingpost_router.request_kind import environment_label, v2_path_of
from kingpost_router.routes import (
    DEPLOYMENT_KEY,
    HOST_KEY,
    Deployment,
    Replica,
    RouteSnapshot,
    resolve,
)
from kingpost_router.xds_files import XdsFiles
from kingpost_router.settings import RouterSettings
from kingpost_router.slots import SlotQueue

log = logging.getLogger(__name__)

# Request metadata that matters to the model; everything else stays at the router.
FORWARDED_KEYS = frozenset({"accept", "traceparent", "tracestate", "x-baseten-request-id", "content-type",
                            # the V2 protocol's binary tensors: where the JSON header ends
                            "inference-header-content-length"})
# Envoy's id of each request (answered as X-Baseten-Request-Id), the model's x-baseten-request-id; a
# caller inside the platform may name its own x-baseten-request-id (Envoy removes a client's), which wins.
ENVOY_REQUEST_ID = "x-request-id"
# A Sync call carries the caller's headers in its request; its metadata only the trace's.
TRACE_KEYS = frozenset({"traceparent", "tracestate"})

_SYNC_REQUEST = inference_pb2.SyncRequest
Trace = tracing.RequestTrace | None
_perf_counter = time.perf_counter
_monotonic = time.monotonic


class RouterServicer(AsyncFront, inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, settings: RouterSettings, keys: KeyCache, *, seed: int | None = None,
                 tracer: Tracer | None = None) -> None:
        self._settings = settings
        self._tracer = tracer  # None: no spans (OTEL_EXPORTER_OTLP_ENDPOINT unset)
        self._keys = keys
        self._snapshot = RouteSnapshot.empty()
        rand = random.Random(seed)
        self._random = rand.random
        self.slots: SlotQueue[asyncio.Future[None]] = SlotQueue(
            max_queue=settings.max_queue_per_deployment,
            cold_start_timeout=settings.cold_start_timeout_seconds, randrange=rand.randrange)
        self.activator = Activator(self.slots, probe=lambda address: self.forwarder.wait_connectable(address))
        self.forwarder = Forwarder(release=self.activator.release,
                                   unreachable=self.activator.mark_unreachable,
                                   keepalive_seconds=settings.grpc_keepalive_seconds, tracer=tracer,
                                   close_grace=settings.request_timeout_seconds)
        self._take = self.slots.take
        self._max_body = settings.max_body_bytes
        self._timeout = settings.request_timeout_seconds
        metrics.REQUESTS.in_flight = lambda: self.in_flight
        metrics.REQUESTS.labels_of = self._labels_of
        self.async_queue: AsyncQueue | None = None  # set by main once NATS is up
        metrics.QUEUED.set_function(self.slots.total_queued)
        # data_path "envoy": each table also becomes Envoy's routes and clusters.
        self.envoy = None if settings.data_path != "envoy" else XdsFiles(
            settings.envoy_xds_dir, request_timeout_seconds=settings.request_timeout_seconds,
            max_queue_per_deployment=settings.max_queue_per_deployment, max_body_bytes=settings.max_body_bytes)

    def _labels_of(self, deployment_id: str) -> tuple[str, str] | None:
        deployment = self._snapshot.by_deployment.get(deployment_id)
        return None if deployment is None else (deployment.model_id, deployment.model_name)

    @property
    def snapshot(self) -> RouteSnapshot:
        return self._snapshot

    @property
    def outstanding(self) -> dict[str, int]:
        """Requests holding a slot, per replica id."""
        return self.slots.outstanding

    @property
    def in_flight(self) -> dict[str, int]:
        """Requests in a runner call, per deployment id."""
        return self.forwarder.in_flight

    def queued(self, deployment_id: str) -> int:
        """Requests waiting for a slot of this deployment now."""
        return self.slots.queued(deployment_id)

    @property
    def bus(self) -> Publisher | None:
        """Where hold-at-zero pokes go (set by main once NATS is up; None: no pokes)."""
        return self.activator.bus

    @bus.setter
    def bus(self, bus: Publisher | None) -> None:
        self.activator.bus = bus

    # -- route table and samples (background) ------------------------------------------------

    def apply_table(self, table: scheduler_pb2.RouteTable) -> None:
        """Swap in a new table: keys, routes, runner channels; held requests go to replicas that came."""
        snapshot = RouteSnapshot.from_table(table)
        closed = self.forwarder.set_addresses(snapshot.addresses())
        self._keys.replace(snapshot.api_key_sha256, snapshot.invoke_only)
        self._snapshot = snapshot
        self.activator.apply(snapshot)
        metrics.retain(snapshot.by_deployment)
        if self.envoy is not None:
            try:
                self.envoy.apply(snapshot)
            except (OSError, ValueError) as err:  # the next table tries again
                log.error("envoy: routes of table %d not written: %s", snapshot.version, err)
        log.info("route table v%d: %d models, %d runner channels (%d closed)",
                 snapshot.version, len(snapshot.by_id), self.forwarder.channels, closed)

    def concurrency_sample(self, now: float) -> events_pb2.ConcurrencySample:
        return sampling.concurrency_sample(self._settings.router_id, self._snapshot.deployments(),
                                           self.in_flight, self.slots.queued, now)

    async def publish_concurrency(self, bus: Publisher, *, interval: float = 1.0) -> None:
        await sampling.publish_samples(bus, self._settings.router_id, self.concurrency_sample,
                                       interval=interval)

    async def close(self) -> None:
        self.activator.close()
        await self.forwarder.close()

    # -- the hot path ------------------------------------------------------------------------

    async def Predict(
        self, request: inference_pb2.PredictRequest | inference_pb2.SyncRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        """Predict, and Sync (`{prefix}/sync/{path}`: the same path — slots, holding at zero,
        canaries, metrics — with the request passed through to the replica's server,
        sync_request.py). One function for both: grpc wants an async generator function per method,
        and a wrapper would cost every chunk a frame."""
        sync = request if type(request) is _SYNC_REQUEST else None
        # One generator frame (forward's) between this one and the runner's stream on the fast
        # path, and no task per request: each frame costs every chunk a resumption. Metrics are
        # plain additions.
        started = _perf_counter()
        code = "OK"
        trace = None
        series = None
        replica_at = 0.0  # when the request held a replica slot (0: it never did)
        try:
            body = request.body
            if len(body.data) > self._max_body:
                raise PayloadTooLarge(
                    f"request body is {len(body.data)} bytes; the limit is {self._max_body}")
            host = request_id = ""
            chosen = request.deployment_id
            forwarded = []
            metadata = context.invocation_metadata() or ()
            for key, value in metadata:
                if key in FORWARDED_KEYS:
                    forwarded.append((key, value))
                elif key == HOST_KEY:
                    host = value
                elif key == DEPLOYMENT_KEY and not chosen:
                    chosen = value
                elif key == ENVOY_REQUEST_ID:
                    request_id = value
            if request_id and not any(key == tracing.REQUEST_ID_KEY for key, _ in forwarded):
                forwarded.append((tracing.REQUEST_ID_KEY, request_id))
            if self._tracer is not None:
                trace = tracing.start_request(self._tracer, forwarded, request.model_id,
                                              root_ratio=self._settings.trace_root_ratio)
            deployment = resolve(self._snapshot, request.model_id, request.target, request.environment,
                                 chosen, host, rng=self._random)
            key_scope.check(self._keys, context, deployment)
            series = metrics.REQUESTS.series(deployment.model_id, deployment.model_name,
                                             deployment.deployment_id, environment_label(request))
            timeout = self._timeout
            remaining = context.time_remaining()
            if remaining is not None and remaining < timeout:
                timeout = remaining
            to_runner: runner_pb2.RunnerPredictRequest | runner_pb2.RunnerSyncRequest
            on_headers = None
            if sync is None:
                to_runner = runner_pb2.RunnerPredictRequest(body=body, v2_path=v2_path_of(request))
            else:
                to = sync_request.target(sync.path, sync.method, sync.query, metadata)  # type: ignore[attr-defined]
                to_runner = runner_pb2.RunnerSyncRequest(
                    method=to.method, path=to.path, body=body,
                    headers=[runner_pb2.Header(name=k, value=v) for k, v in to.headers])
                forwarded = [(k, v) for k, v in forwarded if k in TRACE_KEYS]

                async def on_headers(md: Any) -> None:
                    await context.send_initial_metadata(sync_request.response_metadata(md))
            replica = self._take(deployment)
            if replica is None:
                replica, waited = await self._wait_for_slot(deployment, timeout, series, trace)
                timeout = max(0.001, timeout - waited)
            else:
                series.waited(0.0, None)
            replica_at = _perf_counter()
            try:
                forwarding = self.forwarder.forward(deployment, replica, to_runner, forwarded, timeout, trace,
                                                    on_headers)
                async for chunk in forwarding:
                    yield chunk
            except NotConnected:
                async for chunk in self._retry(deployment, to_runner, forwarded, timeout, trace, on_headers):
                    yield chunk
        except KingpostError as err:
            code = err.wire_code
            await grpc_abort(context, err)
        except Passthrough as p:
            status = p.error.code()
            code = status.name
            context.set_trailing_metadata(tuple(p.error.trailing_metadata() or ()))
            await context.abort(status, p.error.details() or "")
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        except Exception:  # a bug here: grpc answers UNKNOWN and logs it; count it honestly
            code = "UNKNOWN"
            raise
        finally:
            ended = _perf_counter()
            (series or metrics.REQUESTS.series("", "", "", "")).answered(
                code, ended - started, ended - replica_at if replica_at else -1.0)
            if trace is not None:
                tracing.finish(trace.span, code)

    async def _wait_for_slot(self, deployment: Deployment, timeout: float, series: metrics.Series,
                             trace: tracing.RequestTrace | None) -> tuple[Replica, float]:
        """No free slot: wait in the activator; the wait is counted (as a cold-start wait when the
        deployment had no ready replica), also when it ends in a 429 or 503."""
        cold = not deployment.replicas
        waited_from = _monotonic()
        try:
            return await self.activator.acquire(deployment, timeout), _monotonic() - waited_from
        finally:
            waited = _monotonic() - waited_from
            series.waited(waited, waited if cold else None)
            if trace is not None:
                trace.waited(waited, cold=cold)

    # The KServe V2 REST infer call: Predict's path, with the runner told which V2 path it is.
    V2Infer = Predict
    Sync = Predict

    @abort_on_error
    async def Wake(self, request: inference_pb2.WakeRequest,
                   context: grpc.aio.ServicerContext) -> inference_pb2.WakeResponse:
        await self.activator.wake(self._target(request, context))
        # Baseten answers 202 Accepted; Envoy's error_body.lua sets it from this header.
        await context.send_initial_metadata(((HTTP_STATUS_KEY, "202"),))
        return inference_pb2.WakeResponse()

    async def RunRemote(
        self, request: inference_pb2.RunRemoteRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        """A chain's entrypoint: the route table names the chain's entrypoint model by the chain's id
        (and the model has the chain's name), so this is Predict on that model."""
        predict = inference_pb2.PredictRequest(model_id=request.chain_id, target=request.target,
                                               environment=request.environment,
                                               deployment_id=request.deployment_id, body=request.body)
        async for chunk in self.Predict(predict, context):
            yield chunk

    def _target(self, request: inference_pb2.AsyncPredictRequest | inference_pb2.GetAsyncQueueStatusRequest
                | inference_pb2.WakeRequest, context: grpc.aio.ServicerContext) -> Deployment:
        """The deployment, as Predict resolves it, if the caller's key may call it; a canary split is
        drawn once, at enqueue."""
        host = metadata_value(context, HOST_KEY)
        chosen = request.deployment_id or metadata_value(context, DEPLOYMENT_KEY)
        deployment = resolve(self._snapshot, request.model_id, request.target, request.environment, chosen, host,
                             rng=self._random)
        key_scope.check(self._keys, context, deployment)
        return deployment

    # -- one call for the async queue's workers ------------------------------------------------

    async def acquire(self, deployment: Deployment, timeout: float) -> Replica:
        """A slot of one of the deployment's replicas, as a sync request takes it: waiting (and
        waking a deployment at zero) while none is free; the call below gives it back."""
        replica = self._take(deployment)
        if replica is None:
            replica = await self.activator.acquire(deployment, timeout)
        return replica

    def release_slot(self, deployment_id: str, replica_id: str) -> None:
        """Give back a slot `acquire` took, unused."""
        self.activator.release(deployment_id, replica_id)

    async def call_model(self, deployment: Deployment, replica: Replica, body: httpbody_pb2.HttpBody,
                         metadata: list[tuple[str, str]], timeout: float, trace: Trace = None) -> bytes:
        """The model's whole answer through the sync path (the slot of `replica` already taken);
        a runner's error as Passthrough, the platform's as KingpostError."""
        to_runner = runner_pb2.RunnerPredictRequest(body=body)
        chunks = []
        try:
            async for chunk in self.forwarder.forward(deployment, replica, to_runner, metadata, timeout, trace):
                chunks.append(chunk.data)
        except NotConnected:
            chunks.clear()
            async for chunk in self._retry(deployment, to_runner, metadata, timeout, trace):
                chunks.append(chunk.data)
        return b"".join(chunks)

    async def _retry(
        self,
        deployment: Deployment,
        to_runner: runner_pb2.RunnerPredictRequest | runner_pb2.RunnerSyncRequest,
        forwarded: list[tuple[str, str]],
        timeout: float,
        trace: tracing.RequestTrace | None,
        on_headers: OnHeaders | None = None,
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        """Nothing reached the runner, so the model has not run: another reachable replica takes
        the request, or it is held, as at zero, until one answers again (a crashed runner that its
        agent restarts) or a route table brings one — at most the cold-start timeout."""
        deadline = _monotonic() + timeout
        while True:
            metrics.RETRIES.inc()
            deployment = self._snapshot.by_deployment.get(deployment.deployment_id, deployment)
            replica = self._take(deployment)
            if replica is None:
                replica = await self.activator.acquire(deployment, max(0.001, deadline - _monotonic()))
            try:
                async for chunk in self.forwarder.forward(deployment, replica, to_runner, forwarded,
                                                          max(0.001, deadline - _monotonic()), trace,
                                                          on_headers):
                    yield chunk
                return
            except NotConnected:
                continue  # that runner is marked unreachable now: the next try goes elsewhere, or waits

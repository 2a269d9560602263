"""InferenceService.Predict: resolve → pick a replica → forward the bytes → stream the chunks back.

The hot path reads one immutable `RouteSnapshot`, a dict of cached channels and two counters;
it parses no body, opens no channel and starts no task. Everything else (route-table updates,
channel churn, concurrency samples) happens in the background loops below.

Runner errors travel back unchanged (code, details, trailing metadata with `x-http-status`):
this servicer is the one place that talks raw gRPC to runners rather than through
`kingpost.rpc`, because `from_rpc_error` would fold codes and drop trailers.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable

import grpc
from google.api import httpbody_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from kingpost import errors, rpc
from kingpost.auth import KeyCache
from kingpost.errors import DeadlineExceeded, KingpostError, ModelError, PayloadTooLarge, Unavailable
from kingpost.events import EventBus, concurrency_subject
from kingpost.v1 import events_pb2, inference_pb2, inference_pb2_grpc, runner_pb2, runner_pb2_grpc
from kingpost.v1 import scheduler_pb2
from kingpost_router import metrics
from kingpost_router.balancer import choose
from kingpost_router.routes import HOST_KEY, Deployment, Replica, RouteSnapshot, resolve
from kingpost_router.settings import RouterSettings

log = logging.getLogger(__name__)

# Request metadata that matters to the model; everything else stays at the router.
FORWARDED_KEYS = frozenset({"accept", "traceparent", "tracestate", "x-baseten-request-id", "content-type"})

# A runner that comes back on the same address is reachable within a second, not gRPC's
# default reconnect backoff of up to two minutes (calls fail fast while a channel backs off).
_RUNNER_CHANNEL_OPTIONS = (*rpc.CHANNEL_OPTIONS, ("grpc.initial_reconnect_backoff_ms", 200),
                           ("grpc.max_reconnect_backoff_ms", 1000))

_OK = grpc.StatusCode.OK
_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
_DEADLINE = grpc.StatusCode.DEADLINE_EXCEEDED


class _Upstream:
    """One runner address: its channel and the bound Predict method."""

    __slots__ = ("channel", "predict")

    def __init__(self, address: str) -> None:
        self.channel = grpc.aio.insecure_channel(address, options=_RUNNER_CHANNEL_OPTIONS)
        self.predict = runner_pb2_grpc.RunnerServiceStub(self.channel).Predict


class RouterServicer(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, settings: RouterSettings, keys: KeyCache, *, seed: int | None = None) -> None:
        self._settings = settings
        self._keys = keys
        self._snapshot = RouteSnapshot.empty()
        self._upstreams: dict[str, _Upstream] = {}
        self._closing: set[asyncio.Task[None]] = set()
        # Outstanding requests per replica id (the balancer's input) and per deployment id
        # (the autoscaler's). Plain ints mutated on one event loop: no locks needed.
        self.outstanding: dict[str, int] = {}
        self.in_flight: dict[str, int] = {}
        rand = random.Random(seed)
        self._random: Callable[[], float] = rand.random
        self._randrange: Callable[[int], int] = rand.randrange
        self._codes = {code: metrics.REQUESTS.labels(code.name) for code in grpc.StatusCode}
        metrics.IN_FLIGHT.set_function(lambda: sum(self.in_flight.values()))

    @property
    def snapshot(self) -> RouteSnapshot:
        return self._snapshot

    # -- route table (background) ------------------------------------------------------------

    def apply_table(self, table: scheduler_pb2.RouteTable) -> None:
        """Swap in a new table: keys, routes, and a channel per runner address (new ones opened,
        removed ones closed once their in-flight calls end)."""
        snapshot = RouteSnapshot.from_table(table)
        addresses = snapshot.addresses()
        for address in addresses - self._upstreams.keys():
            self._upstreams[address] = _Upstream(address)
        removed = [self._upstreams.pop(a) for a in list(self._upstreams) if a not in addresses]
        self._keys.replace(snapshot.api_key_sha256)
        self._snapshot = snapshot
        for upstream in removed:
            self._close_later(upstream)
        log.info("route table v%d: %d models, %d runner channels (%d closed)",
                 snapshot.version, len(snapshot.by_id), len(self._upstreams), len(removed))

    def _close_later(self, upstream: _Upstream) -> None:
        task = asyncio.get_running_loop().create_task(
            upstream.channel.close(grace=self._settings.request_timeout_seconds)
        )
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        upstreams, self._upstreams = list(self._upstreams.values()), {}
        await asyncio.gather(*(u.channel.close(grace=None) for u in upstreams), *self._closing,
                             return_exceptions=True)

    # -- concurrency samples (background) ----------------------------------------------------

    def concurrency_sample(self, now: float) -> events_pb2.ConcurrencySample:
        """In-flight requests per deployment at this instant, zeros included, so the autoscaler
        sees idleness too. An instant is enough: sampled every second at no particular phase,
        its average over the autoscaler's window is the time-averaged concurrency (a 100 ms
        request arriving every 200 ms is seen in half the samples: 0.5)."""
        sample = events_pb2.ConcurrencySample(router_id=self._settings.router_id)
        sample.at.CopyFrom(_timestamp(now))
        seen = set()
        for deployment in self._snapshot.deployments():
            if deployment.active:
                seen.add(deployment.deployment_id)
                sample.deployments.add(deployment_id=deployment.deployment_id,
                                       in_flight=self.in_flight.get(deployment.deployment_id, 0))
        for deployment_id, count in self.in_flight.items():
            if deployment_id not in seen and count:
                sample.deployments.add(deployment_id=deployment_id, in_flight=count)
        return sample

    async def publish_concurrency(self, bus: EventBus, *, interval: float = 1.0,
                                  clock: Callable[[], float] = time.time) -> None:
        subject = concurrency_subject(self._settings.router_id)
        while True:
            try:
                await bus.publish_fast(subject, self.concurrency_sample(clock()))
            except Exception as e:  # a lost sample is superseded by the next one
                log.warning("cannot publish a concurrency sample: %s", e)
            await asyncio.sleep(interval)

    # -- the hot path ------------------------------------------------------------------------

    async def Predict(
        self, request: inference_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        started = time.perf_counter()
        code = _OK
        try:
            async for chunk in self._predict(request, context):
                yield chunk
        except KingpostError as err:
            code = err.grpc_code
            await errors.grpc_abort(context, err)
        except _Passthrough as p:
            code = p.error.code()
            context.set_trailing_metadata(tuple(p.error.trailing_metadata() or ()))
            await context.abort(code, p.error.details() or "")
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception:  # a bug here: grpc answers UNKNOWN and logs it; count it honestly
            code = grpc.StatusCode.UNKNOWN
            raise
        finally:
            self._codes[code].inc()
            metrics.REQUEST_SECONDS.observe(time.perf_counter() - started)

    async def _predict(
        self, request: inference_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        body = request.body
        if len(body.data) > self._settings.max_body_bytes:
            raise PayloadTooLarge(
                f"request body is {len(body.data)} bytes; the limit is {self._settings.max_body_bytes}"
            )
        host = ""
        forwarded = []
        for key, value in context.invocation_metadata() or ():
            if key in FORWARDED_KEYS:
                forwarded.append((key, value))
            elif key == HOST_KEY:
                host = value
        snapshot = self._snapshot
        deployment = resolve(snapshot, request.model_id, request.target, request.environment,
                             request.deployment_id, host, rng=self._random)
        timeout = self._settings.request_timeout_seconds
        remaining = context.time_remaining()
        if remaining is not None and remaining < timeout:
            timeout = remaining
        upstream_request = runner_pb2.RunnerPredictRequest(body=body)

        replica = choose(deployment.replicas, self.outstanding, self._randrange,
                         deployment.predict_concurrency)
        try:
            async for chunk in self._forward(deployment, replica, upstream_request, forwarded, timeout):
                yield chunk
        except _NotConnected as first:
            # Nothing reached the runner, so the model has not run: one more try elsewhere.
            others = tuple(r for r in deployment.replicas if r.replica_id != replica.replica_id)
            if not others:
                raise Unavailable(f"deployment '{deployment.deployment_id}': no replica is reachable "
                                  f"({first.detail})") from None
            metrics.RETRIES.inc()
            retry = choose(others, self.outstanding, self._randrange, deployment.predict_concurrency)
            try:
                async for chunk in self._forward(deployment, retry, upstream_request, forwarded, timeout):
                    yield chunk
            except _NotConnected as second:
                raise Unavailable(f"deployment '{deployment.deployment_id}': no replica is reachable "
                                  f"({second.detail})") from None

    async def _forward(
        self,
        deployment: Deployment,
        replica: Replica,
        request: runner_pb2.RunnerPredictRequest,
        metadata: list[tuple[str, str]],
        timeout: float,
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        upstream = self._upstreams.get(replica.address)
        if upstream is None:  # the table changed under this request; open it like apply_table would
            upstream = self._upstreams[replica.address] = _Upstream(replica.address)
        outstanding, in_flight = self.outstanding, self.in_flight
        rid, did = replica.replica_id, deployment.deployment_id
        outstanding[rid] = outstanding.get(rid, 0) + 1
        in_flight[did] = in_flight.get(did, 0) + 1
        call = upstream.predict(request, timeout=timeout, metadata=metadata)
        sent = False
        try:
            async for chunk in call:
                sent = True
                yield chunk
        except grpc.aio.AioRpcError as e:
            raise _translate(e, sent, replica, timeout) from None
        finally:
            if not call.done():
                call.cancel()
            _decrement(outstanding, rid)
            _decrement(in_flight, did)


class _Passthrough(Exception):
    """The runner's own status, to be re-raised unchanged."""

    def __init__(self, error: grpc.aio.AioRpcError) -> None:
        self.error = error


class _NotConnected(Exception):
    """The runner could not be reached: the request never left the router."""

    def __init__(self, detail: str) -> None:
        self.detail = detail


def _translate(e: grpc.aio.AioRpcError, sent: bool, replica: Replica, timeout: float) -> Exception:
    code = e.code()
    trailers = e.trailing_metadata() or ()
    from_runner = any(key == errors.HTTP_STATUS_KEY for key, _ in trailers)
    if code is _UNAVAILABLE and not from_runner:
        details = e.details() or ""
        # gRPC's words for "no connection was made"; anything else (e.g. "Stream removed
        # (Socket closed)") means the runner had the request and may have run the model.
        if not sent and "failed to connect" in details.lower():
            return _NotConnected(f"replica {replica.replica_id} at {replica.address}: {details}")
        return ModelError(f"replica {replica.replica_id} failed mid-request: {details}", http_status=502)
    if code is _DEADLINE and not from_runner:
        return DeadlineExceeded(f"the model did not answer within {timeout:g} s")
    return _Passthrough(e)


def _decrement(counts: dict[str, int], key: str) -> None:
    left = counts[key] - 1
    if left:
        counts[key] = left
    else:
        del counts[key]


def _timestamp(now: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(now * 1e9))
    return ts

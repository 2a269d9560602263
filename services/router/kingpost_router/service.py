"""InferenceService.Predict: resolve → take a replica slot → forward the bytes → stream the chunks back.

The hot path reads one immutable `RouteSnapshot`, a dict of cached channels and two counters;
it parses no body, opens no channel and starts no task. Everything else (route-table updates,
channel churn, concurrency samples) happens in the background loops below.

Capacity: a replica takes at most `predict_concurrency` requests from this router at once. When
every replica of a deployment is full, a request waits in the deployment's FIFO queue (bounded:
429 beyond it; or 429 at once under the back-pressure policy `reject`) and is handed a slot the
moment one frees.
A deployment that is routable but has no ready replica (scaled to zero, waking up) holds requests
in the same queue, pokes the autoscaler (`ScalePoke`, once a second while they wait), and releases
them when a route table with a replica arrives — or answers 503 after its cold-start timeout.
Time in the queue counts toward the request's deadline.

Runner errors travel back unchanged (code, details, trailing metadata with `x-http-status`):
this servicer is the one place that talks raw gRPC to runners rather than through
`kingpost.rpc`, because `from_rpc_error` would fold codes and drop trailers.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence

import grpc
from google.api import httpbody_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry.trace import Span, Tracer

from kingpost import autoscaling_settings, rpc
from kingpost.auth import KeyCache
from kingpost.errors import (DeadlineExceeded, KingpostError, ModelError, NotFound, PayloadTooLarge,
                             TooManyRequests, Unavailable)
from kingpost.bus import Publisher
from kingpost.bus.subjects import concurrency_subject, scale_poke_subject
from kingpost.grpc_status import HTTP_STATUS_KEY, grpc_abort
from kingpost.v1 import events_pb2, inference_pb2, inference_pb2_grpc, runner_pb2, runner_pb2_grpc
from kingpost.v1 import scheduler_pb2
from kingpost_router import metrics, tracing
from kingpost_router.balancer import choose
from kingpost_router.routes import HOST_KEY, Deployment, Replica, RouteSnapshot, resolve
from kingpost_router.settings import RouterSettings

log = logging.getLogger(__name__)

# Request metadata that matters to the model; everything else stays at the router.
FORWARDED_KEYS = frozenset({"accept", "traceparent", "tracestate", "x-baseten-request-id", "content-type"})

# A runner that comes back on the same address is reachable within a second, not gRPC's
# default reconnect backoff of up to two minutes (calls fail fast while a channel backs off).
# No transparent retries inside gRPC: the router retries itself, and only before anything was sent;
# gRPC's retry machinery also costs every call CPU.
_RUNNER_CHANNEL_OPTIONS = (("grpc.initial_reconnect_backoff_ms", 200),
                           ("grpc.max_reconnect_backoff_ms", 1000), ("grpc.enable_retries", 0))
_perf_counter = time.perf_counter

_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
_DEADLINE = grpc.StatusCode.DEADLINE_EXCEEDED


class _Upstream:
    """One runner address: its channel and the bound Predict method."""

    __slots__ = ("channel", "predict")

    def __init__(self, address: str, keepalive_seconds: float) -> None:
        options = (*rpc.channel_options(keepalive_seconds), *_RUNNER_CHANNEL_OPTIONS)
        self.channel = grpc.aio.insecure_channel(address, options=options)
        self.predict = runner_pb2_grpc.RunnerServiceStub(self.channel).Predict


class RouterServicer(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, settings: RouterSettings, keys: KeyCache, *, seed: int | None = None,
                 tracer: Tracer | None = None) -> None:
        self._settings = settings
        self._tracer = tracer  # None: no spans (OTEL_EXPORTER_OTLP_ENDPOINT unset)
        self._keys = keys
        self._snapshot = RouteSnapshot.empty()
        self._upstreams: dict[str, _Upstream] = {}
        self._closing: set[asyncio.Task[None]] = set()
        # Outstanding requests per replica id (the balancer's input) and per deployment id
        # (the autoscaler's). Plain ints mutated on one event loop: no locks needed.
        self.outstanding: dict[str, int] = {}
        self.in_flight: dict[str, int] = {}
        # Requests waiting for a slot, per deployment id; absent when none wait. Each future is
        # handed the replica whose slot it got.
        self._queues: dict[str, deque[asyncio.Future[Replica]]] = {}
        # Set by main once NATS is up: where hold-at-zero pokes go (none in some tests).
        self.bus: Publisher | None = None
        self.poke_interval = 1.0
        self._poking: dict[str, asyncio.Task[None]] = {}
        rand = random.Random(seed)
        self._random: Callable[[], float] = rand.random
        self._randrange: Callable[[int], int] = rand.randrange
        self._max_body = settings.max_body_bytes
        self._timeout = settings.request_timeout_seconds
        metrics.IN_FLIGHT.set_function(lambda: sum(self.in_flight.values()))
        metrics.QUEUED.set_function(lambda: sum(len(q) for q in self._queues.values()))

    def queued(self, deployment_id: str) -> int:
        """Requests waiting for a slot of this deployment now."""
        return len(self._queues.get(deployment_id, ()))

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
            self._upstreams[address] = _Upstream(address, self._settings.grpc_keepalive_seconds)
        removed = [self._upstreams.pop(a) for a in list(self._upstreams) if a not in addresses]
        self._keys.replace(snapshot.api_key_sha256)
        self._snapshot = snapshot
        for upstream in removed:
            self._close_later(upstream)
        for deployment_id in list(self._queues):  # new replicas release held requests at once
            self._dispatch(deployment_id)
        log.info("route table v%d: %d models, %d runner channels (%d closed)",
                 snapshot.version, len(snapshot.by_id), len(self._upstreams), len(removed))

    def _close_later(self, upstream: _Upstream) -> None:
        task = asyncio.get_running_loop().create_task(
            upstream.channel.close(grace=self._settings.request_timeout_seconds)
        )
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        for task in list(self._poking.values()):
            task.cancel()
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
                                       in_flight=self.in_flight.get(deployment.deployment_id, 0),
                                       queued=self.queued(deployment.deployment_id))
        for deployment_id, count in self.in_flight.items():
            if deployment_id not in seen and count:
                sample.deployments.add(deployment_id=deployment_id, in_flight=count)
        return sample

    async def publish_concurrency(self, bus: Publisher, *, interval: float = 1.0,
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
        # One generator frame between the client and the runner's stream on the fast path
        # (each frame costs every chunk a resumption); metrics are plain additions.
        started = _perf_counter()
        code = "OK"
        span = None
        try:
            body = request.body
            if len(body.data) > self._max_body:
                raise PayloadTooLarge(f"request body is {len(body.data)} bytes; the limit is {self._max_body}")
            host = ""
            forwarded = []
            for key, value in context.invocation_metadata() or ():
                if key in FORWARDED_KEYS:
                    forwarded.append((key, value))
                elif key == HOST_KEY:
                    host = value
            if self._tracer is not None:
                span = tracing.start_request(self._tracer, forwarded, request.model_id)
            deployment = resolve(self._snapshot, request.model_id, request.target, request.environment,
                                 request.deployment_id, host, rng=self._random)
            timeout = self._timeout
            remaining = context.time_remaining()
            if remaining is not None and remaining < timeout:
                timeout = remaining
            replica = None
            if not self._queues.get(deployment.deployment_id):  # FIFO: nobody is waiting ahead
                replica = self._take(deployment.replicas, deployment.predict_concurrency)
            if replica is None:
                waited_from = time.monotonic()
                replica = await self._wait_for_slot(deployment, timeout)
                timeout = max(0.001, timeout - (time.monotonic() - waited_from))
            to_runner = runner_pb2.RunnerPredictRequest(body=body)
            try:
                async for chunk in self._forward(deployment, replica, to_runner, forwarded, timeout, span):
                    yield chunk
            except _NotConnected as first:
                retried = self._retry(deployment, replica, first, to_runner, forwarded, timeout, span)
                async for chunk in retried:
                    yield chunk
        except KingpostError as err:
            code = err.wire_code
            await grpc_abort(context, err)
        except _Passthrough as p:
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
            metrics.REQUESTS.observe(code, _perf_counter() - started)
            if span is not None:
                tracing.finish(span, code)

    async def _retry(
        self,
        deployment: Deployment,
        first_replica: Replica,
        first: _NotConnected,
        upstream_request: runner_pb2.RunnerPredictRequest,
        forwarded: list[tuple[str, str]],
        timeout: float,
        span: Span | None,
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        """Nothing reached the first runner, so the model has not run: one more try elsewhere."""
        others = tuple(r for r in deployment.replicas if r.replica_id != first_replica.replica_id)
        if not others:
            raise Unavailable(f"deployment '{deployment.deployment_id}': no replica is reachable "
                              f"({first.detail})")
        metrics.RETRIES.inc()
        retry = self._take(others, deployment.predict_concurrency)
        if retry is None:  # the others are full: wait for a slot like any request
            retry = await self._wait_for_slot(deployment, timeout)
        try:
            async for chunk in self._forward(deployment, retry, upstream_request, forwarded, timeout, span):
                yield chunk
        except _NotConnected as second:
            raise Unavailable(f"deployment '{deployment.deployment_id}': no replica is reachable "
                              f"({second.detail})") from None

    # -- slots and the queue -----------------------------------------------------------------

    def _take(self, replicas: Sequence[Replica], limit: int) -> Replica | None:
        """A replica with a free slot, its slot taken; None when every one is full."""
        replica = choose(replicas, self.outstanding, self._randrange, limit)
        if replica is not None:
            rid = replica.replica_id
            self.outstanding[rid] = self.outstanding.get(rid, 0) + 1
        return replica

    def _release(self, deployment_id: str, replica_id: str) -> None:
        _decrement(self.outstanding, replica_id)
        if deployment_id in self._queues:
            self._dispatch(deployment_id)

    def _dispatch(self, deployment_id: str) -> None:
        """Hand free slots to the waiting requests, oldest first (after a release or a new table)."""
        queue = self._queues.get(deployment_id)
        if queue is None:
            return
        deployment = self._snapshot.by_deployment.get(deployment_id)
        if deployment is None or not deployment.active:
            self._fail_queue(deployment_id, NotFound(
                f"deployment '{deployment_id}' was removed or deactivated while requests waited for it"))
            return
        if not deployment.replicas and not deployment.holds:
            self._fail_queue(deployment_id, Unavailable(
                f"deployment '{deployment_id}' is not ready ({deployment.why_not_serving()})"))
            return
        while queue:
            if queue[0].done():  # defensive: waiters remove their own future when they give up
                queue.popleft()
                continue
            replica = self._take(deployment.replicas, deployment.predict_concurrency)
            if replica is None:
                break
            queue.popleft().set_result(replica)
        if not queue:
            del self._queues[deployment_id]

    def _fail_queue(self, deployment_id: str, err: KingpostError) -> None:
        for waiter in self._queues.pop(deployment_id, ()):
            if not waiter.done():
                waiter.set_exception(err)

    async def _wait_for_slot(self, deployment: Deployment, timeout: float) -> Replica:
        """Wait in the deployment's queue until a slot is handed over; the replica, slot taken."""
        did = deployment.deployment_id
        queue = self._queues.get(did)
        waiting = len(queue) if queue else 0
        if deployment.replicas and deployment.reject_on_full:
            raise TooManyRequests(
                f"deployment '{did}' is at its limit: every replica runs {deployment.predict_concurrency} "
                f"requests at once (predict_concurrency) and its back-pressure policy is "
                f"{autoscaling_settings.REJECT!r}")
        limit = self._settings.max_queue_per_deployment
        if waiting >= limit:
            raise TooManyRequests(
                f"deployment '{did}' is at its limit: {waiting} requests already wait for a replica "
                f"(queue limit {limit})")
        if queue is None:
            queue = self._queues[did] = deque()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Replica] = loop.create_future()
        queue.append(waiter)
        start = loop.time()
        deadline_at = start + timeout
        cold_limit = deployment.cold_start_timeout_seconds or self._settings.cold_start_timeout_seconds
        hold_until = math.inf
        if not deployment.replicas:
            hold_until = start + cold_limit
            self._poke(did)
        try:
            while True:
                await asyncio.wait((waiter,), timeout=max(0.0, min(deadline_at, hold_until) - loop.time()))
                if waiter.done():
                    return waiter.result()
                current = self._snapshot.by_deployment.get(did)
                if loop.time() >= deadline_at:
                    if current is None or not current.replicas:
                        raise Unavailable(f"deployment '{did}' had no ready replica within the request "
                                          f"timeout of {timeout:g} s")
                    raise DeadlineExceeded(
                        f"no replica of deployment '{did}' was free within {timeout:g} s (waited in the queue)")
                if current is None or not current.replicas:
                    why = f" ({current.why_not_serving()})" if current is not None else ""
                    raise Unavailable(f"deployment '{did}' was not ready within the cold-start timeout "
                                      f"of {cold_limit:g} s{why}")
                hold_until = math.inf  # a replica came, all busy: wait as any queued request does
        except BaseException:
            if not waiter.done():
                waiter.cancel()
                current_queue = self._queues.get(did)
                if current_queue is not None:
                    try:
                        current_queue.remove(waiter)
                    except ValueError:
                        pass
                    if not current_queue:
                        del self._queues[did]
            elif not waiter.cancelled() and waiter.exception() is None:
                self._release(did, waiter.result().replica_id)  # handed a slot just as we gave up
            raise

    def _poke(self, deployment_id: str) -> None:
        if self.bus is None or deployment_id in self._poking:
            return
        task = asyncio.get_running_loop().create_task(self._poke_while_held(deployment_id, self.bus))
        self._poking[deployment_id] = task
        task.add_done_callback(lambda _: self._poking.pop(deployment_id, None))

    async def _poke_while_held(self, deployment_id: str, bus: Publisher) -> None:
        """Tell the autoscaler, once a poke_interval, that requests wait for a first replica."""
        subject = scale_poke_subject(deployment_id)
        while True:
            deployment = self._snapshot.by_deployment.get(deployment_id)
            queued = self.queued(deployment_id)
            if not queued or deployment is None or deployment.replicas:
                return
            poke = events_pb2.ScalePoke(deployment_id=deployment_id, queued=queued)
            poke.at.CopyFrom(_timestamp(time.time()))
            try:
                await bus.publish_fast(subject, poke)
            except Exception as e:  # the next poke, or the autoscaler's own tick, covers it
                log.warning("cannot poke the autoscaler for %s: %s", deployment_id, e)
            await asyncio.sleep(self.poke_interval)

    async def _forward(
        self,
        deployment: Deployment,
        replica: Replica,
        request: runner_pb2.RunnerPredictRequest,
        metadata: list[tuple[str, str]],
        timeout: float,
        span: Span | None = None,
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        """Call the replica, whose slot the caller took; the slot is given back at the end."""
        upstream = self._upstreams.get(replica.address)
        if upstream is None:  # the table changed under this request; open it like apply_table would
            upstream = self._upstreams[replica.address] = _Upstream(
                replica.address, self._settings.grpc_keepalive_seconds)
        in_flight = self.in_flight
        did = deployment.deployment_id
        in_flight[did] = in_flight.get(did, 0) + 1
        call_span = None
        if span is not None and self._tracer is not None:
            call_span = tracing.start_call(self._tracer, span, deployment, replica)
            metadata = tracing.with_context(metadata, call_span)
        call = upstream.predict(request, timeout=timeout, metadata=metadata)
        sent = False
        code = "OK"
        try:
            async for chunk in call:
                sent = True
                yield chunk
        except grpc.aio.AioRpcError as e:
            code = e.code().name
            raise _translate(e, sent, replica, timeout) from None
        except BaseException:
            code = "CANCELLED"
            raise
        finally:
            if not call.done():
                call.cancel()
            _decrement(in_flight, did)
            self._release(did, replica.replica_id)
            if call_span is not None:
                tracing.finish(call_span, code)


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
    from_runner = any(key == HTTP_STATUS_KEY for key, _ in trailers)
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

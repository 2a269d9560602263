"""The autoscaler's shell: concurrency samples and pokes in from NATS, each deployment's settings
from the scheduler's route table, decisions out to the scheduler.

Samples are timed by this process's clock on arrival, so routers' clocks do not matter. Each tick
decides every known deployment and calls ScaleDeployment only when the decision changed (or the
last call failed). A router's ScalePoke (requests held for a deployment with no ready replica) is
decided at once, without waiting for the tick. A sample is decided on arrival too (at most every
`SAMPLE_DECISION_GAP` seconds per deployment), but only a decision that raises the count is kept
from it: a load step (and panic) is acted on within one sample, while scale-down keeps the tick's
pace (each tick's decision may halve the count at most).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from kingpost import deployment_status, rpc
from kingpost.autoscaling_settings import NO_CAP, AutoscalingSettings, validate
from kingpost.bus import Bus, subjects
from kingpost.errors import InvalidArgument, KingpostError, NotFound
from kingpost.v1 import events_pb2, scheduler_pb2, scheduler_pb2_grpc

from kingpost_autoscaler import metrics
from kingpost_autoscaler.decision import (
    ScaleState,
    average_concurrency,
    decide,
    idle_to_deactivate,
)
from kingpost_autoscaler.window import ConcurrencyWindow

log = logging.getLogger(__name__)

HORIZON_SECONDS = 3600.0  # the longest autoscaling window Baseten allows
SAMPLE_DECISION_GAP = 0.5  # seconds between two on-arrival decisions of one deployment
POKE_SOURCE = "poke"  # a poke counts as one more source of concurrency in its second
# Deployments the autoscaler leaves alone: not built, failed, or deactivated.
UNSCALED_STATUSES = (deployment_status.BUILDING, deployment_status.FAILED, deployment_status.INACTIVE)
# Deployments whose replicas are still loading: never scaled down (a replica killed while it loads
# is a cold start wasted), and the scale-down delay counts from when they are ready.
LOADING_STATUSES = (deployment_status.DEPLOYING, deployment_status.WAKING_UP)

# (deployment_id, replicas) → the count the scheduler settled on.
Scale = Callable[[str, int], Awaitable[int]]
# (deployment_id, idle seconds) → whether the scheduler deactivated it.
Deactivate = Callable[[str, float], Awaitable[bool]]


def settings_of(route: scheduler_pb2.DeploymentRoute) -> AutoscalingSettings | None:
    """A route's autoscaling settings; None when the scheduler sent none (or nonsense)."""
    if not route.HasField("autoscaling"):
        return None
    a = route.autoscaling
    settings = AutoscalingSettings(
        min_replica=a.min_replica, max_replica=a.max_replica, concurrency_target=a.concurrency_target,
        target_utilization_percentage=a.target_utilization_percentage,
        autoscaling_window=a.autoscaling_window, scale_down_delay=a.scale_down_delay)
    try:
        # The cluster's max_replica cap is the scheduler's to enforce; the rest is checked here.
        return validate(settings, max_replica_cap=NO_CAP)
    except InvalidArgument as e:
        log.warning("deployment %s: ignoring its autoscaling settings: %s", route.deployment_id, e)
        return None


class Autoscaler:
    def __init__(
        self,
        scale: Scale,
        settings_for: Callable[[str], AutoscalingSettings],
        clock: Callable[[], float] = time.monotonic,
        deactivate: Deactivate | None = None,
        idle_seconds: float = 0.0,
        decide_on_samples: bool = True,
    ) -> None:
        self._decide_on_samples = decide_on_samples
        self._scale = scale
        self._deactivate = deactivate
        self._idle_seconds = idle_seconds
        # Last second with traffic (or first sight: an autoscaler restart only ever delays deactivation).
        self._last_traffic: dict[str, float] = {}
        # For deployments the route table has not described (yet).
        self._settings_for = settings_for
        self._clock = clock
        self._window = ConcurrencyWindow(HORIZON_SECONDS)
        self._states: dict[str, ScaleState] = {}
        self._sent: dict[str, int] = {}
        self._settings: dict[str, AutoscalingSettings] = {}
        self._loading: set[str] = set()
        self._sample_decided_at: dict[str, float] = {}
        self._lock = asyncio.Lock()
        self.samples_seen = 0
        self.pokes_seen = 0
        self.tables_seen = 0

    def settings(self, deployment_id: str) -> AutoscalingSettings:
        return self._settings.get(deployment_id) or self._settings_for(deployment_id)

    async def on_sample(self, sample: events_pb2.ConcurrencySample) -> None:
        now = self._clock()
        for d in sample.deployments:
            self._window.record(sample.router_id, d.deployment_id, d.in_flight + d.queued, now)
            if d.in_flight + d.queued > 0 or d.deployment_id not in self._last_traffic:
                self._last_traffic[d.deployment_id] = now
        due = [d.deployment_id for d in sample.deployments
               if self._decide_on_samples and d.in_flight + d.queued > 0
               and now - self._sample_decided_at.get(d.deployment_id, -SAMPLE_DECISION_GAP) >= SAMPLE_DECISION_GAP]
        if due:
            async with self._lock:
                for deployment_id in due:
                    self._sample_decided_at[deployment_id] = now
                    await self._decide(deployment_id, now, force=False, up_only=True)
        self.samples_seen += 1  # counted once decided (tests wait on it)

    async def on_poke(self, poke: events_pb2.ScalePoke) -> None:
        """Requests wait for a deployment with no ready replica: decide it now."""
        started = time.perf_counter()
        now = self._clock()
        self._window.record(POKE_SOURCE, poke.deployment_id, max(poke.queued, 1), now)
        self._last_traffic[poke.deployment_id] = now
        self.pokes_seen += 1
        async with self._lock:
            await self._decide(poke.deployment_id, now, force=True)  # idempotent, and never stale
        metrics.POKE_TO_SCALE_SECONDS.observe(time.perf_counter() - started)

    async def on_table(self, table: scheduler_pb2.RouteTable) -> None:
        """Follow the scheduler: each deployment's settings, and which deployments exist at all."""
        now = self._clock()
        seen = set()
        async with self._lock:
            for model in table.models:
                for route in model.deployments:
                    status = deployment_status.name(route.status)
                    if not route.active or status in UNSCALED_STATUSES:
                        continue
                    seen.add(route.deployment_id)
                    if status in LOADING_STATUSES:
                        self._loading.add(route.deployment_id)
                    else:
                        self._loading.discard(route.deployment_id)
                    settings = settings_of(route)
                    if settings is not None:
                        self._settings[route.deployment_id] = settings
                    if route.deployment_id not in self._states and route.HasField("autoscaling"):
                        current = route.autoscaling.desired_replicas
                        self._states[route.deployment_id] = ScaleState.start(current, now)
                        self._sent[route.deployment_id] = current
                    self._window.track(route.deployment_id, now)
                    self._last_traffic.setdefault(route.deployment_id, now)
            if self.tables_seen:  # the first table may race samples of deployments it does not know yet
                for deployment_id in [d for d in self._window.deployments() if d not in seen]:
                    self._forget(deployment_id)
            self.tables_seen += 1

    async def tick(self) -> None:
        now = self._clock()
        async with self._lock:
            for deployment_id in self._window.deployments():
                await self._decide(deployment_id, now, force=False)
                await self._deactivate_if_idle(deployment_id, now)
            self._window.prune(now)

    async def _deactivate_if_idle(self, deployment_id: str, now: float) -> None:
        last = self._last_traffic.setdefault(deployment_id, now)
        if self._deactivate is None or not idle_to_deactivate(
                self._sent.get(deployment_id, -1), last, now, self._idle_seconds):
            return
        try:
            done = await self._deactivate(deployment_id, now - last)
        except KingpostError as e:
            log.warning("deactivating idle deployment %s failed, retrying next tick: %s", deployment_id, e)
            return
        if done:
            log.info("deployment %s: deactivated after %.0f s without traffic", deployment_id, now - last)
            self._forget(deployment_id)
        else:
            self._last_traffic[deployment_id] = now  # not at zero after all: count afresh

    async def _decide(self, deployment_id: str, now: float, *, force: bool, up_only: bool = False) -> None:
        settings = self.settings(deployment_id)
        samples = self._window.samples(deployment_id, now, settings.autoscaling_window)
        # Not described by the route table yet: assume it runs replicas, held for a full delay.
        state = self._states.get(deployment_id) or ScaleState.start(max(settings.min_replica, 1), now)
        desired, new_state = decide(settings, samples, state, now)
        if up_only and (desired is None or desired <= state.current):
            return  # not a step up: left to the tick
        if desired is not None and desired < state.current and deployment_id in self._loading:
            # Still loading: keep its count, and start the scale-down delay afresh.
            self._states[deployment_id] = ScaleState.start(state.current, now)
            return
        self._states[deployment_id] = new_state
        if desired is None:
            return
        metrics.DESIRED_REPLICAS.labels(deployment_id).set(desired)
        metrics.OBSERVED_CONCURRENCY.labels(deployment_id).set(
            average_concurrency(samples, now, settings.autoscaling_window) or 0.0)
        if force or self._sent.get(deployment_id) != desired:
            await self._apply(deployment_id, desired)

    async def _apply(self, deployment_id: str, desired: int) -> None:
        try:
            settled = await self._scale(deployment_id, desired)
        except NotFound:
            log.info("deployment %s is gone; no longer scaling it", deployment_id)
            metrics.SCALE_CALLS.labels("not_found").inc()
            self._forget(deployment_id)
            return
        except KingpostError as e:
            log.warning("ScaleDeployment(%s, %d) failed, retrying next tick: %s", deployment_id, desired, e)
            metrics.SCALE_CALLS.labels("error").inc()
            return
        metrics.SCALE_CALLS.labels("ok").inc()
        self._sent[deployment_id] = desired
        log.info("deployment %s: %d replicas (scheduler settled on %d)", deployment_id, desired, settled)

    def _forget(self, deployment_id: str) -> None:
        self._window.forget(deployment_id)
        self._states.pop(deployment_id, None)
        self._sent.pop(deployment_id, None)
        self._settings.pop(deployment_id, None)
        self._loading.discard(deployment_id)
        self._last_traffic.pop(deployment_id, None)
        self._sample_decided_at.pop(deployment_id, None)
        for gauge in (metrics.DESIRED_REPLICAS, metrics.OBSERVED_CONCURRENCY):
            with contextlib.suppress(KeyError):
                gauge.remove(deployment_id)

    async def run(self, tick_seconds: float) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(tick_seconds)

    async def subscribe(self, bus: Bus) -> None:
        await bus.subscribe(subjects.CONCURRENCY_SAMPLES, events_pb2.ConcurrencySample, self.on_sample)
        await bus.subscribe(subjects.SCALE_POKES, events_pb2.ScalePoke, self.on_poke)


def scheduler_scale(stub: scheduler_pb2_grpc.SchedulerServiceStub, internal_token: str) -> Scale:
    auth = rpc.internal(internal_token)

    async def scale(deployment_id: str, replicas: int) -> int:
        request = scheduler_pb2.ScaleDeploymentRequest(deployment_id=deployment_id, replicas=replicas)
        reply = await rpc.call(stub.ScaleDeployment, request, auth=auth, timeout=10)
        return int(reply.replicas)

    return scale


def scheduler_deactivate(stub: scheduler_pb2_grpc.SchedulerServiceStub, internal_token: str) -> Deactivate:
    auth = rpc.internal(internal_token)

    async def deactivate(deployment_id: str, idle_seconds: float) -> bool:
        request = scheduler_pb2.DeactivateIdleDeploymentRequest(deployment_id=deployment_id, idle_seconds=idle_seconds)
        reply = await rpc.call(stub.DeactivateIdleDeployment, request, auth=auth, timeout=10)
        return bool(reply.deactivated)

    return deactivate

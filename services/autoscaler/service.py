"""The autoscaler's shell: concurrency samples in from NATS, decisions out to the scheduler.

Samples are timed by this process's clock on arrival, so routers' clocks do not matter. Each tick
decides every known deployment and calls ScaleDeployment only when the decision changed (or the
last call failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from kingpost import rpc
from kingpost.errors import KingpostError, NotFound
from kingpost.events import EventBus
from kingpost.v1 import events_pb2, scheduler_pb2, scheduler_pb2_grpc

from kingpost_autoscaler import metrics
from kingpost_autoscaler.decision import AutoscalingSettings, ScaleState, average_concurrency, decide
from kingpost_autoscaler.window import ConcurrencyWindow

log = logging.getLogger(__name__)

CONCURRENCY_SUBJECTS = "kp.metrics.concurrency.>"
HORIZON_SECONDS = 3600.0  # the longest autoscaling window Baseten allows

# (deployment_id, replicas) → the count the scheduler settled on.
Scale = Callable[[str, int], Awaitable[int]]


class Autoscaler:
    def __init__(
        self,
        scale: Scale,
        settings_for: Callable[[str], AutoscalingSettings],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._scale = scale
        self._settings_for = settings_for
        self._clock = clock
        self._window = ConcurrencyWindow(HORIZON_SECONDS)
        self._states: dict[str, ScaleState] = {}
        self._sent: dict[str, int] = {}
        self.samples_seen = 0

    async def on_sample(self, sample: events_pb2.ConcurrencySample) -> None:
        now = self._clock()
        for d in sample.deployments:
            self._window.record(sample.router_id, d.deployment_id, d.in_flight + d.queued, now)
        self.samples_seen += 1

    async def tick(self) -> None:
        now = self._clock()
        for deployment_id in self._window.deployments():
            settings = self._settings_for(deployment_id)
            samples = self._window.samples(deployment_id, now, settings.autoscaling_window)
            desired, state = decide(settings, samples, self._states.get(deployment_id, ScaleState()), now)
            self._states[deployment_id] = state
            metrics.DESIRED_REPLICAS.labels(deployment_id).set(desired)
            metrics.OBSERVED_CONCURRENCY.labels(deployment_id).set(
                average_concurrency(samples, now, settings.autoscaling_window) or 0.0)
            if self._sent.get(deployment_id) != desired:
                await self._apply(deployment_id, desired)
        self._window.prune(now)

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
        for gauge in (metrics.DESIRED_REPLICAS, metrics.OBSERVED_CONCURRENCY):
            with contextlib.suppress(KeyError):
                gauge.remove(deployment_id)

    async def run(self, tick_seconds: float) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(tick_seconds)

    async def subscribe(self, bus: EventBus):
        return await bus.subscribe(CONCURRENCY_SUBJECTS, events_pb2.ConcurrencySample, self.on_sample)


def scheduler_scale(stub: scheduler_pb2_grpc.SchedulerServiceStub, internal_token: str) -> Scale:
    auth = rpc.internal(internal_token)

    async def scale(deployment_id: str, replicas: int) -> int:
        request = scheduler_pb2.ScaleDeploymentRequest(deployment_id=deployment_id, replicas=replicas)
        reply = await rpc.call(stub.ScaleDeployment, request, auth=auth, timeout=10)
        return int(reply.replicas)

    return scale

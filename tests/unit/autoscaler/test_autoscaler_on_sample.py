"""Decisions on a sample's arrival: a load step is acted on at its first sample, a lull waits for the tick."""

from __future__ import annotations

from kingpost.v1 import events_pb2

from kingpost.autoscaling_settings import AutoscalingSettings
from kingpost_autoscaler.service import Autoscaler

SETTINGS = AutoscalingSettings(min_replica=1, max_replica=10, autoscaling_window=60, scale_down_delay=0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Scheduler:
    def __init__(self) -> None:
        self.calls: list[tuple[float, int]] = []
        self.clock: Clock | None = None

    async def scale(self, deployment_id: str, replicas: int) -> int:
        assert self.clock is not None
        self.calls.append((self.clock.now, replicas))
        return replicas


def sample(concurrency: int) -> events_pb2.ConcurrencySample:
    return events_pb2.ConcurrencySample(router_id="r1", deployments=[
        events_pb2.DeploymentConcurrency(deployment_id="dep_a", in_flight=concurrency)])


def autoscaler() -> tuple[Autoscaler, Clock, Scheduler]:
    clock, scheduler = Clock(), Scheduler()
    scheduler.clock = clock
    return Autoscaler(scheduler.scale, lambda _d: SETTINGS, clock), clock, scheduler


async def steady(a: Autoscaler, clock: Clock, concurrency: int, seconds: int) -> None:
    """One router sample a second and a tick every 2 s, as in the mesh."""
    for i in range(seconds):
        clock.now += 1
        await a.on_sample(sample(concurrency))
        if i % 2:
            await a.tick()


async def test_a_step_from_1_to_8_concurrent_is_decided_at_its_first_sample() -> None:
    a, clock, scheduler = autoscaler()
    await steady(a, clock, 1, 60)  # a minute at 1 in flight: 2 replicas (1 / 0.7)
    assert scheduler.calls[-1][1] == 2
    before = len(scheduler.calls)
    clock.now += 1
    step = clock.now
    await a.on_sample(sample(8))  # no tick in between
    assert len(scheduler.calls) == before + 1
    at, replicas = scheduler.calls[-1]
    assert at == step and replicas > 2  # panic: the panic window's average alone justifies more


async def test_on_arrival_decisions_are_at_most_every_half_second_per_deployment() -> None:
    a, clock, scheduler = autoscaler()
    await steady(a, clock, 1, 10)
    before = len(scheduler.calls)
    clock.now += 1
    await a.on_sample(sample(4))
    clock.now += 0.2
    await a.on_sample(sample(9))  # within the gap: recorded, not decided
    assert len(scheduler.calls) == before + 1
    await a.tick()  # the tick decides with it
    assert len(scheduler.calls) == before + 2 and scheduler.calls[-1][1] > scheduler.calls[-2][1]


async def test_a_lull_is_not_decided_on_arrival_but_at_the_tick() -> None:
    a, clock, scheduler = autoscaler()
    await steady(a, clock, 7, 60)
    high = scheduler.calls[-1][1]
    assert high == 10
    for _ in range(70):  # a quiet stable window: samples alone never scale down
        clock.now += 1
        await a.on_sample(sample(1))
    assert scheduler.calls[-1][1] == high
    await a.tick()
    assert scheduler.calls[-1][1] == high // 2  # the tick halves at most, as before

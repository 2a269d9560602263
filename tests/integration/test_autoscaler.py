"""The autoscaler with real NATS: routers' samples in, ScaleDeployment calls out to a scheduler double."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from kingpost import deployment_status, rpc
from kingpost.autoscaling_settings import AutoscalingSettings
from kingpost.bus import subjects
from kingpost.bus.nats_bus import NatsBus
from kingpost.v1 import events_pb2, scheduler_pb2, scheduler_pb2_grpc
from kingpost_autoscaler.service import Autoscaler, scheduler_deactivate, scheduler_scale

WAIT_S = 10.0


class SchedulerDouble(scheduler_pb2_grpc.SchedulerServiceServicer):
    """Records ScaleDeployment calls; answers NOT_FOUND for deployments it was told are gone."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.gone: set[str] = set()
        self.metadata: list[dict[str, str]] = []

    async def ScaleDeployment(self, request, context):
        self.metadata.append(dict(context.invocation_metadata()))
        self.calls.append((request.deployment_id, request.replicas))
        if request.deployment_id in self.gone:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no deployment {request.deployment_id}")
        return scheduler_pb2.ScaleDeploymentResponse(replicas=request.replicas)

    async def DeactivateIdleDeployment(self, request, context):
        self.calls.append((request.deployment_id, -1))  # -1: deactivated
        return scheduler_pb2.DeactivateIdleDeploymentResponse(deactivated=True)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def scheduler() -> AsyncIterator[tuple[SchedulerDouble, scheduler_pb2_grpc.SchedulerServiceStub, str]]:
    double = SchedulerDouble()
    server = grpc.aio.server()
    scheduler_pb2_grpc.add_SchedulerServiceServicer_to_server(double, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = rpc.channel(f"127.0.0.1:{port}")
    yield double, scheduler_pb2_grpc.SchedulerServiceStub(channel), f"127.0.0.1:{port}"
    await channel.close()
    await server.stop(None)


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[NatsBus]:
    bus = await NatsBus.connect(nats_url, "test-autoscaler")
    yield bus
    await bus.close()


async def publish(bus: NatsBus, router_id: str, **in_flight: int) -> None:
    sample = events_pb2.ConcurrencySample(
        router_id=router_id,
        deployments=[events_pb2.DeploymentConcurrency(deployment_id=d, in_flight=n)
                     for d, n in in_flight.items()],
    )
    await bus.publish_fast(subjects.concurrency_subject(router_id), sample)


async def until_seen(autoscaler: Autoscaler, count: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while autoscaler.samples_seen < count:
        assert time.monotonic() < deadline, f"the autoscaler saw {autoscaler.samples_seen} of {count} samples"
        await asyncio.sleep(0.01)


SETTINGS = AutoscalingSettings(min_replica=0, max_replica=10, concurrency_target=1,
                               target_utilization_percentage=100, autoscaling_window=10, scale_down_delay=30)


async def test_scales_up_on_load_summed_across_routers_and_down_after_the_delay(
    bus: NatsBus, scheduler
) -> None:
    double, stub, _ = scheduler
    clock = FakeClock()
    autoscaler = Autoscaler(scheduler_scale(stub, "secret-token"), lambda _d: SETTINGS, clock)
    await autoscaler.subscribe(bus)
    await bus.flush()

    await publish(bus, "router-1", dep_a=2)
    await until_seen(autoscaler, 1)
    assert double.calls == [("dep_a", 2)]  # a step up is acted on at its first sample, not at the tick
    assert double.metadata[0]["x-kingpost-internal"] == "secret-token"
    await publish(bus, "router-2", dep_a=2)  # same second: within the gap between on-arrival decisions
    await until_seen(autoscaler, 2)
    assert double.calls == [("dep_a", 2)]
    await autoscaler.tick()
    assert double.calls == [("dep_a", 2), ("dep_a", 4)]  # summed across routers

    await autoscaler.tick()  # same decision: no call
    clock.now += 20  # the window has gone quiet, but the scale-down delay holds the count
    await autoscaler.tick()
    assert double.calls == [("dep_a", 2), ("dep_a", 4)]

    clock.now += 11  # 31 s since load last justified 4: down, at most halving per decision
    await autoscaler.tick()
    clock.now += 2
    await autoscaler.tick()
    clock.now += 2
    await autoscaler.tick()
    assert double.calls == [("dep_a", 2), ("dep_a", 4), ("dep_a", 2), ("dep_a", 1), ("dep_a", 0)]


def table(deployment_id: str, *, desired: int, status: str = "ACTIVE", **settings: int) -> scheduler_pb2.RouteTable:
    values = dict(min_replica=0, max_replica=4, autoscaling_window=10, scale_down_delay=30, concurrency_target=1,
                  target_utilization_percentage=100) | settings
    return scheduler_pb2.RouteTable(version=1, models=[scheduler_pb2.ModelRoute(
        model_id="m1", name="m", deployments=[scheduler_pb2.DeploymentRoute(
            deployment_id=deployment_id, active=True, status=deployment_status.value(status),
            autoscaling=scheduler_pb2.DeploymentAutoscaling(desired_replicas=desired, **values))])])


async def test_follows_the_route_tables_settings_and_scales_to_zero_only_after_a_silent_delay(scheduler) -> None:
    double, stub, _ = scheduler
    clock = FakeClock()
    autoscaler = Autoscaler(scheduler_scale(stub, ""), lambda _d: AutoscalingSettings(), clock)
    await autoscaler.on_table(table("dep_z", desired=1))
    for _ in range(14):  # 28 s of silence: within the 30-s delay
        clock.now += 2
        await autoscaler.tick()
    assert double.calls == []
    clock.now += 2
    await autoscaler.tick()
    assert double.calls == [("dep_z", 0)]

    # min_replica 1 from the table: back to 1, and never to zero again.
    await autoscaler.on_table(table("dep_z", desired=0, min_replica=1))
    clock.now += 2
    await autoscaler.tick()
    assert double.calls[-1] == ("dep_z", 1)


async def test_a_poke_at_zero_scales_up_at_once_without_a_tick(bus: NatsBus, scheduler) -> None:
    double, stub, _ = scheduler
    clock = FakeClock()
    autoscaler = Autoscaler(scheduler_scale(stub, ""), lambda _d: AutoscalingSettings(), clock)
    await autoscaler.subscribe(bus)
    await bus.flush()
    await autoscaler.on_table(table("dep_cold", desired=0, status="SCALED_TO_ZERO"))
    clock.now += 100
    await bus.publish_fast(subjects.scale_poke_subject("dep_cold"),
                           events_pb2.ScalePoke(deployment_id="dep_cold", queued=1))
    deadline = time.monotonic() + WAIT_S
    while not double.calls:
        assert time.monotonic() < deadline, "no ScaleDeployment after a poke"
        await asyncio.sleep(0.01)
    assert double.calls == [("dep_cold", 1)]


async def test_a_deployment_gone_from_the_table_is_no_longer_scaled(scheduler) -> None:
    double, stub, _ = scheduler
    clock = FakeClock()
    autoscaler = Autoscaler(scheduler_scale(stub, ""), lambda _d: AutoscalingSettings(), clock)
    await autoscaler.on_table(table("dep_old", desired=1, scale_down_delay=0))
    await autoscaler.on_table(scheduler_pb2.RouteTable(version=2))
    clock.now += 10
    await autoscaler.tick()
    assert double.calls == []


async def test_defaults_keep_one_replica_and_a_gone_deployment_is_dropped(bus: NatsBus, scheduler) -> None:
    double, stub, _ = scheduler
    clock = FakeClock()
    autoscaler = Autoscaler(scheduler_scale(stub, ""), lambda _d: AutoscalingSettings(), clock)
    await autoscaler.subscribe(bus)
    await bus.flush()
    double.gone.add("dep_gone")

    await publish(bus, "router-1", dep_busy=50, dep_gone=1)
    await until_seen(autoscaler, 1)
    await autoscaler.tick()
    assert sorted(double.calls) == [("dep_busy", 1), ("dep_gone", 1)]  # Baseten's default max is 1

    clock.now += 5
    await autoscaler.tick()
    assert len(double.calls) == 2  # neither asked again: one settled, the other is gone


async def test_the_autoscaler_process_calls_the_scheduler_and_stops_on_sigterm(
    nats_url: str, bus: NatsBus, scheduler, tmp_path: Path
) -> None:
    double, _, address = scheduler
    config = tmp_path / "autoscaler.toml"
    config.write_text(f'nats_url = "{nats_url}"\nscheduler_address = "{address}"\ntick_seconds = 0.1\n')
    log_path = tmp_path / "autoscaler.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", "import pathlib, sys; from kingpost_autoscaler.main import main; "
                                   "main(pathlib.Path(sys.argv[1]))", str(config)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + WAIT_S * 3
        while not double.calls:
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            await publish(bus, "router-9", dep_proc=3)
            await asyncio.sleep(0.1)
        assert double.calls[0] == ("dep_proc", 1)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


async def test_a_loading_deployment_is_not_scaled_down_and_its_delay_starts_once_ready(scheduler) -> None:
    double, stub, _ = scheduler
    clock = FakeClock()
    autoscaler = Autoscaler(scheduler_scale(stub, ""), lambda _d: AutoscalingSettings(), clock)
    await autoscaler.on_table(table("dep_slow", desired=1, status="DEPLOYING"))
    for _ in range(30):  # a minute of loading, with no traffic and a 30-s delay
        clock.now += 2
        await autoscaler.tick()
    assert double.calls == []
    await autoscaler.on_table(table("dep_slow", desired=1, status="ACTIVE"))
    for _ in range(14):  # ready now: the delay counts from the last loading tick
        clock.now += 2
        await autoscaler.tick()
    assert double.calls == []
    clock.now += 2
    await autoscaler.tick()
    assert double.calls == [("dep_slow", 0)]


async def test_a_deployment_idle_at_zero_for_the_idle_period_is_deactivated(bus: NatsBus, scheduler) -> None:
    double, stub, _ = scheduler
    clock = FakeClock()
    day = 86400.0
    autoscaler = Autoscaler(scheduler_scale(stub, ""), lambda _d: AutoscalingSettings(), clock,
                            deactivate=scheduler_deactivate(stub, ""), idle_seconds=14 * day)
    await autoscaler.subscribe(bus)
    await bus.flush()
    await autoscaler.on_table(table("dep_idle", desired=0, status="SCALED_TO_ZERO"))
    clock.now += 13 * day
    await bus.publish_fast(subjects.scale_poke_subject("dep_idle"),
                           events_pb2.ScalePoke(deployment_id="dep_idle", queued=1))  # a request on day 13
    deadline = time.monotonic() + WAIT_S
    while autoscaler.pokes_seen < 1:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    await autoscaler.tick()
    assert double.calls == [("dep_idle", 1)]
    clock.now += 13 * day + 100  # down to zero long since; day 26: not yet 14 days since the request
    await autoscaler.tick()
    clock.now += 10
    await autoscaler.tick()
    assert double.calls == [("dep_idle", 1), ("dep_idle", 0)]
    clock.now += day
    await autoscaler.tick()
    assert double.calls == [("dep_idle", 1), ("dep_idle", 0), ("dep_idle", -1)]

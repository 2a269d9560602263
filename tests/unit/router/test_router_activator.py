"""The activator on an event loop, with no sockets: waiters woken by the slot queue's decisions, a
client that hangs up mid-hand-over, pokes while held (on the in-memory bus), runners that come back."""

from __future__ import annotations

import asyncio
import random

import pytest

from kingpost.bus.memory_bus import MemoryBroker, MemoryBus
from kingpost.bus.subjects import scale_poke_subject
from kingpost.errors import DeadlineExceeded, NotFound
from kingpost.v1 import events_pb2
from kingpost.v1 import scheduler_pb2 as s
from kingpost_router.activator import Activator
from kingpost_router.routes import RouteSnapshot
from kingpost_router.slots import SlotQueue

ACTIVE = s.DEPLOYMENT_STATUS_ACTIVE
SCALED_TO_ZERO = s.DEPLOYMENT_STATUS_SCALED_TO_ZERO
RUNNER = s.ReplicaRoute(replica_id="rep_1", address="10.0.0.1:9000")


def snapshot(*deployments: s.DeploymentRoute, version: int = 1) -> RouteSnapshot:
    return RouteSnapshot.from_table(s.RouteTable(version=version, models=[
        s.ModelRoute(model_id="mdl_a", name="a", deployments=deployments)]))


ONE = s.DeploymentRoute(deployment_id="dep_one", active=True, status=ACTIVE, predict_concurrency=1,
                        replicas=[RUNNER])
ZERO = s.DeploymentRoute(deployment_id="dep_zero", active=True, status=SCALED_TO_ZERO)


class Runners:
    """Stands in for the runner channels: `probe(address)` returns once `back(address)` is called."""

    def __init__(self) -> None:
        self.probed: list[str] = []
        self._back: dict[str, asyncio.Future[bool]] = {}
        self.cancelled: list[str] = []

    async def probe(self, address: str) -> bool:
        self.probed.append(address)
        try:
            return await self._back.setdefault(address, asyncio.get_running_loop().create_future())
        except asyncio.CancelledError:
            self.cancelled.append(address)
            raise

    def back(self, address: str) -> None:
        self._back.setdefault(address, asyncio.get_running_loop().create_future()).set_result(True)


def activator_over(*deployments: s.DeploymentRoute, runners: Runners | None = None) -> Activator:
    slots = SlotQueue(max_queue=10, cold_start_timeout=300.0, randrange=random.Random(1).randrange)
    activator = Activator(slots, probe=(runners or Runners()).probe, poke_interval=0.01)
    activator.apply(snapshot(*deployments))
    return activator


async def until_queued(activator: Activator, deployment_id: str, count: int) -> None:
    while activator.slots.queued(deployment_id) != count:
        await asyncio.sleep(0)


async def test_a_waiter_gets_the_slot_its_predecessor_releases() -> None:
    activator = activator_over(ONE)
    dep = activator.snapshot.by_deployment["dep_one"]
    assert activator.slots.take(dep) is not None
    waiter = asyncio.create_task(activator.acquire(dep, 60))
    await until_queued(activator, "dep_one", 1)
    assert not waiter.done()
    activator.release("dep_one", "rep_1")
    assert (await waiter).replica_id == "rep_1"
    assert activator.slots.outstanding == {"rep_1": 1}


async def test_a_client_that_hangs_up_as_its_slot_is_handed_over_passes_it_on() -> None:
    activator = activator_over(ONE)
    dep = activator.snapshot.by_deployment["dep_one"]
    activator.slots.take(dep)
    first = asyncio.create_task(activator.acquire(dep, 60))
    second = asyncio.create_task(activator.acquire(dep, 60))
    await until_queued(activator, "dep_one", 2)
    activator.release("dep_one", "rep_1")  # hands the slot to the first ...
    first.cancel()  # ... which is cancelled before it can run
    with pytest.raises(asyncio.CancelledError):
        await first
    assert (await second).replica_id == "rep_1"
    assert activator.slots.outstanding == {"rep_1": 1} and activator.slots.queued("dep_one") == 0


async def test_a_waiter_past_its_deadline_fails_and_leaves_the_queue() -> None:
    activator = activator_over(ONE)
    dep = activator.snapshot.by_deployment["dep_one"]
    activator.slots.take(dep)
    with pytest.raises(DeadlineExceeded):
        await activator.acquire(dep, 0.01)
    assert activator.slots.queued("dep_one") == 0
    activator.release("dep_one", "rep_1")
    assert activator.slots.outstanding == {}


async def test_held_requests_poke_the_autoscaler_until_a_replica_comes() -> None:
    broker = MemoryBroker()
    activator = activator_over(ZERO)
    activator.bus = MemoryBus(broker)
    pokes: asyncio.Queue[events_pb2.ScalePoke] = asyncio.Queue()
    await MemoryBus(broker).subscribe(scale_poke_subject("dep_zero"), events_pb2.ScalePoke, pokes.put)
    dep = activator.snapshot.by_deployment["dep_zero"]
    held = [asyncio.create_task(activator.acquire(dep, 60)) for _ in range(2)]
    first, second = await pokes.get(), await pokes.get()  # once per poke_interval while they wait
    assert (first.deployment_id, first.queued) == ("dep_zero", 2) and second.queued == 2
    woke = s.DeploymentRoute(deployment_id="dep_zero", active=True, status=ACTIVE, replicas=[RUNNER])
    activator.apply(snapshot(woke, version=2))
    assert [r.replica_id for r in await asyncio.gather(*held)] == ["rep_1", "rep_1"]
    while activator.poking:  # its next turn finds nothing held, and it ends
        await asyncio.sleep(0.01)
    while not pokes.empty():
        assert pokes.get_nowait().queued == 2  # each sent while both waited


async def test_held_requests_fail_when_the_deployment_is_removed() -> None:
    activator = activator_over(ZERO)
    held = asyncio.create_task(activator.acquire(activator.snapshot.by_deployment["dep_zero"], 60))
    await until_queued(activator, "dep_zero", 1)
    activator.apply(snapshot(version=2))
    with pytest.raises(NotFound):
        await held


async def test_a_runner_marked_unreachable_is_probed_and_its_held_requests_go_when_it_answers() -> None:
    runners = Runners()
    activator = activator_over(ONE, runners=runners)
    dep = activator.snapshot.by_deployment["dep_one"]
    activator.mark_unreachable(dep.replicas[0], "replica rep_1 at 10.0.0.1:9000: connection refused")
    activator.mark_unreachable(dep.replicas[0], "again")  # one probe per runner, however many failures
    assert activator.slots.take(dep) is None
    held = asyncio.create_task(activator.acquire(dep, 60))
    await until_queued(activator, "dep_one", 1)
    assert runners.probed == ["10.0.0.1:9000"]
    runners.back("10.0.0.1:9000")
    assert (await held).replica_id == "rep_1"
    assert dict(activator.slots.unreachable()) == {}


async def test_a_table_without_the_unreachable_runner_stops_its_probe() -> None:
    runners = Runners()
    activator = activator_over(ONE, runners=runners)
    activator.mark_unreachable(activator.snapshot.by_deployment["dep_one"].replicas[0], "refused")
    await asyncio.sleep(0)
    moved = s.DeploymentRoute(deployment_id="dep_one", active=True, status=ACTIVE, predict_concurrency=1,
                              replicas=[s.ReplicaRoute(replica_id="rep_1", address="10.0.0.1:9001")])
    activator.apply(snapshot(moved, version=2))
    while not runners.cancelled:
        await asyncio.sleep(0)
    assert runners.cancelled == ["10.0.0.1:9000"]
    assert activator.slots.take(activator.snapshot.by_deployment["dep_one"]).address == "10.0.0.1:9001"


async def test_a_held_chain_entrypoint_wakes_its_dependencies_at_once() -> None:
    broker = MemoryBroker()
    entry = s.DeploymentRoute(deployment_id="dep_entry", active=True, status=SCALED_TO_ZERO,
                              wake_with=["dep_dep", "dep_warm"])
    dep = s.DeploymentRoute(deployment_id="dep_dep", active=True, status=SCALED_TO_ZERO)
    warm = s.DeploymentRoute(deployment_id="dep_warm", active=True, status=ACTIVE, replicas=[RUNNER])
    activator = activator_over(entry, dep, warm)
    activator.bus = MemoryBus(broker)
    pokes: asyncio.Queue[events_pb2.ScalePoke] = asyncio.Queue()
    for d in ("dep_entry", "dep_dep", "dep_warm"):
        await MemoryBus(broker).subscribe(scale_poke_subject(d), events_pb2.ScalePoke, pokes.put)
    held = asyncio.create_task(activator.acquire(activator.snapshot.by_deployment["dep_entry"], 60))
    first, second = await pokes.get(), await pokes.get()
    # The dependency is poked before any request reaches it; one with a replica is not.
    assert {first.deployment_id, second.deployment_id} == {"dep_entry", "dep_dep"}
    held.cancel()
    with pytest.raises(asyncio.CancelledError):
        await held
    while activator.poking:
        await asyncio.sleep(0.01)
    assert all(p.deployment_id != "dep_warm" for p in [pokes.get_nowait() for _ in range(pokes.qsize())])

"""Long quiet calls survive gRPC keepalive pings: a prediction through REST (Envoy → router → runner)
and a route watch, each held for many keepalive intervals.

Every process here pings every second (`grpc_keepalive_seconds = 1`, the runner's
KINGPOST_GRPC_KEEPALIVE_SECONDS=1), so a server whose ping policy refused them would answer GOAWAY
"too_many_pings" within about five seconds; before kingpost set the servers' policy, that cut
predictions at 240 s and route watches every few minutes with the 30-second default. The router runs
in-process on the server `kingpost.service` builds for every service; the runner is a real runner
process; the scheduler's side of the watch is a stand-in (the policy is the server's and the
channel's, not the servicer's).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from kingpost import service
from kingpost.auth import AuthInterceptor, KeyCache, key_digest, new_key
from kingpost.gateway import write_envoy_config
from kingpost.route_watch import watch_routes
from kingpost.settings import ServiceSettings
from kingpost.v1 import inference_pb2_grpc, scheduler_pb2, scheduler_pb2_grpc
from kingpost_router.main import PUBLIC_PREFIXES
from kingpost_router.service import RouterServicer
from kingpost_router.settings import RouterSettings
from tests.fixtures.runner import TRUSSES, running
from tests.fixtures.servers import free_port, running_envoy

DESCRIPTOR = Path(__file__).resolve().parents[2] / "src" / "kingpost" / "envoy" / "kingpost.binpb"
KEEPALIVE = 1.0
QUIET_SECONDS = 8.0  # eight client pings, and as many from each server
KEY = new_key()


@pytest.fixture
def envoy(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """Envoy with kingpost's config in front of a router on the returned port: (rest port, router port)."""
    rest, admin, router = free_port(), free_port(), free_port()
    config = write_envoy_config(
        tmp_path / "envoy.yaml", rest_port=rest, grpc_port=free_port(), admin_port=admin,
        router=f"127.0.0.1:{router}", scheduler=f"127.0.0.1:{free_port()}",
        builder=f"127.0.0.1:{free_port()}", descriptor_path=DESCRIPTOR)
    with running_envoy(config, admin):
        yield rest, router


def route_table(runner_address: str) -> scheduler_pb2.RouteTable:
    replica = scheduler_pb2.ReplicaRoute(replica_id="rep_1", address=runner_address)
    deployment = scheduler_pb2.DeploymentRoute(deployment_id="dep_dev", active=True, replicas=[replica],
                                               status=scheduler_pb2.DEPLOYMENT_STATUS_ACTIVE)
    model = scheduler_pb2.ModelRoute(model_id="mdl_sleep", name="sleep", development_deployment_id="dep_dev",
                                     deployments=[deployment])
    return scheduler_pb2.RouteTable(version=1, api_key_sha256=[key_digest(KEY)], models=[model])


async def test_a_quiet_prediction_outlasts_many_keepalive_intervals_through_rest(envoy) -> None:
    rest, router_port = envoy
    settings = RouterSettings(router_id="router-keepalive", scheduler_address="unused:1",
                              grpc_keepalive_seconds=KEEPALIVE)
    keys = KeyCache()
    router = RouterServicer(settings, keys)
    server = service.grpc_server(settings, [AuthInterceptor(keys, public_prefixes=PUBLIC_PREFIXES)])
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(router, server)
    server.add_insecure_port(f"127.0.0.1:{router_port}")
    await server.start()
    try:
        quick_pings = {"KINGPOST_GRPC_KEEPALIVE_SECONDS": str(KEEPALIVE)}
        async with running(TRUSSES / "sleep", env=quick_pings) as runner:
            router.apply_table(route_table(runner.address))
            async with httpx.AsyncClient(timeout=60) as client:
                started = time.monotonic()
                response = await client.post(
                    f"http://127.0.0.1:{rest}/models/mdl_sleep/development/predict",
                    json={"seconds": QUIET_SECONDS}, headers={"Authorization": f"Api-Key {KEY}"})
                took = time.monotonic() - started
            assert response.status_code == 200, (response.status_code, response.text, runner.output())
            assert response.json() == {"slept": QUIET_SECONDS}
            assert took >= QUIET_SECONDS  # the call really stayed quiet that long
    finally:
        await server.stop(None)
        await router.close()


class Scheduler(scheduler_pb2_grpc.SchedulerServiceServicer):
    """Sends one route table per watch, then keeps the stream open and quiet."""

    def __init__(self) -> None:
        self.watches = 0
        self.hold = asyncio.Event()

    async def WatchRoutes(self, request, context) -> AsyncIterator[scheduler_pb2.WatchRoutesResponse]:  # noqa: N802
        self.watches += 1
        yield scheduler_pb2.WatchRoutesResponse(table=scheduler_pb2.RouteTable(version=self.watches))
        await self.hold.wait()


async def test_a_route_watch_outlasts_many_keepalive_intervals() -> None:
    """The watcher pings every second, the scheduler is on the default interval (30 s): ends that are
    configured differently still agree."""
    scheduler = Scheduler()
    server = service.grpc_server(ServiceSettings())
    scheduler_pb2_grpc.add_SchedulerServiceServicer_to_server(scheduler, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    tables: list[int] = []
    watch = asyncio.create_task(watch_routes(f"127.0.0.1:{port}", lambda table: tables.append(table.version),
                                             watcher="test", keepalive_seconds=KEEPALIVE))
    try:
        deadline = time.monotonic() + 20
        while not tables:
            assert time.monotonic() < deadline, "no route table arrived"
            await asyncio.sleep(0.05)
        await asyncio.sleep(QUIET_SECONDS)
        # One stream the whole time: a dropped stream would have been watched again (table 2).
        assert (scheduler.watches, tables) == (1, [1])
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
        scheduler.hold.set()
        await server.stop(None)

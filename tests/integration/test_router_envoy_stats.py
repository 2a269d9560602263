"""Requests Envoy sends straight to a deployment's replica, which the router never sees, counted all
the same: the real router process (`kingpost router`, `envoy_admin_address` set) reads a real Envoy's
stats and shows them on its /metrics (and so in the scheduler's deployment metrics) and in its
concurrency samples on a real NATS.

The route table comes from the real scheduler (in-process, SQLite; a builder and a node as stand-ins,
as in test_scheduler.py); Envoy is kingpost's bootstrap with a plain listener to one cluster named by
the deployment id, in front of a stand-in model server (tests/fixtures/envoy_direct.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kingpost.bus.nats_bus import NatsBus
from kingpost.bus.subjects import concurrency_subject
from kingpost.flat_toml import to_toml
from kingpost.v1 import events_pb2, management_pb2
from kingpost_router.metrics import LATENCY_BUCKETS
from kingpost_scheduler.router_scrape import RouterMetrics
from kingpost_scheduler.settings import SchedulerSettings
from tests.fixtures.envoy_direct import ModelServer, direct_bootstrap
from tests.fixtures.servers import free_port, running_envoy
from tests.integration.test_scheduler import (  # noqa: F401  (fixtures)
    ADMIN_KEY,
    DIGEST,
    Harness,
    Node,
    builder,
    bus,
    harness,
    next_item,
    node,
)

ROUTER_ID = "router-estats"
N = 20


@pytest.fixture
def settings(nats_url: str, builder, tmp_path: Path) -> SchedulerSettings:  # noqa: F811
    return SchedulerSettings(home=tmp_path, nats_url=nats_url, database_url=f"sqlite+aiosqlite:///{tmp_path}/s.db",
                             builder_address=builder[1], admin_key=ADMIN_KEY, reconcile_interval_seconds=0.2)


@dataclass
class Platform:
    model_id: str
    deployment_id: str
    envoy: str  # the direct listener's base URL
    admin: str  # Envoy's admin address
    metrics: str  # the router's metrics address
    model: ModelServer


@pytest.fixture
async def model() -> AsyncIterator[tuple[ModelServer, int]]:
    server, port = ModelServer(), free_port()
    await server.start(port)
    yield server, port
    await server.stop()


@contextlib.contextmanager
def running_router(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kingpost.cli", "router", "--config", str(config)],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=dict(os.environ))
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


async def scrape(client: httpx.AsyncClient, url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = (await client.get(url)).text
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


@pytest.fixture
async def platform(harness: Harness, node: Node, model: tuple[ModelServer, int], nats_url: str,  # noqa: F811
                   tmp_path: Path) -> AsyncIterator[Platform]:
    server, model_port = model
    build_id = harness.builder.add(events_pb2.BUILD_STATE_SUCCEEDED, digest=DIGEST)
    await harness.heartbeat(node)
    created = await harness.call("CreateDeployment", management_pb2.CreateDeploymentRequest(
        model_name="echo", build_id=build_id))  # the model's development deployment
    start = await next_item(node.agent.starts, "StartReplica")
    await harness.heartbeat(node)
    await harness.replica_event(start, events_pb2.REPLICA_STATE_READY, address=f"127.0.0.1:{model_port}")
    deployment_id = created.deployment.id
    admin_port, listen_port, metrics_port = free_port(), free_port(), free_port()
    envoy_config = tmp_path / "envoy.json"
    envoy_config.write_text(json.dumps(direct_bootstrap(
        admin_port=admin_port, listen_port=listen_port, rest_port=free_port(), upstreams={deployment_id: model_port})))
    router_config = tmp_path / "router.toml"
    router_config.write_text(to_toml({
        "home": str(tmp_path / "router"), "nats_url": nats_url, "grpc_host": "127.0.0.1", "grpc_port": free_port(),
        "metrics_host": "127.0.0.1", "metrics_port": metrics_port, "scheduler_address": harness.address,
        "router_id": ROUTER_ID, "websocket_port": free_port(), "envoy_admin_address": f"127.0.0.1:{admin_port}"}))
    log = tmp_path / "router.log"
    with running_envoy(envoy_config, admin_port), running_router(router_config, log) as router:
        platform = Platform(created.model.id, deployment_id, f"http://127.0.0.1:{listen_port}",
                            f"127.0.0.1:{admin_port}", f"127.0.0.1:{metrics_port}", server)
        async with httpx.AsyncClient(timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:  # up, and its route table has the deployment (its in-flight gauge names it)
                assert router.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                try:
                    if deployment_id in (await client.get(f"http://{platform.metrics}/metrics")).text:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        yield platform


async def test_requests_envoy_answered_are_on_the_routers_metrics_exactly_with_their_labels(
    platform: Platform,
) -> None:
    labels = {"model": platform.model_id, "model_name": "echo", "deployment": platform.deployment_id,
              "environment": "development"}
    slowest = 0.0
    async with httpx.AsyncClient(base_url=platform.envoy, timeout=10) as http:
        for path in ["ok"] * N + ["fail"] * 2:
            started = time.perf_counter()
            reply = await http.post(f"/d/{platform.deployment_id}/{path}", content=b"{}")
            slowest = max(slowest, time.perf_counter() - started)
            assert reply.status_code == (200 if path == "ok" else 500)

        def value(samples: dict, name: str, **extra: str) -> float | None:
            return samples.get((name, frozenset({**labels, **extra}.items())))

        deadline = time.monotonic() + 30
        while True:  # counters are read within a second; histograms one read later
            samples = await scrape(http, f"http://{platform.metrics}/metrics")
            if value(samples, "kingpost_router_request_seconds_count") == N + 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    seen = {k: v for k, v in samples.items() if k[0].startswith("kingpost_router_request")}
    assert value(samples, "kingpost_router_requests_total", code="OK") == N, seen  # exactly what was sent
    assert value(samples, "kingpost_router_requests_total", code="INTERNAL") == 2
    assert value(samples, "kingpost_router_request_seconds_count") == N + 2
    # Every answer is in a bucket at or below the first bound past the slowest the client saw.
    bound = min(b for b in LATENCY_BUCKETS if b >= slowest)
    assert value(samples, "kingpost_router_request_seconds_bucket", le=repr(float(bound))) == N + 2
    assert 0 < value(samples, "kingpost_router_request_seconds_sum") <= (N + 2) * slowest
    # The scheduler's deployment metrics (GET /v1/models/{id}/deployments/{id}/metrics) read the same.
    scraper = RouterMetrics([f"router={platform.metrics}"])
    try:
        window = await scraper.window(platform.deployment_id, 300)
    finally:
        await scraper.close()
    assert (window.requests, window.errors) == (N + 2, 2)
    assert window.p50 is not None and window.p50 <= bound


async def test_requests_held_in_envoy_are_in_the_concurrency_samples(platform: Platform, nats_url: str) -> None:
    observer = await NatsBus.connect(nats_url, "estats-observer")
    samples: asyncio.Queue[events_pb2.ConcurrencySample] = asyncio.Queue()
    await observer.subscribe(concurrency_subject(ROUTER_ID), events_pb2.ConcurrencySample, samples.put)

    async def until(in_flight: int, queued: int) -> events_pb2.ConcurrencySample:
        while True:  # samples taken before the requests started may still come first
            sample = await asyncio.wait_for(samples.get(), timeout=15)
            counts = {d.deployment_id: (d.in_flight, d.queued) for d in sample.deployments}
            if sample.router_id.startswith("envoy@") and counts.get(platform.deployment_id) == (in_flight, queued):
                return sample

    try:
        async with httpx.AsyncClient(base_url=platform.envoy, timeout=20) as http:
            held = [asyncio.create_task(http.post(f"/d/{platform.deployment_id}/hold", content=b"{}"))]
            while platform.model.held != 1:
                await asyncio.sleep(0.01)
            held.append(asyncio.create_task(http.post(f"/d/{platform.deployment_id}/hold", content=b"{}")))
            # One at the replica (the cluster holds one at a time), one queued in Envoy.
            sample = await until(1, 1)
            assert sample.router_id == f"envoy@{platform.admin}"
            assert platform.model.held == 1
            async with httpx.AsyncClient(timeout=5) as client:
                gauges = await scrape(client, f"http://{platform.metrics}/metrics")
            assert gauges[("kingpost_router_in_flight", frozenset({
                "model": platform.model_id, "model_name": "echo", "deployment": platform.deployment_id}.items()))] == 1
            assert gauges[("kingpost_router_queued", frozenset())] == 1
            platform.model.release.set()
            assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
            await until(0, 0)
    finally:
        await observer.close()


async def test_an_admin_address_with_nothing_or_something_else_there_is_read_again_and_counts_nothing() -> None:
    from aiohttp import ClientSession, web

    from kingpost_router.envoy_poll import EnvoyPoller
    from kingpost_router.routes import RouteSnapshot

    answer = {"text": "<html>not Envoy</html>"}

    async def stats(request: web.Request) -> web.Response:
        return web.Response(text=answer["text"])

    port = free_port()
    poller = EnvoyPoller(f"127.0.0.1:{port}", RouteSnapshot.empty)
    async with ClientSession() as session:
        assert not await poller.read(session)  # nothing listening
        app = web.Application()
        app.router.add_get("/stats/prometheus", stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            assert not await poller.read(session)  # not Envoy's stats
            assert poller.totals.names() == set()
            answer["text"] = (Path(__file__).parents[1] / "unit/router/data/envoy-1.40-after.prom").read_text()
            assert await poller.read(session)
            assert poller.totals.get("dep_a").codes[200] == 7
        finally:
            await runner.cleanup()

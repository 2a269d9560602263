"""API keys checked inside a real Envoy (issue 20): kingpost's REST listener (kingpost.gateway), its
routes from a file Envoy watches (RDS), built by xds.py with envoy_keys' entries on every direct
route, in front of stand-in runners. No request here reaches a router: none is running.

Envoy answers as the router does (the expected bodies are the router's own rule, kingpost.auth and
key_scopes), and a key taken out of the table stops working when the file is rewritten, while other
keys go on working and a request in flight finishes.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from kingpost.auth import KeyCache, key_digest, key_refusal
from kingpost.gateway import render_envoy_config
from kingpost.key_scopes import Scope
from kingpost.v1 import scheduler_pb2 as s
from kingpost.gateway_direct import ROUTE_CONFIGURATION_TYPE, discovery
from kingpost_router.routes import RouteSnapshot
from kingpost_router.xds import envoy_resources, route_configuration
from tests.fixtures.servers import free_port, running_envoy

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTOR = ROOT / "src" / "kingpost" / "envoy" / "kingpost.binpb"
ACTIVE = s.DEPLOYMENT_STATUS_ACTIVE

ADMIN = "kp_1234abcd_adminadminadminadminadminadminad"
KEEP = "kp_5678abcd_keepkeepkeepkeepkeepkeepkeepke"
ONLY_B = "kp_9abcabcd_onlybonlybonlybonlybonlybonlyb"
# Keys of every length around SHA-256's block and padding boundaries (the Lua hashes them).
ODD_LENGTHS = tuple("k" * n for n in (1, 54, 55, 56, 57, 63, 64, 65, 119, 120, 128, 300))
PATH_A = "/models/alpha/development/predict"


@dataclass
class Runner:
    """A replica's HTTP data plane standing in (POST /predict, as Envoy's direct routes call it):
    answers "<name> <body>"; the body b"hold" sends a first chunk, then waits for `release`."""

    name: str
    calls: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def predict(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        body = (await request.read()).decode()
        response = web.StreamResponse(headers={"content-type": "text/plain"})
        await response.prepare(request)
        await response.write(f"{self.name} {body}".encode())
        if body == "hold":
            await self.release.wait()
            await response.write(b" done")
        await response.write_eof()
        return response


@dataclass(frozen=True)
class Ports:
    rest: int
    admin: int
    router: int
    runners: dict[str, int]


def route_table(ports: Ports, keys: tuple[str, ...], version: int) -> s.RouteTable:
    def model(model_id: str, name: str) -> s.ModelRoute:
        return s.ModelRoute(model_id=model_id, name=name, development_deployment_id=f"dep_{name}", deployments=[
            s.DeploymentRoute(deployment_id=f"dep_{name}", active=True, status=ACTIVE, replicas=[
                s.ReplicaRoute(replica_id=f"rep_{name}", address=f"127.0.0.1:{ports.runners[name]}",
                               http_address=f"127.0.0.1:{ports.runners[name]}")])])

    return s.RouteTable(version=version, models=[model("mdl_a", "alpha"), model("mdl_b", "beta")],
                        api_key_sha256=[key_digest(k) for k in keys],
                        invoke_only_keys={key_digest(ONLY_B): s.InvokeScope(model_ids=["mdl_b"])})


def routes_file(snapshot: RouteSnapshot) -> dict[str, Any]:
    """The RDS file: xds.py's routes (all go straight to runners here, each with its model's key
    check, envoy_keys.route_key_fields)."""
    resources = envoy_resources(snapshot, router_cluster="router")
    config = route_configuration(resources, name="rest", after=[
        {"match": {"prefix": "/"}, "route": {"cluster": "router", "timeout": "0s"}}])
    return discovery([config], ROUTE_CONFIGURATION_TYPE, snapshot.version)


def push(directory: Path, table: s.RouteTable) -> None:
    """Rewrite the routes file as a control plane does: whole, then renamed over the old one."""
    staged = directory / "routes.json.tmp"
    staged.write_text(json.dumps(routes_file(RouteSnapshot.from_table(table))))
    os.replace(staged, directory / "routes.json")


def bootstrap(ports: Ports, directory: Path, clusters: list[dict[str, Any]]) -> dict[str, Any]:
    config = render_envoy_config(
        rest_port=ports.rest, grpc_port=free_port(), admin_port=ports.admin,
        router=f"127.0.0.1:{ports.router}", scheduler=f"127.0.0.1:{ports.router}",
        builder=f"127.0.0.1:{ports.router}", descriptor_path=DESCRIPTOR)
    [rest] = [listener for listener in config["static_resources"]["listeners"] if listener["name"] == "rest"]
    manager = rest["filter_chains"][0]["filters"][0]["typed_config"]
    [transcoder] = [f for f in manager["http_filters"] if f["name"].endswith("grpc_json_transcoder")]
    transcoder["typed_config"]["match_incoming_request_route"] = True  # route on /models/..., as xds.py does
    del manager["route_config"]
    manager["rds"] = {"route_config_name": "rest", "config_source": {
        "resource_api_version": "V3",
        "path_config_source": {"path": str(directory / "routes.json"),
                               "watched_directory": {"path": str(directory)}}}}
    config["static_resources"]["clusters"].extend(clusters)
    config["node"] = {"id": "envoy-keys-test", "cluster": "kingpost"}  # a file config source needs one
    return config


ALL_KEYS = (ADMIN, KEEP, ONLY_B, *ODD_LENGTHS)


@pytest.fixture(scope="module")
def envoy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Ports, Path]]:
    ports = Ports(free_port(), free_port(), free_port(), runners={"alpha": free_port(), "beta": free_port()})
    directory = tmp_path_factory.mktemp("rds")
    table = route_table(ports, ALL_KEYS, version=1)
    push(directory, table)
    clusters = envoy_resources(RouteSnapshot.from_table(table)).clusters
    config = directory.parent / "envoy.json"
    config.write_text(json.dumps(bootstrap(ports, directory, clusters)))
    with running_envoy(config, ports.admin):
        yield ports, directory


@pytest.fixture
async def runners(envoy: tuple[Ports, Path]) -> AsyncIterator[dict[str, Runner]]:
    ports, directory = envoy
    serving = {name: Runner(name) for name in ports.runners}
    servers = []
    for name, runner in serving.items():
        app = web.Application()
        app.router.add_post("/predict", runner.predict)
        server = web.AppRunner(app)
        await server.setup()
        await web.TCPSite(server, "127.0.0.1", ports.runners[name]).start()
        servers.append(server)
    yield serving
    for runner in serving.values():
        runner.release.set()
    for server in servers:
        await server.cleanup()
    push(directory, route_table(ports, ALL_KEYS, version=1))  # as the next test expects it


@pytest.fixture
async def http(envoy: tuple[Ports, Path]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{envoy[0].rest}", timeout=10) as client:
        yield client


def routers_refusal(authorization: str | None, model_id: str = "mdl_a", name: str = "alpha") -> tuple[int, dict]:
    """What the router answers the same request today (its own rule, not a copy of its messages)."""
    keys = KeyCache([key_digest(k) for k in ALL_KEYS], {key_digest(ONLY_B): ["mdl_b"]})
    refusal = key_refusal(keys, authorization)
    if refusal is not None:
        return refusal.http_status, {"error": refusal.message}
    message = Scope(manage=False, model_ids=frozenset({"mdl_b"})).invoke_refusal(model_id, name)
    return 403, {"error": message}


@pytest.mark.parametrize("authorization", [
    f"Api-Key {ADMIN}", f"Bearer {ADMIN}", f"api-key {ADMIN}", f"BEARER {ADMIN}", f"Api-Key   {ADMIN}",
    *(f"Api-Key {key}" for key in ODD_LENGTHS),
])
async def test_a_valid_key_in_each_accepted_form_reaches_the_runner(http, runners, authorization) -> None:
    reply = await http.post(PATH_A, content=b"hi", headers={"authorization": authorization})
    assert (reply.status_code, reply.text) == (200, "alpha hi")


@pytest.mark.parametrize("authorization", [
    None, "", "Api-Key", f"Basic {ADMIN}", ADMIN, f"Token {ADMIN}",  # no key: 401, missing
    "Api-Key kp_00000000_notakeynotakeynotakeynotakeyno", f"Api-Key {ADMIN}x", f"Bearer {ADMIN[:-1]}",  # 401
])
async def test_a_missing_or_unknown_key_is_refused_as_the_router_refuses_it(http, runners, authorization) -> None:
    headers = {} if authorization is None else {"authorization": authorization}
    reply = await http.post(PATH_A, content=b"hi", headers=headers)
    assert (reply.status_code, reply.json()) == routers_refusal(authorization)
    assert reply.status_code == 401
    assert runners["alpha"].calls == 0


async def test_an_invoke_only_key_reaches_its_model_and_gets_403_from_another(http, runners) -> None:
    authorization = f"Api-Key {ONLY_B}"
    ok = await http.post("/models/beta/development/predict", content=b"hi", headers={"authorization": authorization})
    assert (ok.status_code, ok.text) == (200, "beta hi")
    refused = await http.post(PATH_A, content=b"hi", headers={"authorization": authorization})
    assert (refused.status_code, refused.json()) == routers_refusal(authorization) == (
        403, {"error": "this API key may invoke only model mdl_b, not model 'alpha' (mdl_a)"})
    by_host = await http.post("/development/predict", content=b"hi",
                              headers={"authorization": authorization, "host": "model-mdl_a.example.com"})
    assert by_host.status_code == 403
    assert runners["alpha"].calls == 0


async def test_a_revoked_key_stops_within_a_second_while_others_work_and_none_in_flight_drops(
    http, runners, envoy
) -> None:
    ports, directory = envoy
    revoked, kept = {"authorization": f"Api-Key {ADMIN}"}, {"authorization": f"Bearer {KEEP}"}
    async with http.stream("POST", PATH_A, content=b"hold", headers=revoked) as in_flight:
        chunks = in_flight.aiter_text()
        assert await anext(chunks) == "alpha hold"  # at the runner now
        push(directory, route_table(ports, tuple(k for k in ALL_KEYS if k != ADMIN), version=2))
        pushed = time.monotonic()
        while (await http.post(PATH_A, content=b"again", headers=revoked)).status_code == 200:
            assert time.monotonic() - pushed < 1.0, "the revoked key still works a second after the push"
            await asyncio.sleep(0.005)
        stopped = time.monotonic() - pushed
        after = await http.post(PATH_A, content=b"again", headers=revoked)
        assert (after.status_code, after.json()) == (401, {"error": "invalid API key"})
        still = await http.post(PATH_A, content=b"kept", headers=kept)
        assert (still.status_code, still.text) == (200, "alpha kept")
        runners["alpha"].release.set()
        assert [chunk async for chunk in chunks] == [" done"]
    assert in_flight.status_code == 200
    print(f"revoked key refused {stopped * 1000:.1f} ms after the routes file was renamed")


async def test_a_chunked_body_is_checked_here_without_asking_the_router(http, runners) -> None:
    """The listener asks the router (ext_authz) about bodies of unknown length; a direct route does
    not (no router runs here: asking it would answer 503)."""
    async def body():
        yield b"chunk"

    ok = await http.post(PATH_A, content=body(), headers={"authorization": f"Api-Key {KEEP}"})
    assert (ok.status_code, ok.text) == (200, "alpha chunk")
    refused = await http.post(PATH_A, content=body(), headers={"authorization": "Api-Key nope"})
    assert (refused.status_code, refused.json()) == (401, {"error": "invalid API key"})


async def test_a_forged_internal_token_is_no_key(http, runners) -> None:
    """Services' own token (x-kingpost-internal) never comes through the public listener."""
    reply = await http.post(PATH_A, content=b"hi", headers={"x-kingpost-internal": "anything"})
    assert (reply.status_code, reply.json()) == routers_refusal(None)
    assert runners["alpha"].calls == 0

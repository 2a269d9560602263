"""WebSockets (`{prefix}/websocket`) through the whole platform as a user meets them: `kingpost push` of a
Truss with `async def websocket(self, ws)`, then a real WebSocket client (aiohttp's) through Envoy with
an API key on the upgrade request.

One `kingpost up` for the module.
"""

from __future__ import annotations

import asyncio
import re
import time
import tomllib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from tests.e2e.test_custom_servers import variant
from tests.e2e.test_truss_compat import Platform, platform_up
from tests.e2e.test_up import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MODEL_ERROR = "Internal Server Error (in model/chainlet)."


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform_up(tmp_path_factory, "websockets") as platform:
        yield platform


@pytest.fixture(scope="module")
def echo(platform: Platform) -> dict[str, Any]:
    """tests/trusses/websocket as the model's production deployment."""
    return platform.push("websocket", "--environment", "production")


def session(platform: Platform, key: str | None = None, **headers: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(headers={"Authorization": f"Api-Key {key or platform.key}", **headers},
                                 timeout=aiohttp.ClientTimeout(total=60))


def ws_run(platform: Platform, path: str, talk: Callable[[aiohttp.ClientWebSocketResponse], Awaitable[Any]],
           **kw: Any) -> Any:
    """Connect to `path` through Envoy and run `talk` on the connection; its result."""
    async def go() -> Any:
        # aiohttp's client takes 4 MiB messages by default; the platform, 100 MiB.
        async with session(platform, **kw) as s, s.ws_connect(platform.url + path, max_msg_size=0) as ws:
            return await talk(ws)

    return asyncio.run(go())


async def closing(ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, str]:
    """Read until the server closes: its close code and reason."""
    message = await ws.receive()
    assert message.type is aiohttp.WSMsgType.CLOSE, message
    return ws.close_code, message.extra or ""


def test_echo_of_text_binary_and_json_over_each_prefix(platform: Platform, echo: dict[str, Any]) -> None:
    model_id, deployment_id = echo["model"]["id"], echo["deployment"]["id"]

    async def talk(ws: aiohttp.ClientWebSocketResponse) -> list[Any]:
        got: list[Any] = []
        await ws.send_str("hello")
        got.append(await ws.receive_str())
        await ws.send_bytes(b"\x00\x01\xfe\xff")
        got.append(await ws.receive_bytes())
        await ws.send_str("json")
        await ws.send_json({"a": [1, 2], "b": "é"})
        got.append(await ws.receive_json())
        await ws.send_str("bye")  # the model returns: closed with 1000
        got.append(await closing(ws))
        return got

    expected = ["hello", b"\x00\x01\xfe\xff", {"echo": {"a": [1, 2], "b": "é"}}, (1000, "")]
    before = router_requests(platform, deployment_id, "OK")
    for prefix in (f"/models/{model_id}/production", "/models/websocket-echo/environments/production",
                   f"/models/{model_id}/deployment/{deployment_id}"):
        assert ws_run(platform, f"{prefix}/websocket", talk) == expected, prefix
    # Baseten's hosts: the model in the Host, the bare path.
    assert ws_run(platform, "/production/websocket", talk, Host=f"model-{model_id}.kingpost.local") == expected
    # Each connection is counted among the router's requests when it ends, as a request is.
    assert router_requests(platform, deployment_id, "OK") == before + 4


def test_a_large_binary_message_goes_both_ways_intact(platform: Platform, echo: dict[str, Any]) -> None:
    big = bytes(range(256)) * (8 * 1024 * 4)  # 8 MiB

    async def talk(ws: aiohttp.ClientWebSocketResponse) -> bytes:
        await ws.send_bytes(big)
        return await ws.receive_bytes()

    assert ws_run(platform, f"/models/{echo['model']['id']}/production/websocket", talk) == big


def test_a_model_that_raises_closes_with_1011(platform: Platform, echo: dict[str, Any]) -> None:
    async def talk(ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, str]:
        await ws.send_str("raise")
        return await closing(ws)

    assert ws_run(platform, f"/models/{echo['model']['id']}/production/websocket", talk) == (1011, MODEL_ERROR)
    # The traceback is in the model's logs, not sent to the client.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        logs = run_cli(platform.home, "logs", echo["model"]["id"]).stdout
        if "This is test error." in logs:
            break
        time.sleep(0.5)
    assert "This is test error." in logs


def test_a_model_without_websocket_closes_with_1003(platform: Platform) -> None:
    model_id = platform.push("echo")["model"]["id"]  # predict only
    answer = ws_run(platform, f"/models/{model_id}/development/websocket", closing)
    assert answer == (1003, "WebSocket is not implemented on this deployment.")
    development_id = next(d["id"] for d in platform.http.get(f"/v1/models/{model_id}/deployments").json()[
        "deployments"])
    assert router_requests(platform, development_id, "UNIMPLEMENTED") == 1
    # And a websocket model has no predict: said so with a 404.
    refused = platform.http.post("/models/websocket-echo/production/predict", json={})
    assert refused.status_code == 404 and "websocket" in refused.json()["error"]


def test_a_wrong_or_missing_key_is_refused_before_the_upgrade(platform: Platform, echo: dict[str, Any]) -> None:
    path = f"/models/{echo['model']['id']}/production/websocket"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        ws_run(platform, path, closing, key="kp_not_a_key")
    assert refused.value.status == 401
    # What a plain HTTP client reads on the same refusal: the usual error shape.
    plain = httpx.get(platform.url + path, headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                                     "Sec-WebSocket-Version": "13",
                                                     "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert plain.status_code == 401 and plain.json() == {
        "error": "missing API key: send the header 'Authorization: Api-Key <key>'"}
    unknown = httpx.get(platform.url + "/models/nope/production/websocket",
                        headers={"Authorization": f"Api-Key {platform.key}", "Connection": "Upgrade",
                                 "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                 "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert unknown.status_code == 404 and unknown.json() == {"error": "model 'nope' not found"}


def router_metric(platform: Platform, name: str, deployment_id: str = "") -> float:
    """A gauge from the router's /metrics: the deployment's series, or the unlabelled one."""
    port = tomllib.loads((platform.home / "run" / "router.toml").read_text())["metrics_port"]
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    labels = rf'{{[^}}]*deployment="{deployment_id}"[^}}]*}}' if deployment_id else ""
    found = re.search(rf"^{name}{labels} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def router_requests(platform: Platform, deployment_id: str, code: str) -> float:
    """`kingpost_router_requests_total` of a deployment and code, from the router's /metrics."""
    port = tomllib.loads((platform.home / "run" / "router.toml").read_text())["metrics_port"]
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    total = 0.0
    for labels, value in re.findall(r"^kingpost_router_requests_total{([^}]*)} (\S+)$", text, re.M):
        if f'deployment="{deployment_id}"' in labels and f'code="{code}"' in labels:
            total += float(value)
    return total


def test_an_open_connection_holds_a_replica_slot_and_counts_as_load(platform: Platform,
                                                                      echo: dict[str, Any]) -> None:
    """predict_concurrency is 1: while one connection is open, a second waits for its slot (queued, as a
    request would), and the router reports the open one in flight (the autoscaler's input)."""
    path = f"/models/{echo['model']['id']}/production/websocket"
    deployment_id = echo["deployment"]["id"]

    async def until(condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 30
        while not condition():
            assert time.monotonic() < deadline, what
            await asyncio.sleep(0.2)

    async def go() -> str:
        async with session(platform) as s, s.ws_connect(platform.url + path) as first:
            await first.send_str("one")
            assert await first.receive_str() == "one"
            await until(lambda: router_metric(platform, "kingpost_router_in_flight", deployment_id) == 1,
                        "the open connection counted in flight")
            second = asyncio.ensure_future(s.ws_connect(platform.url + path))
            await until(lambda: router_metric(platform, "kingpost_router_queued") == 1,
                        "the second connection waiting for the slot")
            assert not second.done()
            await first.close()
            async with await second as ws:
                await ws.send_str("two")
                return await ws.receive_str()

    assert asyncio.run(go()) == "two"


def test_a_custom_servers_websocket_at_its_predict_endpoint(platform: Platform, tmp_path: Path) -> None:
    """A `docker_server` Truss: the connection goes to the server's predict_endpoint (as truss's proxy sends
    /v1/websocket there), messages both ways, and the server's own close code comes back."""
    model_id = platform.push(variant(tmp_path, "ws-server", 8015))["model"]["id"]

    async def talk(ws: aiohttp.ClientWebSocketResponse) -> list[Any]:
        got: list[Any] = []
        await ws.send_str("hello server")
        got.append(await ws.receive_str())
        await ws.send_bytes(b"\x00\xff" * 40_000)  # over 64 KiB: the long length form
        got.append(len(await ws.receive_bytes()))
        await ws.send_str("close")
        got.append(await closing(ws))
        return got

    assert ws_run(platform, f"/models/{model_id}/development/websocket", talk) == [
        "hello server", 80_000, (4000, "server closing")]


def test_a_custom_server_that_refuses_the_upgrade_is_refused_to_the_client_before_it(
        platform: Platform, tmp_path: Path) -> None:
    """Its predict_endpoint answers the upgrade with 404: the client gets that 404 and the usual error shape,
    no upgrade, and the connection counts as refused."""
    pushed = platform.push(variant(tmp_path, "ws-refusing", 8016, predict_endpoint="/nowhere"))
    path = f"/models/{pushed['model']['id']}/development/websocket"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        ws_run(platform, path, closing)
    assert refused.value.status == 404
    plain = httpx.get(platform.url + path, headers={"Authorization": f"Api-Key {platform.key}",
                                                     "Connection": "Upgrade", "Upgrade": "websocket",
                                                     "Sec-WebSocket-Version": "13",
                                                     "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert plain.status_code == 404
    assert plain.json()["error"].startswith("the server refused a WebSocket at /nowhere: HTTP 404")
    assert router_requests(platform, pushed["deployment"]["id"], "INTERNAL") == 2

"""Everything a user can reach, reached at least once against one `kingpost up`: every REST route of the
protos through Envoy, every CLI command as a user types it, each service's /metrics, and an API key
refused by the router once it is revoked.

The routes and commands are enumerated from the code (tests/e2e/surface.py): a test here fails when a
route or a command exists that it did not exercise.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import signal
import subprocess
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e import baseten_schema
from tests.e2e.surface import cli_commands, command_of, http_routes, unexercised_routes
from tests.e2e.test_up import SERVICES, Up, descendants, free_port, proc_stat, run_cli
from tests.e2e.test_watch import Watch
from tests.unit.test_grafana_dashboard import DASHBOARD, dashboard_metrics

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

T = TypeVar("T")
HOST_DOMAIN = "kingpost.test"  # Baseten-style hosts: model-{id}.<domain>
# Baseten's fields (ModelV1, DeploymentV1), and kingpost's extras beside them.
MODEL_FIELDS = {"id", "name", "created_at", "deployments_count", "production_deployment_id",
                "development_deployment_id", "instance_type_name", "team_name"}
DEPLOYMENT_FIELDS = {"id", "name", "model_id", "created_at", "is_production", "is_development", "status",
                     "status_reason", "active_replica_count", "autoscaling_settings", "environment",
                     "build_id", "predict_concurrency", "replicas", "resources", "instance_type_name",
                     "request_backpressure_settings"}
# Baseten's fields, and kingpost's extensions beside them.
AUTOSCALING_FIELDS = {"min_replica", "max_replica", "autoscaling_window", "scale_down_delay",
                      "concurrency_target", "target_utilization_percentage",
                      "backpressure_policy", "cold_start_timeout_seconds",
                      "request_logging_sample_rate", "request_logging_max_bytes"}
PATCHED_MODEL = b"""
class Model:
    def predict(self, model_input):
        return {"echo": model_input, "patched": True}
"""


@dataclass
class Platform:
    """One `kingpost up`, its admin key, and what this module has exercised on it."""

    home: Path
    up: Up
    key: str
    http: httpx.Client
    called: list[tuple[str, str]] = field(default_factory=list)  # (method, path) of REST calls made
    ran: set[tuple[str, ...]] = field(default_factory=set)  # CLI commands run
    # Baseten's routes whose answers were checked against its published schema (baseten_schema).
    checked: set[baseten_schema.BasetenRoute] = field(default_factory=set)

    def send(self, method: str, path: str, *, host: str | None = None, **kw: Any) -> httpx.Response:
        return self.http.request(method, path, headers={"Host": host} if host else {}, **kw)

    def rest(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        """One REST call through Envoy; its status is asserted, its JSON body returned. A success on a
        route of Baseten's management API must meet Baseten's published schema for it."""
        r = self.send(method, path, **kw)
        assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text}"
        body = r.json()
        if status >= 400:
            assert list(body) == ["error"], body
        elif kw.get("host") is None and (route := baseten_schema.route_of(method, path)) is not None:
            wrong = baseten_schema.problems(route, body)
            assert not wrong, f"{method} {path}: not Baseten's {route.response}:\n" + "\n".join(wrong)
            self.checked.add(route)
        self.called.append((method, path.partition("?")[0]))
        return body

    def routed(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        """`rest`, once the router has the route table that follows a change (it arrives just after
        the change is committed): a deadline, not a sleep."""
        until(lambda: self.send(method, path, **kw).status_code == status or None,
              f"{method} {path} to answer {status}", timeout=30)
        return self.rest(method, path, status, **kw)

    def cli(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = run_cli(self.home, *args)
        command = " ".join(args)
        assert done.returncode == code, f"kingpost {command}: {done.returncode}\n{done.stdout}{done.stderr}"
        self.ran.add(command_of(args))
        return done

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def cli_routed(self, *args: str) -> Any:
        """A `kingpost predict`'s answer, once the router has the route table that follows a change."""
        until(lambda: run_cli(self.home, *args).returncode == 0 or None, " ".join(args), timeout=30)
        return json.loads(self.cli(*args).stdout)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    home = tmp_path_factory.mktemp("surface") / "home"
    rest, grpc = free_port(), free_port()
    up = Up(home, rest, grpc)
    seen: dict[int, str] = {}
    try:
        up.wait_for_curl()
        config = (home / "config.toml").read_text()
        key = next(line.split('"')[1] for line in config.splitlines() if line.startswith("api_key"))
        with httpx.Client(base_url=f"http://127.0.0.1:{rest}", headers={"Authorization": f"Api-Key {key}"},
                          timeout=120) as http:
            yield Platform(home, up, key, http)
        seen = descendants(up.process.pid)
        code = up.stop()
        while (line := up.lines.get(timeout=5)) is not None:
            up.output.append(line)
        assert code == 0, "\n".join(up.output)
    finally:
        if up.process.poll() is None or any(proc_stat(p) for p in seen):
            up.kill_everything(set(seen) | set(descendants(up.process.pid)))


def sample_path(template: str) -> str:
    """A path a route template matches: `{name}` as "x", `{name=literal}` as its literal."""
    return re.sub(r"\{[^}=]*(?:=([^}]*))?\}", lambda m: m.group(1) or "x", template)


def until(check: Callable[[], T | None], what: str, timeout: float = 120.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def assert_no_chat(rest: Callable[..., Any], prefix: str, **kw: Any) -> None:
    """`{prefix}/sync/v1/chat/completions` of a Truss without `chat_completions`: truss's 404."""
    answer = rest("POST", f"{prefix}/sync/v1/chat/completions", 404, json={"messages": []}, **kw)
    assert answer == {"error": "`chat_completions` must only be called if model has it."}


def assert_no_websocket(platform: Platform, prefix: str, host: str | None = None) -> None:
    """`{prefix}/websocket` of a Truss without `websocket`: upgraded, then closed with truss's 1003; a plain
    GET (no upgrade) is told to use a WebSocket client."""
    async def connect() -> tuple[int | None, str]:
        headers = {"Authorization": f"Api-Key {platform.key}", **({"Host": host} if host else {})}
        url = str(platform.http.base_url).rstrip("/") + f"{prefix}/websocket"
        async with aiohttp.ClientSession(headers=headers) as s, s.ws_connect(url) as ws:
            message = await ws.receive(timeout=60)
            return ws.close_code, message.extra

    assert asyncio.run(connect()) == (1003, "WebSocket is not implemented on this deployment.")
    answer = platform.rest("GET", f"{prefix}/websocket", 400, host=host)
    assert "is a WebSocket route" in answer["error"]


def model_host(model_id: str) -> str:
    return f"model-{model_id}.{HOST_DOMAIN}"


# --- Chains (before the REST and CLI tests, which check that every route and command was reached) ------

CHAIN_FILE = Path(__file__).resolve().parents[1] / "chains" / "text_stats.py"


def chain_host(chain_id: str) -> str:
    return f"chain-{chain_id}.{HOST_DOMAIN}"


@pytest.fixture(scope="module")
def text_stats(platform: Platform) -> dict[str, Any]:
    """tests/chains/text_stats.py pushed (published, production) with `kingpost chains push`."""
    pushed = platform.cli_json("chains", "push", str(CHAIN_FILE))
    assert pushed["deployment"]["status"] == "ACTIVE", pushed
    return pushed


def test_a_three_chainlet_chain_answers_run_remote_over_rest(platform: Platform, text_stats: dict[str, Any]
                                                             ) -> None:
    rest = platform.rest
    chain, version = text_stats["chain"], text_stats["deployment"]
    chain_id, version_id = chain["id"], version["id"]
    assert chain["name"] == "text-stats"
    # Each Chainlet is its own deployment, all ACTIVE, the entrypoint last.
    assert [(c["name"], c["is_entrypoint"], c["status"]) for c in version["chainlets"]] in (
        [("Shout", False, "ACTIVE"), ("Count", False, "ACTIVE"), ("TextStats", True, "ACTIVE")],
        [("Count", False, "ACTIVE"), ("Shout", False, "ACTIVE"), ("TextStats", True, "ACTIVE")])
    assert len({c["deployment_id"] for c in version["chainlets"]}) == 3
    assert text_stats["run_remote_url"].endswith(f"/chains/{chain_id}/production/run_remote")

    # The entrypoint calls Shout once per word (a loop) and Count once, through the router.
    expected = {"words": 3, "shouted": ["ONE", "TWO", "THREE"]}
    body = {"text": "one two three"}
    assert platform.routed("POST", f"/chains/{chain_id}/production/run_remote", json=body) == expected
    assert rest("POST", f"/chains/{chain['name']}/environments/production/run_remote", json=body) == expected
    assert rest("POST", f"/chains/{chain_id}/deployment/{version_id}/run_remote", json=body) == expected
    host = chain_host(chain_id)
    assert rest("POST", "/production/run_remote", host=host, json={"text": "a"}) == {"words": 1, "shouted": ["A"]}
    assert rest("POST", "/environments/production/run_remote", host=host, json=body) == expected
    assert rest("POST", f"/deployment/{version_id}/run_remote", host=host, json=body) == expected
    # A body that does not match run_remote's signature: 400 naming the parameter.
    assert rest("POST", f"/chains/{chain_id}/production/run_remote", 400, json={"txt": "x"}) == {
        "error": "Input Parsing Error: `text`: Field required."}

    # Management: the chain, its versions, Chainlet by Chainlet.
    listed = rest("GET", "/v1/chains")["chains"]
    assert [c["id"] for c in listed] == [chain_id] and listed[0]["deployments_count"] == 1
    got = rest("GET", f"/v1/chains/{chain_id}")  # the Chain itself, as Baseten answers it
    assert got == rest("GET", "/v1/chains/text-stats") == listed[0] and got["team_name"] == "default"
    (stored,) = rest("GET", f"/v1/chains/{chain_id}/deployments")["deployments"]
    assert (stored["id"], stored["environment"], stored["status"]) == (version_id, "production", "ACTIVE")
    assert all(c["id"] == c["deployment_id"] and c["instance_type_name"] and c["autoscaling_settings"]
               for c in stored["chainlets"])
    # A version must name one entrypoint and live deployments.
    assert rest("POST", "/v1/chains", 400, json={"chain_name": "x", "chainlets": []}) == {
        "error": "a chain deployment has exactly one entrypoint Chainlet; this one has 0"}

    # The development versions of the same Chainlets, then promoted to production.
    dev = platform.cli_json("chains", "push", str(CHAIN_FILE), "--development")["deployment"]
    assert dev["is_development"] and dev["status"] == "ACTIVE"
    assert platform.routed("POST", f"/chains/{chain_id}/development/run_remote", json=body) == expected
    assert rest("POST", "/development/run_remote", host=host, json=body) == expected
    promoted = rest("POST", f"/v1/chains/{chain_id}/environments/production/promote",
                    json={"deployment_id": "development"})  # the ChainDeployment promoted
    assert (promoted["id"], promoted["chain_id"]) == (dev["id"], chain_id)
    until(lambda: (rest("GET", f"/v1/models/{chain['entrypoint_model_id']}/environments/production")
          ["current_deployment"] or {}).get("id") == promoted["promoted_entrypoint_deployment_id"],
          "the promotion", 120)
    assert platform.routed("POST", f"/chains/{chain_id}/production/run_remote", json=body) == expected


def test_a_dependency_error_names_the_chainlet_and_keeps_its_class(platform: Platform,
                                                                   text_stats: dict[str, Any]) -> None:
    url = f"/chains/{text_stats['chain']['id']}/deployment/{text_stats['deployment']['id']}/run_remote"
    failed = platform.rest("POST", url, 500, json={"text": "a boom b"})
    detail = json.loads(failed["error"])
    assert detail["exception_cls_name"] == "ValueError"
    message = detail["exception_message"]
    assert message.startswith("(showing chained remote errors, root error at the bottom)")
    assert "Error calling dependency Chainlet `Shout`, HTTP status=500." in message
    assert 'raise ValueError(f"cannot shout {word!r}")' in message  # the dependency's own frame
    assert message.rstrip().endswith("ValueError: cannot shout 'boom'")
    # The caller can catch the builtin class it raised.
    caught = platform.rest("POST", url, json={"text": "a boom b", "catch": True})
    assert caught["shouted"][1].endswith("caught ValueError: │   ValueError: cannot shout 'boom'"), caught


def test_a_chain_runs_asynchronously_by_every_prefix(platform: Platform, text_stats: dict[str, Any]) -> None:
    """Baseten's async_run_remote: the entrypoint queued (its calls to other Chainlets synchronous),
    the result read by the chain's path and Host; another chain's host does not find it."""
    rest = platform.rest
    chain_id, version_id = text_stats["chain"]["id"], text_stats["deployment"]["id"]
    host = chain_host(chain_id)
    if not any(d["is_development"] for d in rest("GET", f"/v1/chains/{chain_id}/deployments")["deployments"]):
        platform.cli_json("chains", "push", str(CHAIN_FILE), "--development")
        platform.routed("POST", f"/chains/{chain_id}/development/run_remote", json={"text": "x"})
    body = {"model_input": {"text": "one two"}, "store_result": True}
    queued = []
    for prefix in ("/production", "/development", "/environments/production", f"/deployment/{version_id}"):
        for path, by_host in ((f"/chains/{chain_id}{prefix}", None), (prefix, host)):
            answer = rest("POST", f"{path}/async_run_remote", 201, host=by_host, json=body)
            assert list(answer) == ["request_id"]
            queued.append(answer["request_id"])
    for request_id in queued:
        done = until(lambda: (s := rest("GET", f"/chains/{chain_id}/async_request/{request_id}"))["status"]
                     in ("SUCCEEDED", "FAILED") and s, f"async request {request_id} to end")
        assert (done["status"], done["result"]) == ("SUCCEEDED", {"words": 2, "shouted": ["ONE", "TWO"]}), done
        assert done["model_id"] == text_stats["chain"]["entrypoint_model_id"]
    some = queued[0]
    assert rest("GET", f"/async_request/{some}", host=host)["status"] == "SUCCEEDED"
    assert rest("DELETE", f"/chains/{chain_id}/async_request/{some}")["canceled"] is False
    # The request belongs to this chain: a model's host does not find it.
    other = next(m["id"] for m in rest("GET", "/v1/models")["models"] if m["name"] == "echo")
    assert rest("GET", f"/async_request/{some}", 404, host=model_host(other)) == {
        "error": f"async request '{some}' not found for model '{other}'"}
    # A body without model_input: 400 naming it, as for models.
    assert "model_input" in rest("POST", f"/chains/{chain_id}/production/async_run_remote", 400,
                                 json={"text": "x"})["error"]


def test_a_bad_chain_file_is_refused_before_anything_is_pushed(platform: Platform, tmp_path: Path) -> None:
    before = platform.rest("GET", "/v1/models")["models"]
    bad = tmp_path / "two_entrypoints.py"
    bad.write_text(
        "import truss_chains as chains\n\n\n"
        "@chains.mark_entrypoint\nclass A(chains.ChainletBase):\n"
        "    async def run_remote(self) -> int:\n        return 1\n\n\n"
        "@chains.mark_entrypoint\nclass B(chains.ChainletBase):\n"
        "    async def run_remote(self, x) -> int:\n        return x\n")
    done = platform.cli("chains", "push", str(bad), code=1)
    assert f"has 2 entrypoints, `A` ({bad}:5) and `B` ({bad}:11)" in done.stderr
    assert f"`B` ({bad}:11): parameter `x` of `B.run_remote` has no type annotation" in done.stderr
    assert platform.rest("GET", "/v1/models")["models"] == before
    assert [c["name"] for c in platform.rest("GET", "/v1/chains")["chains"]] == ["text-stats"]


def test_a_chainlet_that_fails_to_load_fails_the_push_naming_it_and_leaves_nothing(platform: Platform,
                                                                                   tmp_path: Path) -> None:
    models = platform.rest("GET", "/v1/models")["models"]
    keys = platform.rest("GET", "/v1/api_keys")["keys"]
    broken = tmp_path / "broken_chain.py"
    broken.write_text(
        "import truss_chains as chains\n\n\n"
        "class Broken(chains.ChainletBase):\n"
        "    def __init__(self) -> None:\n        raise RuntimeError('no weights here')\n\n"
        "    async def run_remote(self, x: int) -> int:\n        return x\n\n\n"
        "@chains.mark_entrypoint('broken-chain')\nclass Front(chains.ChainletBase):\n"
        "    def __init__(self, broken: Broken = chains.depends(Broken)) -> None:\n        self._b = broken\n\n"
        "    async def run_remote(self, x: int) -> int:\n        return await self._b.run_remote(x)\n")
    done = platform.cli("chains", "push", str(broken), code=1)
    assert "error: Chainlet `Broken`: deployment" in done.stderr
    assert "RuntimeError: no weights here" in done.stderr  # its log
    assert platform.rest("GET", "/v1/models")["models"] == models
    assert platform.rest("GET", "/v1/api_keys")["keys"] == keys  # the chain's minted key revoked
    assert [c["name"] for c in platform.rest("GET", "/v1/chains")["chains"]] == ["text-stats"]


def test_chains_cli_inits_pushes_shows_promotes_and_deletes(platform: Platform, tmp_path: Path,
                                                            text_stats: dict[str, Any]) -> None:
    cli_json = platform.cli_json
    chain_file = tmp_path / "greet_chain.py"
    assert cli_json("chains", "init", str(chain_file)) == {"path": str(chain_file)}
    pushed = cli_json("chains", "push", str(chain_file), "--development")
    chain_id = pushed["chain"]["id"]
    assert pushed["chain"]["name"] == "GreetChain" and pushed["deployment"]["is_development"]
    assert platform.routed("POST", f"/chains/{chain_id}/development/run_remote",
                           json={"names": ["Ada", "Bo"]}) == ["Hello, Ada!", "Hello, Bo!"]
    assert {c["name"] for c in cli_json("chains", "list")} == {"text-stats", "GreetChain"}
    shown = cli_json("chains", "get", "GreetChain")
    assert shown["chain"]["id"] == chain_id and shown["chain"]["team_name"] == "default"
    assert [c["name"] for c in shown["deployments"][0]["chainlets"]] == ["Greeter", "GreetChain"]
    text = platform.cli("chains", "get", chain_id).stdout
    assert "Greeter: ACTIVE" in text and "GreetChain [entrypoint]: ACTIVE" in text
    promoted = cli_json("chains", "promote", "GreetChain", "development")
    assert (promoted["id"], promoted["chain_id"]) == (pushed["deployment"]["id"], chain_id)
    assert promoted["promoted_entrypoint_deployment_id"]
    assert platform.routed("POST", f"/chains/{chain_id}/production/run_remote",
                           json={"names": ["Cy"]}) == ["Hello, Cy!"]
    assert cli_json("chains", "delete", "GreetChain") == {"success": True}
    platform.rest("GET", f"/v1/chains/{chain_id}", 404)
    platform.routed("POST", f"/chains/{chain_id}/production/run_remote", 404, json={"names": []})
    # The REST face of delete: text-stats and its Chainlets' models go.
    text_stats_id = text_stats["chain"]["id"]
    assert platform.rest("DELETE", f"/v1/chains/{text_stats_id}") == {  # Baseten's ChainTombstone
        "id": text_stats_id, "deleted": True, "success": True}
    assert platform.rest("GET", "/v1/chains") == {"chains": []}
    names = {m["name"] for m in platform.rest("GET", "/v1/models")["models"]}
    assert not names & {"text-stats", "text-stats.Shout", "text-stats.Count", "GreetChain"}
    assert not {k["name"] for k in platform.rest("GET", "/v1/api_keys")["keys"]} & {
        "chain-text-stats", "chain-GreetChain"}  # the keys minted for their Chainlets are revoked


# --- REST ---------------------------------------------------------------------------------------------


def test_every_rest_route_answers_through_envoy(platform: Platform) -> None:
    rest = platform.rest
    routes = http_routes()
    assert {("GET", "/v1/models"), ("POST", "/models/{model_id}/{target=development}/predict")} <= {
        (r.method, r.template) for r in routes}  # the descriptor was read

    # The example `kingpost up` deployed: models, deployments, the development endpoint by path and by host.
    listed = rest("GET", "/v1/models")
    echo = next(m for m in listed["models"] if m["name"] == "echo")
    assert set(echo) == MODEL_FIELDS and echo["development_deployment_id"].startswith("dep_")
    assert rest("GET", f"/v1/models/{echo['id']}") == echo  # the object itself, as Baseten answers
    (dev,) = rest("GET", f"/v1/models/{echo['id']}/deployments")["deployments"]
    assert set(dev) == DEPLOYMENT_FIELDS and set(dev["autoscaling_settings"]) == AUTOSCALING_FIELDS
    assert (dev["id"], dev["is_development"]) == (echo["development_deployment_id"], True)
    assert dev["status"] == "ACTIVE"
    assert rest("GET", f"/v1/models/{echo['id']}/deployments/{dev['id']}") == dev
    assert rest("GET", f"/v1/models/{echo['id']}/deployments/development") == dev  # Baseten's alias
    assert dev["request_backpressure_settings"] == {"policy": "QUEUE_ON_FULL"}
    # 1 CPU, 512Mi: the smallest catalog type that meets them, as Baseten's instance_type_name too
    assert dev["resources"]["instance_type"] == dev["instance_type_name"] == "1x2"
    assert rest("POST", f"/models/{echo['id']}/development/predict", json={"n": 1}) == {"echo": {"n": 1}}
    by_host = rest("POST", "/development/predict", host=model_host(echo["id"]), json={"n": 2})
    assert by_host == {"echo": {"n": 2}}
    # /sync/{path}: a Truss model's OpenAI-style routes; the echo model has none (truss's 404).
    assert_no_chat(rest, f"/models/{echo['id']}/development")
    assert_no_websocket(platform, f"/models/{echo['id']}/development")
    assert_no_chat(rest, "/development", host=model_host(echo["id"]))
    assert_no_websocket(platform, "/development", host=model_host(echo["id"]))

    # Live reload over REST: the development replica re-imports the patched file, no build.
    patched = rest("POST", f"/v1/models/{echo['id']}/development/patch",
                   json={"files": {"model/model.py": base64.b64encode(PATCHED_MODEL).decode()}})
    assert (patched["deployment_id"], patched["reloaded"], patched["errors"]) == (dev["id"], 1, [])
    assert rest("POST", f"/models/{echo['id']}/development/predict", json=3) == {"echo": 3, "patched": True}

    # A published deployment made over REST from the example's build, then promoted to production.
    made = rest("POST", "/v1/models", json={"model_name": "surface-rest", "build_id": dev["build_id"],
                                             "publish": True})
    model_id, d1 = made["model"]["id"], made["deployment"]["id"]
    assert (made["model"]["name"], made["deployment"]["name"], made["deployment"]["status"]) == (
        "surface-rest", "deployment-1", "DEPLOYING")

    def status(deployment_id: str) -> str:
        return rest("GET", f"/v1/models/{model_id}/deployments/{deployment_id}")["status"]

    until(lambda: status(d1) == "ACTIVE", "deployment-1 to be ACTIVE")
    assert platform.routed("POST", f"/models/{model_id}/deployment/{d1}/predict", json=4) == {"echo": 4}
    assert rest("POST", f"/deployment/{d1}/predict", host=model_host(model_id), json=5) == {"echo": 5}
    assert_no_chat(rest, f"/models/{model_id}/deployment/{d1}")
    assert_no_websocket(platform, f"/models/{model_id}/deployment/{d1}")
    assert_no_chat(rest, f"/deployment/{d1}", host=model_host(model_id))
    assert_no_websocket(platform, f"/deployment/{d1}", host=model_host(model_id))
    candidate = rest("POST", f"/v1/models/{model_id}/deployments/{d1}/promote", json={})
    assert candidate["id"] == d1

    def serving(env: str, deployment_id: str) -> dict[str, Any] | None:
        e = rest("GET", f"/v1/models/{model_id}/environments/{env}")
        done = (e["current_deployment"] or {}).get("id") == deployment_id and not e["promoting_deployment_id"]
        return e if done else None

    production = until(lambda: serving("production", d1), "deployment-1 to serve production")
    assert production["traffic"] == {d1: 100}
    assert rest("GET", f"/v1/models/{model_id}/deployments/production")["id"] == d1  # Baseten's alias
    assert platform.routed("POST", f"/models/{model_id}/production/predict", json=6) == {"echo": 6}
    assert rest("POST", "/production/predict", host=model_host(model_id), json=7) == {"echo": 7}
    assert_no_chat(rest, f"/models/{model_id}/production")
    assert_no_websocket(platform, f"/models/{model_id}/production")
    assert_no_chat(rest, "/production", host=model_host(model_id))
    assert_no_websocket(platform, "/production", host=model_host(model_id))

    # A second deployment: a canary into production, cancelled; then a staging environment of its own.
    d2 = rest("POST", "/v1/models", json={"model_name": "surface-rest", "build_id": dev["build_id"],
                                          "publish": True})["deployment"]["id"]
    rest("POST", f"/v1/models/{model_id}/environments/production/promote",
         json={"deployment_id": d2, "ramp_up_duration_seconds": 600})
    answer = rest("POST", f"/v1/models/{model_id}/environments/production/cancel_promotion", json={})
    assert answer["status"] == "CANCELED" and d2 in answer["message"]  # Baseten's, the environment beside
    cancelled = answer["environment"]
    assert cancelled["traffic"] == {d1: 100}
    assert cancelled["promoting_deployment_id"] == ""
    staging = rest("POST", f"/v1/models/{model_id}/environments",
                   json={"name": "staging", "autoscaling_settings": {"max_replica": 2}})
    assert (staging["name"], staging["autoscaling_settings"]["max_replica"]) == ("staging", 2)
    assert staging["current_deployment"] is None  # Baseten's null, not a missing field
    environments = rest("GET", f"/v1/models/{model_id}/environments")["environments"]
    assert sorted(e["name"] for e in environments) == ["production", "staging"]
    canary = {"ramp_up_while_promoting": True, "ramp_up_duration_seconds": 300}
    patched = rest("PATCH", f"/v1/models/{model_id}/environments/staging",
                   json={"promotion_settings": {**canary, "rolling_deploy": True}})
    assert patched["status"] == "ACCEPTED"  # Baseten's UpdateEnvironmentResponse
    updated = patched["environment"]
    assert updated["promotion_settings"] == {**canary, "redeploy_on_promotion": False, "rolling_deploy": True,
                                             "promotion_cleanup_strategy": "SCALE_TO_ZERO"}
    rest("POST", f"/v1/models/{model_id}/environments/staging/promote",
         json={"deployment_id": d2, "ramp_up_duration_seconds": 0})
    until(lambda: serving("staging", d2), "deployment-2 to serve staging")
    assert platform.routed("POST", f"/models/{model_id}/environments/staging/predict", json=8) == {"echo": 8}
    assert rest("POST", "/environments/staging/predict", host=model_host(model_id), json=9) == {"echo": 9}
    # The KServe V2 REST infer call reaches the runner under every prefix; a Truss says it serves none
    # (tests/e2e/test_triton.py calls a Triton deployment by it).
    for prefix in ("production", "environments/staging", f"deployment/{d1}"):
        refused = rest("POST", f"/models/{model_id}/{prefix}/v2/models/m/infer", 404, json={"inputs": []})
        assert "KServe V2 calls serve Triton model repositories" in refused["error"], refused
    refused = rest("POST", f"/models/{model_id}/development/v2/models/m/infer", 404, json={"inputs": []})
    assert refused == {"error": f"model '{model_id}' has no development deployment"}
    assert_no_chat(rest, f"/models/{model_id}/environments/staging")
    assert_no_websocket(platform, f"/models/{model_id}/environments/staging")
    assert_no_chat(rest, "/environments/staging", host=model_host(model_id))
    assert_no_websocket(platform, "/environments/staging", host=model_host(model_id))

    # A deployment's own settings: name, autoscaling, deactivate (404) and activate.
    renamed = rest("PATCH", f"/v1/models/{model_id}/deployments/{d2}", json={"name": "blue"})
    assert (renamed["id"], renamed["name"]) == (d2, "blue")
    accepted = rest("PATCH", f"/v1/models/{model_id}/deployments/{d1}/autoscaling_settings",
                    json={"max_replica": 2, "scale_down_delay": 120})
    assert accepted["status"] == "ACCEPTED", accepted
    settings = rest("GET", f"/v1/models/{model_id}/deployments/{d1}")["autoscaling_settings"]
    retry = rest("POST", f"/v1/models/{model_id}/deployments/{d1}/retry", json={})  # only a FAILED one retries
    assert (retry["retried"], retry["deployment"]["id"]) == (False, d1) and "not FAILED" in retry["reason"]
    assert (settings["max_replica"], settings["scale_down_delay"]) == (2, 120)
    assert rest("POST", f"/v1/models/{model_id}/deployments/{d2}/deactivate", json={}) == {
        "success": True, "no_op": False}
    assert status(d2) == "INACTIVE"
    assert platform.routed("POST", f"/models/{model_id}/deployment/{d2}/predict", 404, json=10) == {
        "error": f"deployment '{d2}' of model '{model_id}' is inactive (deactivated; "
                 "`kingpost deployments activate` brings it back)"}
    rest("POST", f"/v1/models/{model_id}/deployments/{d2}/activate", json={})
    until(lambda: status(d2) == "ACTIVE", "deployment-2 to be ACTIVE again")
    # An environment's deployment, by the environment's name (Baseten's environment activate/deactivate).
    assert rest("POST", f"/v1/models/{model_id}/environments/staging/deactivate", json={}) == {
        "success": True, "no_op": False}
    assert status(d2) == "INACTIVE"
    assert rest("POST", f"/v1/models/{model_id}/environments/staging/activate", json={}) == {
        "success": True, "no_op": False}
    assert rest("POST", f"/v1/models/{model_id}/environments/staging/activate", json={})["no_op"] is True
    until(lambda: status(d2) == "ACTIVE", "deployment-2 to be ACTIVE again")

    # Wake (Baseten's: 202 at once, a replica asked for) on every prefix, by path and by host.
    for prefix in ("development", "production", "environments/staging", f"deployment/{d2}"):
        owner = echo["id"] if prefix == "development" else model_id
        assert rest("POST", f"/models/{owner}/{prefix}/wake", 202) == {}
        assert rest("POST", f"/{prefix}/wake", 202, host=model_host(owner)) == {}
    rest("POST", f"/models/{model_id}/development/wake", 404)  # it has no development deployment

    # Logs: one deployment's, one model's, one build's.
    deployment_lines = rest("GET", f"/v1/models/{model_id}/deployments/{d1}/logs")["lines"]
    # its build's log (which has no deployment yet) and its replicas' logs
    assert {(line["source"], line["build_id"] or line["deployment_id"]) for line in deployment_lines} == {
        ("build", dev["build_id"]), ("replica", d1)}
    build_lines = rest("GET", f"/v1/builds/{dev['build_id']}/logs")["lines"]
    assert {(line["source"], line["build_id"]) for line in build_lines} == {("build", dev["build_id"])}
    assert any(line["text"] == "build succeeded" for line in build_lines), build_lines
    first = min(line["at"] for line in build_lines)  # RFC 3339, as the query takes it
    assert rest("GET", f"/v1/builds/{dev['build_id']}/logs?since={first}")["lines"] == build_lines
    assert rest("GET", f"/v1/builds/{dev['build_id']}/logs?since=2999-01-01T00:00:00Z")["lines"] == []
    model_lines = rest("GET", f"/v1/models/{echo['id']}/logs")["lines"]
    assert {line["source"] for line in model_lines} >= {"build", "replica"}

    # API keys (Baseten's shapes: the whole key once as `api_key`, `keys` listed), the cluster's status.
    created = rest("POST", "/v1/api_keys", json={"name": "surface-rest", "type": "WORKSPACE_MANAGE_ALL"})
    prefix = created["prefix"]
    assert created["api_key"].startswith(prefix + "_") and created["name"] == "surface-rest"
    listed_key = next(k for k in rest("GET", "/v1/api_keys")["keys"] if k["prefix"] == prefix)
    assert (listed_key["type"], listed_key["name"]) == ("WORKSPACE_MANAGE_ALL", "surface-rest")
    assert rest("DELETE", f"/v1/api_keys/{prefix}") == {"prefix": prefix}
    assert prefix not in {k["prefix"] for k in rest("GET", "/v1/api_keys")["keys"]}

    # Secrets: upsert, list names (never a value), delete.
    secret = rest("POST", "/v1/secrets", json={"name": "surface_token", "value": "s3cr3t-value"})
    assert (secret["name"], secret["team_name"]) == ("surface_token", "default") and "value" not in secret
    again = rest("POST", "/v1/secrets", json={"name": "surface_token", "value": "rotated"})
    assert again["id"] == secret["id"]  # stable across rotation
    secrets_listed = rest("GET", "/v1/secrets")
    assert [s["name"] for s in secrets_listed["secrets"]] == ["surface_token"]
    assert "s3cr3t" not in json.dumps(secrets_listed) and "rotated" not in json.dumps(secrets_listed)
    assert rest("DELETE", "/v1/secrets/surface_token") == {"name": "surface_token"}
    assert rest("DELETE", "/v1/secrets/surface_token", 404) == {"error": "secret 'surface_token' not found"}
    status_now = rest("GET", "/v1/status")
    (node,) = status_now["nodes"]
    assert node["node_id"].startswith("node_") and len(node["replica_ids"]) >= 3  # echo, d1, d2
    assert status_now["models"] == len(rest("GET", "/v1/models")["models"])

    # Async inference: each prefix queues (a request id at once) and counts its queue, by path and by
    # Host; a request's status and cancel by both too (tests/e2e/test_async.py walks the rest).
    queued = []
    hosts = {model_id: model_host(model_id), echo["id"]: model_host(echo["id"])}
    for model, prefix in ((model_id, "/production"), (model_id, "/environments/staging"),
                          (model_id, f"/deployment/{d1}"), (echo["id"], "/development")):
        for path, host in ((f"/models/{model}{prefix}", None), (prefix, hosts[model])):
            answer = rest("POST", f"{path}/async_predict", 201, host=host, json={"model_input": {"a": 1}})
            assert list(answer) == ["request_id"]
            queued.append((model, answer["request_id"]))
            counts = rest("GET", f"{path}/async_queue_status", host=host)
            assert set(counts) == {"model_id", "deployment_id", "num_queued_requests",
                                   "num_in_progress_requests"} and counts["model_id"] == model
    for model, request_id in queued:
        done = until(lambda: (s := rest("GET", f"/models/{model}/async_request/{request_id}"))["status"]
                     == "SUCCEEDED" and s, f"async request {request_id} to succeed")
        assert (done["webhook_status"], done["model_id"]) == ("NO_WEBHOOK_PROVIDED", model)
    model, request_id = queued[-1]
    assert rest("GET", f"/async_request/{request_id}", host=hosts[model])["status"] == "SUCCEEDED"
    for path, host in ((f"/models/{model}/async_request/{request_id}", None),
                       (f"/async_request/{request_id}", hosts[model])):
        assert rest("DELETE", path, host=host)["canceled"] is False

    # Webhook secrets: created (the secret shown), listed newest first, deleted.
    made = rest("POST", "/v1/webhook_secrets", json={})
    assert made["secret"].startswith("whsec_") and set(made) == {"id", "secret", "created_at"}  # the object itself
    secret_id = made["id"]
    assert rest("GET", "/v1/webhook_secrets")["webhook_secrets"][0]["id"] == secret_id
    assert rest("DELETE", f"/v1/webhook_secrets/{secret_id}") == {}
    assert secret_id not in {w["id"] for w in rest("GET", "/v1/webhook_secrets")["webhook_secrets"]}
    assert rest("DELETE", f"/v1/webhook_secrets/{secret_id}", 404) == {
        "error": f"webhook secret {secret_id!r} not found"}
    # Nodes: a join token, the one node `kingpost up` runs, drained and back; a live node is not removed.
    token = rest("POST", "/v1/nodes/join_tokens", json={"ttl_seconds": 600})
    assert token["token"].startswith("kpjoin_") and token["expires_at"]
    (local,) = rest("GET", "/v1/nodes")["nodes"]
    assert (local["name"], local["state"], local["id"]) == ("local", "READY", node["node_id"])
    assert len(local["replica_ids"]) >= 3 and int(local["memory_free_bytes"]) > 0
    assert rest("GET", f"/v1/nodes/{local['name']}")["id"] == local["id"]  # the node itself
    assert rest("POST", f"/v1/nodes/{local['id']}/drain", json={})["state"] == "DRAINING"
    assert rest("POST", f"/v1/nodes/{local['id']}/drain", json={"undo": True})["state"] == "READY"
    refused = rest("DELETE", f"/v1/nodes/{local['id']}", 409)
    assert "is live" in refused["error"]
    rest("GET", "/v1/nodes/no-such-node", 404)
    # The instance-type catalog, cheapest first.
    catalog = rest("GET", "/v1/instance_types")["instance_types"]
    assert catalog[0] == {"name": "1x2", "vcpus": 1, "memory_bytes": str(2 * 2**30), "gpu_type": "",
                          "gpu_count": 0, "vram_bytes": "0", "usd_per_minute": 0.00058,
                          # Baseten's InstanceTypeV1 fields beside kingpost's
                          "id": "1x2", "memory_limit_mib": 2048, "millicpu_limit": 1000,
                          "gpu_memory_limit_mib": 0}
    h100 = next(t for t in catalog if t["name"] == "H100:2x52x468")
    assert (h100["gpu_type"], h100["gpu_count"], h100["vcpus"]) == ("H100", 2, 52)

    # Deleting: the environment, the deployment, the model (404 afterwards).
    assert rest("DELETE", f"/v1/models/{model_id}/environments/staging") == {
        "success": True, "name": "staging", "model_id": model_id, "deleted": True}
    assert rest("DELETE", f"/v1/models/{model_id}/deployments/{d2}") == {
        "success": True, "id": d2, "deleted": True, "model_id": model_id}
    rest("GET", f"/v1/models/{model_id}/deployments/{d2}", 404)
    assert rest("DELETE", f"/v1/models/{model_id}") == {"success": True, "id": model_id, "deleted": True}
    assert rest("GET", f"/v1/models/{model_id}", 404) == {"error": f"model '{model_id}' not found"}

    # The scrape-target list Prometheus reads (http_sd): every service, Envoy and the node's agent, each
    # answering with Prometheus text where it says.
    targets = rest("GET", "/v1/metrics/targets")
    assert sorted(g["labels"]["service"] for g in targets) == sorted([*SERVICES, "envoy"])
    served = ""
    for group in targets:
        (target,) = group["targets"]
        path = group["labels"].get("__metrics_path__", "/metrics")
        scraped = httpx.get(f"http://{target}{path}", timeout=10)
        assert scraped.status_code == 200 and "# TYPE " in scraped.text, group
        served += scraped.text
    # Each metric the Grafana dashboard queries is one these endpoints serve.
    dashboard = dashboard_metrics(json.loads(DASHBOARD.read_text()))
    # (The text format names a counter's family with its _total.)
    assert not {name for name in dashboard if f"# TYPE {name} " not in served and f"# TYPE {name}_total " not in served}
    assert next(g for g in targets if g["labels"]["service"] == "agent")["labels"]["node"] == node["node_id"]

    # A deployment's traffic over a window, from the routers' metrics.
    echo_dev = rest("GET", "/v1/models/echo")["development_deployment_id"]
    slowest = 0.0
    for i in range(3):
        sent = time.perf_counter()
        assert platform.http.post("/models/echo/development/predict", json=i).status_code == 200
        slowest = max(slowest, time.perf_counter() - sent)
    traffic = rest("GET", f"/v1/models/echo/deployments/{echo_dev}/metrics?window_seconds=3600")
    assert traffic["deployment_id"] == echo_dev and traffic["window_seconds"] == 3600
    # Its errors: the two /sync chat completions above that the echo model does not have (404), and the
    # two websockets it has no `websocket` for (UNIMPLEMENTED) with the two plain GETs of that route (400).
    assert traffic["requests"] >= 3 and traffic["request_rate"] > 0 and traffic["errors"] == 6
    assert 0 < traffic["latency_p50_seconds"] <= traffic["latency_p99_seconds"]
    assert traffic["ready_replicas"] >= 1 and traffic["desired_replicas"] >= 1
    # Baseten's SUMMARY shape of the same numbers beside them (its schema is checked by `rest`).
    assert (traffic["mode"], traffic["step_seconds"]) == ("SUMMARY", None)
    names = [m["name"] for m in traffic["metric_descriptors"]]
    assert traffic["metric_values"][0]["values"][names.index("requests")] == [traffic["requests"]]
    assert rest("GET", f"/v1/models/echo/deployments/{echo_dev}/metrics?window_seconds=7200", 400) == {
        "error": "window_seconds = 7200: must be 1 to 3600"}
    rest("GET", "/v1/models/echo/deployments/dep_nope/metrics", 404)

    missing = unexercised_routes(routes, platform.called)
    assert not missing, "REST routes this test does not exercise (add them here):\n" + "\n".join(missing)
    # Every route kingpost shares with Baseten's management API answered at least once, and each answer
    # met Baseten's published schema for it (Platform.rest checks them as they come).
    shared = {b for r in routes if r.template.startswith("/v1/")
              and (b := baseten_schema.route_of(r.method, sample_path(r.template))) is not None}
    assert len(shared) > 20, shared  # the vendored schema was read
    unchecked = sorted(f"{b.method} {b.path}" for b in shared - platform.checked)
    assert not unchecked, "Baseten routes no success was checked on (add a call here):\n" + "\n".join(unchecked)


# --- CLI ----------------------------------------------------------------------------------------------


def test_every_cli_command_works_as_a_user_runs_it(platform: Platform, tmp_path: Path) -> None:
    cli, cli_json = platform.cli, platform.cli_json
    truss = tmp_path / "surface-cli"
    assert cli_json("init", str(truss), "--name", "surface-cli") == {"path": str(truss)}
    assert (truss / "config.yaml").read_text().startswith("model_name: surface-cli\n")
    cli("build", str(truss), "--dockerfile", str(tmp_path / "context"))
    assert (tmp_path / "context" / "Dockerfile").read_text().startswith("FROM ")

    # A plain push publishes, as current truss does; a model's first published deployment serves production.
    pushed = cli_json("push", str(truss))
    d1 = pushed["deployment"]["id"]
    assert (pushed["model"]["name"], pushed["deployment"]["name"], pushed["deployment"]["status"]) == (
        "surface-cli", "deployment-1", "ACTIVE")
    assert pushed["predict_url"].endswith(f"/models/{pushed['model']['id']}/production/predict")
    predicted = platform.cli_routed("predict", "surface-cli", "--deployment", d1, "--data", '{"text": "one"}')
    assert predicted == {"echo": {"text": "one"}}
    production = until(lambda: (e := cli_json("environments", "get", "surface-cli", "production"))[
        "current_deployment"] and e["current_deployment"]["id"] == d1 and e, "deployment-1 to serve production")
    assert production["current_deployment"]["is_production"] is True
    assert platform.cli_routed("predict", "surface-cli", "--data", '"prod"') == {"echo": "prod"}

    # Async from the shell: queue (the id at once), its status until SUCCEEDED, a cancel that is refused.
    queued = cli_json("predict", "surface-cli", "--async", "--data", '{"a": 1}', "--priority", "1")
    request_id = queued["request_id"]
    done = until(lambda: (st := cli_json("async", "status", request_id, "--model", "surface-cli"))["status"]
                 == "SUCCEEDED" and st, "the async request to succeed")
    assert (done["request_id"], done["webhook_status"], done["errors"]) == (request_id, "NO_WEBHOOK_PROVIDED", [])
    refused = platform.cli("async", "cancel", request_id, code=1)
    assert "only a QUEUED request can be canceled; this one is SUCCEEDED" in refused.stdout

    secret = cli_json("webhook-secrets", "create")
    assert secret["secret"].startswith("whsec_")
    listed_secrets = cli_json("webhook-secrets", "list")["webhook_secrets"]
    assert [w["secret"] for w in listed_secrets if w["id"] == secret["id"]] == [secret["secret"]]
    assert cli_json("webhook-secrets", "delete", secret["id"]) == {"success": True}

    watch = Watch(platform.home, truss)  # the development deployment, live
    try:
        watch.wait_for("is ACTIVE")
        watch.process.send_signal(signal.SIGINT)
        assert watch.process.wait(timeout=30) == 0
        watch.wait_for("Stopped watching.", timeout=10)
    finally:
        if watch.process.poll() is None:
            watch.process.kill()
            watch.process.wait()
    platform.ran.add(("watch",))
    assert platform.cli_routed("predict", "surface-cli", "--development", "--data", "1") == {"echo": 1}

    listed = cli_json("models", "list")
    model = next(m for m in listed["models"] if m["name"] == "surface-cli")
    assert cli_json("models", "get", "surface-cli") == model and model["production_deployment_id"] == d1
    names = {d["name"] for d in cli_json("deployments", "list", "surface-cli")["deployments"]}
    assert names == {"deployment-1", "development"}
    assert cli_json("deployments", "get", "surface-cli", d1)["is_production"] is True
    assert "(instance type 1x2)" in cli("deployments", "get", "surface-cli", d1).stdout
    assert cli_json("instance-types")["instance_types"][0]["name"] == "1x2"
    shown = cli("instance-types").stdout.splitlines()
    assert shown[0].split() == ["NAME", "VCPUS", "GIB", "GPUS", "$/MIN"]
    assert any(line.split()[:4] == ["H100:2x52x468", "52", "468", "2×H100"] for line in shown)
    cli_json("autoscaling", "set", "surface-cli", "--deployment", d1, "--max-replica", "2")
    got = cli_json("autoscaling", "get", "surface-cli", "--deployment", d1)
    assert (got["deployment_id"], got["autoscaling_settings"]["max_replica"]) == (d1, 2)

    created = cli_json("environments", "create", "surface-cli", "staging", "--max-replica", "2")
    assert (created["name"], created["autoscaling_settings"]["max_replica"]) == ("staging", 2)
    assert {e["name"] for e in cli_json("environments", "list", "surface-cli")["environments"]} == {
        "production", "staging"}
    updated = cli_json("environments", "update", "surface-cli", "staging",
                       "--ramp-up-duration-seconds", "300")
    assert updated["promotion_settings"]["ramp_up_duration_seconds"] == 300
    # Development promotes as a new published deployment.
    staged = cli_json("environments", "promote", "surface-cli", "staging", "development",
                      "--canary-duration", "0")
    d2 = staged["deployment"]["id"]
    assert staged["deployment"]["name"] == "deployment-2" and d2 != d1
    assert cli_json("environments", "get", "surface-cli", "staging")["current_deployment"]["id"] == d2
    staging = platform.cli_routed("predict", "surface-cli", "--environment", "staging", "--data", "2")
    assert staging == {"echo": 2}
    cli_json("deployments", "promote", "surface-cli", d2, "--canary-duration", "600", "--no-wait")
    cancelled = cli_json("environments", "cancel-promotion", "surface-cli", "production")
    assert cancelled["traffic"] == {d1: 100} and cancelled["promoting_deployment_id"] == ""

    assert cli_json("deployments", "rename", "surface-cli", d2, "green")["name"] == "green"
    cli_json("deployments", "deactivate", "surface-cli", "green")
    assert cli_json("deployments", "get", "surface-cli", d2)["status"] == "INACTIVE"
    cli_json("deployments", "activate", "surface-cli", "green")
    cli_json("environments", "delete", "surface-cli", "staging")
    cli_json("deployments", "delete", "surface-cli", "green")
    gone = cli("deployments", "get", "surface-cli", d2, code=1)
    assert gone.stderr.startswith("error: ") and d2 in gone.stderr

    assert "build succeeded" in cli("logs", "surface-cli").stdout
    assert "build succeeded" in cli("logs", "surface-cli", "--since", "1d").stdout
    assert cli_json("logs", "surface-cli", "--since", "2999-01-01T00:00:00Z") == {"lines": []}
    assert len(cli_json("status")["nodes"]) == 1
    assert cli_json("nodes", "token", "--ttl", "60")["token"].startswith("kpjoin_")
    (local,) = cli_json("nodes", "list")["nodes"]
    assert cli_json("nodes", "get", "local")["id"] == local["id"] and local["state"] == "READY"
    assert cli_json("nodes", "drain", "local")["state"] == "DRAINING"
    assert cli_json("nodes", "drain", "local", "--undo")["state"] == "READY"
    live = cli("nodes", "remove", "local", code=1)
    assert live.stderr.startswith("error: node local is live")
    key = cli_json("keys", "create", "--name", "surface-cli", "--invoke-only", "--model", "echo")
    prefix = key["prefix"]
    assert (key["type"], len(key["model_ids"]), key["api_key"].startswith(prefix)) == ("WORKSPACE_INVOKE", 1, True)
    assert prefix in {k["prefix"] for k in cli_json("keys", "list")["keys"]}
    cli_json("keys", "revoke", prefix)
    assert prefix not in {k["prefix"] for k in cli_json("keys", "list")["keys"]}

    # Secrets: the value from stdin, never on the command line nor in any answer.
    set_secret = run_cli(platform.home, "secrets", "set", "cli_token", "--json", input="value-from-stdin\n")
    assert set_secret.returncode == 0, set_secret.stderr
    platform.ran.add(("secrets", "set"))
    assert json.loads(set_secret.stdout)["name"] == "cli_token" and "value-from-stdin" not in set_secret.stdout
    assert [s["name"] for s in cli_json("secrets", "list")["secrets"]] == ["cli_token"]
    assert cli_json("secrets", "delete", "cli_token") == {"name": "cli_token"}
    assert cli("secrets", "delete", "cli_token", code=1).stderr == "error: secret 'cli_token' not found\n"
    cli_json("models", "delete", "surface-cli")
    assert cli("models", "get", "surface-cli", code=1).stderr == "error: model 'surface-cli' not found\n"

    # `up` again on a running home is refused; the services are the commands `kingpost up` runs.
    ports = ("--port", str(free_port()), "--grpc-port", str(free_port()))
    again = cli("up", "--home", str(platform.home), *ports, code=1)
    assert f"another `kingpost up` is running with home {platform.home}" in again.stderr
    running = list(descendants(platform.up.process.pid).values())
    for service in SERVICES:
        config = platform.home / "run" / f"{service}.toml"
        assert any(f"kingpost.cli {service} --config {config}" in c for c in running), (service, running)
        platform.ran.add((service,))

    assert sorted(g["labels"]["service"] for g in cli_json("metrics", "targets")) == sorted([*SERVICES, "envoy"])
    (echo_traffic, *_) = cli_json("metrics", "echo", "--window", "3600")["deployments"]
    assert echo_traffic["requests"] >= 3 and echo_traffic["ready_replicas"] >= 1
    shown = cli("metrics", "echo", "--window", "3600").stdout.splitlines()
    assert shown[0].startswith("last 3600 s") and shown[1].split()[:2] == ["DEPLOYMENT", "REQ/S"]
    listed = cli("metrics", "targets").stdout.splitlines()
    assert listed[0].split() == ["SERVICE", "URL", "LABELS"] and len(listed) == len(SERVICES) + 2
    assert any(line.split()[:2] == ["envoy", line.split()[1]] and line.split()[1].endswith("/stats/prometheus")
               for line in listed)

    missing = sorted(set(cli_commands()) - platform.ran)
    assert not missing, "CLI commands this test does not run (add them here): " + ", ".join(
        " ".join(words) for words in missing)


# --- keys ---------------------------------------------------------------------------------------------


def test_a_revoked_key_is_refused_by_the_router(platform: Platform) -> None:
    created = platform.cli_json("keys", "create", "--name", "to-revoke")
    key, prefix = created["api_key"], created["prefix"]
    path = "/models/echo/development/predict"

    def answer() -> httpx.Response:
        return platform.http.post(path, json="k", headers={"Authorization": f"Api-Key {key}"})

    # A new key reaches the router with the next route table; a revoked one leaves it the same way.
    assert until(lambda: answer().status_code == 200 or None, "the new key to be accepted", timeout=30)
    platform.cli_json("keys", "revoke", prefix)
    refused = until(lambda: (r := answer()).status_code != 200 and r, "the revoked key to be refused",
                    timeout=30)
    assert (refused.status_code, refused.json()) == (401, {"error": "invalid API key"})
    assert platform.http.post(path, json="admin").status_code == 200  # the admin key still works


def test_an_invoke_only_key_predicts_its_model_and_is_refused_the_rest(platform: Platform) -> None:
    created = platform.rest("POST", "/v1/api_keys", json={"name": "app", "type": "WORKSPACE_INVOKE",
                                                          "model_ids": ["echo"]})
    echo_id = platform.rest("GET", "/v1/models/echo")["id"]
    assert created["model_ids"] == [echo_id]  # named by name, kept by id
    auth = {"Authorization": f"Bearer {created['api_key']}"}
    predict = "/models/echo/development/predict"
    assert until(lambda: platform.http.post(predict, json="app", headers=auth).status_code == 200 or None,
                 "the invoke-only key to be accepted", timeout=30)
    assert platform.http.post(predict, json="app", headers=auth).json()["echo"] == "app"
    refused = platform.http.get("/v1/models", headers=auth)
    assert (refused.status_code, refused.json()) == (403, {"error": (
        f"this API key may only invoke models (WORKSPACE_INVOKE for model {echo_id}); ListModels needs a "
        "WORKSPACE_MANAGE_ALL key")})
    platform.rest("DELETE", f"/v1/api_keys/{created['prefix']}")


# --- metrics ------------------------------------------------------------------------------------------


def scrape(platform: Platform, service: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """A service's /metrics, at the port `kingpost up` gave it: sample name → labels → value."""
    port = tomllib.loads((platform.home / "run" / f"{service}.toml").read_text())["metrics_port"]
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def test_each_service_serves_the_metrics_a_dashboard_reads(platform: Platform) -> None:
    model = platform.rest("GET", "/v1/models/echo")
    dev = model["development_deployment_id"]
    echo = (("deployment", dev), ("environment", "development"), ("model", model["id"]), ("model_name", "echo"))
    ok = tuple(sorted((*echo, ("code", "OK"))))
    before = scrape(platform, "router")
    counted_before = before.get("kingpost_router_requests_total", {}).get(ok, 0)

    def histogram(samples: dict[str, Any], name: str, le: str | None = None) -> float:
        labels = echo if le is None else tuple(sorted((*echo, ("le", le))))
        return samples.get(name, {}).get(labels, 0)

    seen = []  # what the client measured, request in to response out
    for i in range(5):
        sent = time.perf_counter()
        assert platform.http.post("/models/echo/development/predict", json=i).status_code == 200
        seen.append(time.perf_counter() - sent)

    def counted() -> dict[str, Any] | None:
        samples = scrape(platform, "router")
        return samples if samples["kingpost_router_requests_total"].get(ok) == counted_before + 5 else None

    router = until(counted, "the router to count the 5 requests")
    # Exactly the 5, labelled by model, deployment and environment; each latency within what the client
    # saw: every bucket at or above the slowest request the client saw holds all 5 more.
    for name in ("kingpost_router_request_seconds", "kingpost_router_model_seconds",
                 "kingpost_router_queue_wait_seconds"):
        assert histogram(router, f"{name}_count") - histogram(before, f"{name}_count") == 5, name
    bounds = sorted({float(dict(k)["le"]) for k in router["kingpost_router_request_seconds_bucket"]})
    for bound in (b for b in bounds if b >= max(seen)):
        le = "+Inf" if bound == float("inf") else repr(bound)
        assert (histogram(router, "kingpost_router_request_seconds_bucket", le)
                - histogram(before, "kingpost_router_request_seconds_bucket", le)) == 5, le
    router_seconds = (histogram(router, "kingpost_router_request_seconds_sum")
                      - histogram(before, "kingpost_router_request_seconds_sum"))
    assert 0 < router_seconds <= sum(seen)
    # (kingpost_router_in_flight has a sample per deployment with requests in a runner call now: none here.)
    assert {"kingpost_router_queued", "kingpost_router_retries_total"} <= set(router)

    # The scheduler's desired and ready replicas of the example, and the agent's view of its runner.
    replicas = (("deployment", dev), ("environment", ""), ("model", model["id"]))
    scheduler = until(lambda: (s := scrape(platform, "scheduler"))["kingpost_scheduler_ready_replicas"].get(
        replicas) and s, "the scheduler to count the example's ready replica", timeout=30)
    assert scheduler["kingpost_scheduler_desired_replicas"][replicas] >= 1
    agent = scrape(platform, "agent")
    (node,) = {dict(k)["node"] for k in agent["kingpost_worker_agent_node_memory_bytes"]}
    assert agent["kingpost_worker_agent_node_memory_bytes"][(("kind", "total"), ("node", node))] > 0
    runner = {dict(k)["replica"]: v for k, v in agent["kingpost_worker_agent_replica_memory_bytes"].items()
              if dict(k)["deployment"] == dev}
    assert runner and all(v > 1 << 20 for v in runner.values()), runner

    builder = scrape(platform, "builder")
    succeeded = builder["kingpost_builder_builds_total"][(("state", "succeeded"),)]
    assert succeeded >= 1 and builder["kingpost_builder_build_seconds_count"][()] >= succeeded
    assert builder["kingpost_builder_upload_bytes_count"][()] >= succeeded

    # Scheduler and agent agree on the ready replicas, and the status API says the same.
    def ready_counts() -> tuple[float, float, int] | None:
        scheduler = scrape(platform, "scheduler")["kingpost_scheduler_replicas"][(("state", "READY"),)]
        agent = scrape(platform, "agent")["kingpost_worker_agent_replicas"][(("state", "ready"),)]
        (node,) = platform.rest("GET", "/v1/status")["nodes"]
        counts = (scheduler, agent, len(node["replica_ids"]))
        return counts if counts[0] == counts[1] == counts[2] else None

    assert until(ready_counts, "scheduler, agent and status to agree on ready replicas", timeout=30)[0] >= 1
    scheduler = scrape(platform, "scheduler")
    assert scheduler["kingpost_scheduler_deployments"][(("status", "ACTIVE"),)] >= 1
    assert scheduler["kingpost_scheduler_route_watchers"][()] >= 2  # the router and the autoscaler at least
    assert scheduler["kingpost_scheduler_route_table_version"][()] > 0
    assert scheduler["kingpost_scheduler_cold_start_seconds_count"][(("phase", "total"),)] >= 1
    assert scheduler["kingpost_scheduler_events_total"][(("kind", "heartbeat"), ("outcome", "ok"))] >= 1
    agent = scrape(platform, "agent")
    assert agent["kingpost_worker_agent_cold_start_seconds_count"][(("phase", "load"),)] >= 1

    # The autoscaler's view of the example: the concurrency it saw and the count it decided.
    echo = platform.rest("GET", "/v1/models/echo")["development_deployment_id"]
    labels = (("deployment_id", echo),)
    def decided() -> dict[str, Any] | None:
        samples = scrape(platform, "autoscaler")
        return samples if labels in samples.get("kingpost_autoscaler_desired_replicas", {}) else None

    autoscaler = until(decided, "the autoscaler to decide for the example", timeout=60)
    assert autoscaler["kingpost_autoscaler_desired_replicas"][labels] == 1
    assert labels in autoscaler["kingpost_autoscaler_concurrency"]
    assert "kingpost_autoscaler_poke_to_scale_seconds_count" in autoscaler


# --- Baseten's own SDK ----------------------------------------------------------------------------------


BASETEN_SDK = Path(__file__).parents[2] / ".tools" / "baseten-sdk" / "bin" / "python"
SDK_WALK = Path(__file__).parent / "baseten_sdk" / "walk.py"


def test_the_vendored_schema_is_the_pinned_sdks() -> None:
    """tests/e2e/baseten_sdk/management-schema.json is what schema.py writes from the pinned SDK: a
    new pin without a rerun (or a hand edit of the file) fails here."""
    assert BASETEN_SDK.is_file(), f"Baseten's SDK is not installed at {BASETEN_SDK}: run `make baseten-sdk`"
    written = subprocess.run([str(BASETEN_SDK), str(SDK_WALK.with_name("schema.py"))], capture_output=True,
                             text=True, check=True).stdout
    assert json.loads(written) == json.loads(baseten_schema.SCHEMA.read_text()), \
        "rerun tests/e2e/baseten_sdk/schema.py (see its docstring) and commit the schema"


def test_basetens_own_sdk_manages_and_calls_models_on_kingpost(platform: Platform) -> None:
    """The `baseten` package from PyPI, unmodified, in its own virtual environment (its pins are not
    ours), pointed at kingpost with `base_url_override`: each step of tests/e2e/baseten_sdk/walk.py
    succeeds and each answer parses as its own response model (pydantic, Baseten's published schema)."""
    assert BASETEN_SDK.is_file(), f"Baseten's SDK is not installed at {BASETEN_SDK}: run `make baseten-sdk`"
    assert subprocess.run([str(BASETEN_SDK), "-c", "import kingpost"], capture_output=True).returncode != 0, \
        "the SDK's environment must not see kingpost's packages"
    echo = platform.rest("GET", "/v1/models/echo")
    build_id = platform.rest("GET", f"/v1/models/{echo['id']}/deployments/{echo['development_deployment_id']}"
                             )["build_id"]  # a kingpost extra
    # A published deployment of the example's build, through kingpost's own push route.
    made = platform.rest("POST", "/v1/models", json={"model_name": "sdk", "build_id": build_id, "publish": True})
    args = {"base": str(platform.http.base_url).rstrip("/"), "key": platform.key,
            "model_id": made["model"]["id"], "deployment_id": made["deployment"]["id"]}
    walked = subprocess.run([str(BASETEN_SDK), str(SDK_WALK), json.dumps(args)], capture_output=True,
                            text=True, timeout=540)
    assert walked.returncode == 0, f"Baseten's SDK failed a step:\n{walked.stdout}{walked.stderr}"
    assert json.loads(walked.stdout.splitlines()[-1])["ok"] is True
    assert "sdk" not in {x["name"] for x in platform.rest("GET", "/v1/models")["models"]}  # the SDK deleted it


# --- secrets ----------------------------------------------------------------------------------------

SECRET_MODEL = '''
import hashlib


class Model:
    def __init__(self, secrets, **kwargs):
        self._secrets = secrets

    def predict(self, model_input):
        token = self._secrets["api_token"]
        return {"sha256": hashlib.sha256(token.encode()).hexdigest(), "greeting": self._secrets["greeting"]}
'''


def test_a_secret_reaches_the_model_and_no_answer_log_or_column(platform: Platform, tmp_path: Path) -> None:
    value = "tok-" + "7f3a9c" * 4
    truss = tmp_path / "secretive"
    (truss / "model").mkdir(parents=True)
    (truss / "config.yaml").write_text("model_name: secretive\nsecrets:\n  api_token: null\n"
                                       "  greeting: hello-default\n")
    (truss / "model" / "model.py").write_text(SECRET_MODEL)

    # Declared without a default and not set: the push fails naming it, and makes nothing.
    refused = platform.cli("push", str(truss), "--publish", code=1)
    assert "declares secret 'api_token' without a default, and it is not set: `kingpost secrets set api_token`" \
        in refused.stderr
    assert "secretive" not in {m["name"] for m in platform.rest("GET", "/v1/models")["models"]}

    setting = run_cli(platform.home, "secrets", "set", "api_token", input=value)
    assert setting.returncode == 0 and value not in setting.stdout + setting.stderr
    pushed = platform.cli_json("push", str(truss), "--publish")
    answer = platform.cli_routed("predict", "secretive", "--deployment", pushed["deployment"]["id"], "--data", "{}")
    assert answer == {"sha256": hashlib.sha256(value.encode()).hexdigest(),
                      "greeting": "hello-default"}  # a declared default, where no secret is set

    # Nowhere in clear: the API's answers, the logs, the database.
    for path in ("/v1/secrets", "/v1/models", f"/v1/models/{pushed['model']['id']}/logs"):
        assert value not in platform.send("GET", path).text
    assert value not in platform.cli("logs", "secretive").stdout
    for log in (platform.home / "logs").rglob("*"):
        if log.is_file():
            assert value.encode() not in log.read_bytes(), log
    assert (platform.home / "state" / "kingpost.db").is_file()
    for stored in (platform.home / "state").rglob("*"):  # the database (and its journal), sealed
        if stored.is_file():
            assert value.encode() not in stored.read_bytes(), stored
    platform.rest("DELETE", f"/v1/models/{pushed['model']['id']}")
    platform.rest("DELETE", "/v1/secrets/api_token")

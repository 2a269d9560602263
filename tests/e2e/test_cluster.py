"""Many machines, tried as a new user would, on one machine: `kingpost up`, then agents that join it
as separate processes with homes and declared GPU inventories of their own.

1. `kingpost nodes token`, then `kingpost agent --join` with `--gpus H100:2`: three nodes... an
   `H100:2` Truss lands on the 2-GPU node and sees two GPUs in CUDA_VISIBLE_DEVICES.
2. An `H100:4` Truss waits, with the reason in its status, and becomes ACTIVE once a node with
   four H100s joins.
3. A deployment of three replicas spreads over the three nodes. Draining `local` under load moves
   its replicas without a failed request. `kill -9` one agent and its runners: after the node
   timeout its replica runs elsewhere, and the node shows LOST.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_surface import until
from tests.e2e.test_up import Up, client_env, descendants, free_port, proc_stat, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

NODE_TIMEOUT = 6  # seconds without a heartbeat before a node is LOST

MODEL = """
import os


class Model:
    def predict(self, model_input):
        return {"cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "cwd": os.getcwd()}
"""


def truss(root: Path, name: str, accelerator: str = "") -> Path:
    directory = root / name
    (directory / "model").mkdir(parents=True)
    resources = f"  accelerator: {accelerator}\n" if accelerator else ""
    (directory / "config.yaml").write_text(
        f"model_name: {name}\nresources:\n  cpu: 500m\n  memory: 512Mi\n{resources}")
    (directory / "model" / "model.py").write_text(MODEL)
    return directory


class Agent:
    """`kingpost agent --join` in a process group of its own, its output in `<home>/agent.out`."""

    def __init__(self, home: Path, grpc: int, token: str, name: str, gpus: str) -> None:
        self.home, self.name = home, name
        home.mkdir(parents=True, exist_ok=True)
        self.out = home / "agent.out"
        with open(self.out, "w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kingpost.cli", "agent", "--join", f"127.0.0.1:{grpc}", "--token", token,
                 "--name", name, "--home", str(home), "--gpus", gpus],
                stdout=out, stderr=subprocess.STDOUT, env=client_env(home), process_group=0)

    def kill_with_runners(self) -> None:
        """kill -9 the agent's process group and every runner it started (they have sessions of
        their own): the machine is gone."""
        pids = set(descendants(self.process.pid)) | {self.process.pid}
        os.killpg(self.process.pid, signal.SIGKILL)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            pids = set(descendants(self.process.pid))
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill_with_runners()
            for pid in pids:
                if proc_stat(pid):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Up, int, list[Agent]]]:
    root = tmp_path_factory.mktemp("cluster")
    home = root / "home"
    rest, grpc = free_port(), free_port()
    up = Up(home, rest, grpc, env={"KINGPOST_NODE_TIMEOUT_SECONDS": str(NODE_TIMEOUT)})
    agents: list[Agent] = []
    seen: dict[int, str] = {}
    try:
        up.wait_for_curl()
        yield home, up, grpc, agents
        for agent in agents:
            agent.stop()
        seen = descendants(up.process.pid)
        assert up.stop() == 0
    finally:
        for agent in agents:
            agent.stop()
        if up.process.poll() is None or any(proc_stat(p) for p in seen):
            up.kill_everything(set(seen) | set(descendants(up.process.pid)))


def cli_json(home: Path, *args: str) -> Any:
    done = run_cli(home, *args, "--json")
    assert done.returncode == 0, f"kingpost {' '.join(args)}: {done.stdout}{done.stderr}"
    return json.loads(done.stdout)


def nodes(home: Path) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in cli_json(home, "nodes", "list")["nodes"]}


def predict(home: Path, model: str, deployment: str) -> dict[str, Any]:
    done = until(lambda: (d := run_cli(home, "predict", model, "--deployment", deployment, "--data", "1"))
                 .returncode == 0 and d or None, f"a prediction of {model}", timeout=60)
    return json.loads(done.stdout)


def test_agents_join_gpu_replicas_land_where_they_fit_and_a_lost_node_is_replaced(
        cluster: tuple[Path, Up, int, list[Agent]], tmp_path: Path) -> None:
    home, up, grpc, agents = cluster
    token = cli_json(home, "nodes", "token")["token"]
    assert token.startswith("kpjoin_")

    # The token joins nodes and does nothing else: the management API refuses it.
    refused = httpx.get(f"http://127.0.0.1:{up_rest(up)}/v1/models", headers={"Authorization": f"Api-Key {token}"})
    assert refused.status_code == 401

    # A wrong token: the agent exits, naming the token as the cause.
    bad = subprocess.run([sys.executable, "-m", "kingpost.cli", "agent", "--join", f"127.0.0.1:{grpc}",
                          "--token", "kpjoin_00000000_nope", "--name", "bad", "--home", str(tmp_path / "bad"),
                          "--gpus", "T4"], capture_output=True, text=True, env=client_env(tmp_path / "bad"),
                         timeout=120)
    assert bad.returncode != 0 and "join token kpjoin_00000000... is not valid" in bad.stdout + bad.stderr

    agents.append(Agent(tmp_path / "gpu-b", grpc, token, "gpu-b", "H100:2"))
    until(lambda: nodes(home).get("gpu-b", {}).get("state") == "READY" or None, "gpu-b to join", timeout=120)

    # A second agent with a live node's name is refused, not merged.
    twin = subprocess.run([sys.executable, "-m", "kingpost.cli", "agent", "--join", f"127.0.0.1:{grpc}",
                           "--token", token, "--name", "gpu-b", "--home", str(tmp_path / "twin"), "--gpus", "T4"],
                          capture_output=True, text=True, env=client_env(tmp_path / "twin"), timeout=120)
    assert twin.returncode != 0 and "a live node is already named 'gpu-b'" in twin.stdout + twin.stderr

    # 1. An H100:2 Truss lands on the 2-GPU node and sees its two GPUs.
    two = cli_json(home, "push", str(truss(tmp_path, "two-gpus", "H100:2")), "--publish")
    assert two["deployment"]["status"] == "ACTIVE"
    assert two["deployment"]["resources"] == {"cpu": 0.5, "memory_bytes": str(512 * 2**20), "accelerator": "H100:2",
                                              "instance_type": "H100:2x52x468"}
    answer = predict(home, "two-gpus", two["deployment"]["id"])
    assert answer["cuda"] == "0,1" and answer["cwd"].startswith(str(tmp_path / "gpu-b"))
    assert nodes(home)["gpu-b"]["free_gpu_indices"] == []

    # 2. An H100:4 Truss waits with the reason, and is placed as soon as a node with room joins.
    four = cli_json(home, "push", str(truss(tmp_path, "four-gpus", "H100:4")), "--publish", "--no-wait")
    model4, d4 = four["model"]["id"], four["deployment"]["id"]

    def reason() -> str | None:
        got = cli_json(home, "deployments", "get", model4, d4)
        return got["status_reason"] if "needs 4×H100" in got["status_reason"] else None

    assert until(reason, "the H100:4 deployment to say why it waits", timeout=180) == \
        "waiting for a node: needs 4×H100; no node has a free H100"
    agents.append(Agent(tmp_path / "gpu-a", grpc, token, "gpu-a", "H100:4"))
    until(lambda: cli_json(home, "deployments", "get", model4, d4)["status"] == "ACTIVE" or None,
          "the H100:4 deployment to become ACTIVE on gpu-a", timeout=180)
    answer = predict(home, "four-gpus", d4)
    assert answer["cuda"] == "0,1,2,3" and answer["cwd"].startswith(str(tmp_path / "gpu-a"))
    listed = nodes(home)
    assert set(listed) == {"local", "gpu-a", "gpu-b"} and {n["state"] for n in listed.values()} == {"READY"}

    # 3. Three replicas spread over the three nodes; gpu-a is lost; its replica comes back elsewhere.
    spread = cli_json(home, "push", str(truss(tmp_path, "spread")), "--publish")
    d3 = spread["deployment"]["id"]
    cli_json(home, "autoscaling", "set", "spread", "--deployment", d3, "--min-replica", "3", "--max-replica", "3")

    def on_each_node() -> dict[str, Any] | None:
        listed = nodes(home)
        return listed if all(n["replica_ids"] for n in listed.values()) and \
            cli_json(home, "deployments", "get", "spread", d3)["active_replica_count"] == 3 else None

    until(on_each_node, "three replicas of spread, one on each node", timeout=240)

    # Draining `local` under load: its replicas move to the GPU nodes, and no request fails.
    with Load(home, up_rest(up), f"/models/{spread['model']['id']}/deployment/{d3}/predict") as load:
        until(lambda: load.answered >= 20 or None, "load on spread", timeout=60)
        assert cli_json(home, "nodes", "drain", "local")["state"] == "DRAINING"
        until(lambda: not nodes(home)["local"]["replica_ids"] and
              cli_json(home, "deployments", "get", "spread", d3)["active_replica_count"] == 3 or None,
              "local drained, spread at three ready replicas elsewhere", timeout=240)
        answered = load.answered
        until(lambda: load.answered >= answered + 20 or None, "load after the drain", timeout=60)
    assert load.failures == [], load.failures[:5]
    cli_json(home, "nodes", "drain", "local", "--undo")
    lost = agents[1]
    # Under load: only a request in flight on the node when it dies may fail (one at a time here);
    # until it is counted lost, the router tries another replica when its runner does not answer.
    with Load(home, up_rest(up), f"/models/{spread['model']['id']}/deployment/{d3}/predict") as load:
        until(lambda: load.answered >= 10 or None, "load on spread", timeout=60)
        lost.kill_with_runners()
        until(lambda: nodes(home)["gpu-a"]["state"] == "LOST" or None, "gpu-a to be LOST", timeout=60)
        until(lambda: cli_json(home, "deployments", "get", "spread", d3)["active_replica_count"] == 3 or None,
              "spread back at three ready replicas", timeout=180)
        answered = load.answered
        until(lambda: load.answered >= answered + 10 or None, "load after the recovery", timeout=60)
    assert len(load.failures) <= 1, load.failures
    after = nodes(home)
    assert after["gpu-a"]["replica_ids"] == []
    assert len(after["local"]["replica_ids"]) + len(after["gpu-b"]["replica_ids"]) >= 4  # spread's 3 + two-gpus
    # The H100:4 deployment has nowhere to go now: it waits again, and says why.
    until(lambda: "needs 4×H100" in cli_json(home, "deployments", "get", model4, d4)["status_reason"] or None,
          "the H100:4 deployment to wait again", timeout=60)
    for _ in range(5):
        assert "cwd" in predict(home, "spread", d3)

    # A lost node is removed; a live one is refused.
    assert run_cli(home, "nodes", "remove", "gpu-b").returncode == 1
    cli_json(home, "nodes", "remove", "gpu-a")
    assert "gpu-a" not in nodes(home)


class Load:
    """A thread that sends predicts one after another, counting answers and keeping failures."""

    def __init__(self, home: Path, port: int, path: str) -> None:
        config = (home / "config.toml").read_text()
        key = next(line.split('"')[1] for line in config.splitlines() if line.startswith("api_key"))
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Api-Key {key}"},
                                   timeout=60)
        self.path, self.answered, self.failures = path, 0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                r = self.client.post(self.path, json=1)
                if r.status_code == 200:
                    self.answered += 1
                else:
                    self.failures.append(f"{r.status_code} {r.text}")
            except httpx.HTTPError as e:
                self.failures.append(repr(e))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        self.client.close()


def up_rest(up: Up) -> int:
    argv = up.process.args
    assert isinstance(argv, list)
    return int(argv[argv.index("--port") + 1])

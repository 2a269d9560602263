"""`kingpost up` as a user runs it: start, curl the example, push and predict with the CLI, Ctrl-C.

Runs the real processes (nats-server, Envoy, the five services, a runner); nothing may outlive
the test, which it checks by the pids and process groups it saw.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

from grpc import insecure_channel
import httpx
import nats
import pytest
from nats.errors import Error as NatsError

from kingpost.v1 import scheduler_pb2, scheduler_pb2_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "echo"
SERVICES = ("scheduler", "builder", "router", "autoscaler", "agent")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client_env(home: Path) -> dict[str, str]:
    # KINGPOST_DATA_PATH chooses the platform under test (e.g. "envoy": the direct data path).
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINGPOST_") or k == "KINGPOST_DATA_PATH"}
    env["KINGPOST_HOME"] = str(home)
    return env


def proc_stat(pid: int) -> tuple[int, int] | None:
    """(ppid, pgid) of a live, non-zombie process; None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[2])


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(root: int) -> dict[int, str]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = proc_stat(int(entry.name))
            if stat:
                parents[int(entry.name)] = stat[0]
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = cmdline(pid)
                frontier.append(pid)
    return found


def alive_in_groups(pgids: set[int]) -> list[int]:
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = proc_stat(int(entry.name))
            if stat and stat[1] in pgids:
                alive.append(int(entry.name))
    return alive


class Up:
    """A `kingpost up` subprocess whose output is read line by line in the background."""

    def __init__(self, home: Path, rest: int, grpc: int, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kingpost.cli", "up", "--home", str(home), "--port", str(rest),
             "--grpc-port", str(grpc)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**client_env(home), **(env or {})},
            process_group=0,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for_curl(self, timeout: float = 300.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1.0)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail("kingpost up exited before it was ready:\n" + "\n".join(self.output))
            self.output.append(line)
            if line.strip().startswith("curl "):
                return line.strip()
        pytest.fail("no curl line from kingpost up in time:\n" + "\n".join(self.output))

    def stop(self, timeout: float = 90.0) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=timeout)

    def kill_everything(self, pids: set[int]) -> None:
        """Last resort for a failed test: no process of this run may remain."""
        for pid in pids | {self.process.pid}:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=30)


def curl_with_httpx(curl: str) -> httpx.Response:
    argv = shlex.split(curl)
    header = argv[argv.index("-H") + 1]
    name, _, value = header.partition(": ")
    data = argv[argv.index("-d") + 1]
    return httpx.post(argv[-1], headers={name: value, "Content-Type": "application/json"}, content=data,
                      timeout=60.0)


def tracebacks(home: Path) -> dict[str, int]:
    """Tracebacks per log file: the services' logs and the replicas' (runner output)."""
    logs = [*(home / "logs").glob("*.log"), *(home / "agent" / "logs").glob("*.log")]
    assert logs, f"no logs under {home}"
    return {str(p): p.read_text(errors="replace").count("Traceback") for p in logs
            if "Traceback" in p.read_text(errors="replace")}


def nats_connects(url: str) -> str:
    """'connected', or why NATS refused the connection."""
    async def quiet(error: Exception) -> None:  # the refusal is the answer, not a log line
        pass

    async def attempt() -> str:
        try:
            nc = await asyncio.wait_for(nats.connect(url, connect_timeout=5, allow_reconnect=False,
                                                     max_reconnect_attempts=0, error_cb=quiet), 20)
        except NatsError as e:
            return str(e)
        await nc.close()
        return "connected"

    return asyncio.run(attempt())


def run_cli(home: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kingpost.cli", *args], env=client_env(home), input=input,
                          check=False, capture_output=True, text=True, timeout=300)


def test_up_serves_the_example_pushes_predicts_and_stops_cleanly(tmp_path: Path):
    home = tmp_path / "home"
    rest, grpc = free_port(), free_port()
    up = Up(home, rest, grpc)
    seen: dict[int, str] = {}
    try:
        curl = up.wait_for_curl()
        assert f"http://127.0.0.1:{rest}/models/" in curl and "/development/predict" in curl
        # The admin key was written for clients, readable by its owner only.
        config = (home / "config.toml").read_text()
        assert shlex.split(curl)[2].removeprefix("Authorization: Api-Key ") in config
        assert (home / "config.toml").stat().st_mode & 0o077 == 0

        # The printed curl works as printed: the example answers {"echo": <input>}.
        response = curl_with_httpx(curl)
        assert response.status_code == 200, response.text
        sent = json.loads(shlex.split(curl)[shlex.split(curl).index("-d") + 1])
        assert response.json() == {"echo": sent}

        # The CLI, configured only by KINGPOST_HOME, pushes a second model and calls it.
        pushed = run_cli(home, "push", str(EXAMPLE), "--model-name", "echo-again", "--json")
        assert pushed.returncode == 0, pushed.stderr
        result = json.loads(pushed.stdout)
        assert result["deployment"]["status"] == "ACTIVE"
        # A plain push publishes; a model's first published deployment serves production.
        assert result["predict_url"].endswith("/production/predict")
        predicted = run_cli(home, "predict", "echo-again", "--data", '{"text": "again"}')
        assert predicted.returncode == 0, predicted.stderr
        assert json.loads(predicted.stdout) == {"echo": {"text": "again"}}
        listed = run_cli(home, "models", "list", "--json")
        assert {m["name"] for m in json.loads(listed.stdout)["models"]} >= {"echo", "echo-again"}

        # The scheduler's route table names the replica's HTTP data plane (the agent's READY carried
        # it), which answers as the model does: where Envoy will send predicts straight.
        scheduler = tomllib.loads((home / "run" / "scheduler.toml").read_text())["grpc_port"]
        with insecure_channel(f"127.0.0.1:{scheduler}") as channel:
            watch = scheduler_pb2_grpc.SchedulerServiceStub(channel).WatchRoutes(
                scheduler_pb2.WatchRoutesRequest(watcher="test_up"), timeout=10)
            table = next(iter(watch)).table
            watch.cancel()
        (again,) = [r for m in table.models if m.name == "echo-again" for d in m.deployments for r in d.replicas]
        assert again.http_address and again.http_address != again.address
        direct = httpx.post(f"http://{again.http_address}/predict", json={"text": "direct"}, timeout=10)
        assert direct.json() == {"echo": {"text": "direct"}}
        missing = run_cli(home, "predict", "no-such-model", "--data", "{}")
        assert missing.returncode == 1
        assert missing.stderr.startswith("error: ") and "Traceback" not in missing.stderr

        # Separate processes: NATS, Envoy, the five services and at least one runner.
        seen = descendants(up.process.pid)
        commands = list(seen.values())
        assert any("nats-server" in c for c in commands), commands
        assert any("envoy" in c.split(" ")[0] for c in commands), commands
        for service in SERVICES:
            assert any(f"kingpost.cli {service} " in c for c in commands), (service, commands)
        assert any("kingpost_runner" in c for c in commands), commands
        groups = {stat[1] for pid in seen if (stat := proc_stat(pid))}

        # NATS refuses a client without the credentials that `up` made (kept for its owner only),
        # which the services have in their configs and the runners do not have.
        assert (home / "nats-credentials.toml").stat().st_mode & 0o077 == 0
        password = tomllib.loads((home / "nats-credentials.toml").read_text())["password"]
        with_credentials = tomllib.loads((home / "run" / "router.toml").read_text())["nats_url"]
        assert f":{password}@" in with_credentials
        anonymous = "nats://" + with_credentials.rpartition("@")[2]
        assert "Authorization Violation" in nats_connects(anonymous)
        assert nats_connects(with_credentials) == "connected"
        for pid, command in seen.items():
            if "kingpost_runner" in command:
                environment = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
                assert password not in environment and "nats://" not in environment

        # Ctrl-C: exit 0, and nothing of this run remains.
        assert up.stop() == 0, "\n".join(up.output)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (alive_in_groups(groups) or any(proc_stat(p) for p in seen)):
            time.sleep(0.2)
        assert alive_in_groups(groups) == []
        assert [p for p in seen if proc_stat(p)] == []
        # A clean stop, with a deployed model, writes no traceback anywhere.
        assert tracebacks(home) == {}
    finally:
        if up.process.poll() is None or any(proc_stat(p) for p in seen):
            up.kill_everything(set(seen) | set(descendants(up.process.pid)))

    # A second start on the same home brings the models back and does not push the example again.
    again = Up(home, rest, grpc)
    seen = {}
    try:
        curl = again.wait_for_curl()
        assert not any("Deploying the example" in line for line in again.output), again.output
        seen = descendants(again.process.pid)
        deadline = time.monotonic() + 120
        response = curl_with_httpx(curl)
        while response.status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
            response = curl_with_httpx(curl)
        assert response.status_code == 200, response.text
        seen |= descendants(again.process.pid)
        assert again.stop() == 0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(proc_stat(p) for p in seen):
            time.sleep(0.2)
        assert [p for p in seen if proc_stat(p)] == []
        assert tracebacks(home) == {}
    finally:
        if again.process.poll() is None or any(proc_stat(p) for p in seen):
            again.kill_everything(set(seen) | set(descendants(again.process.pid)))

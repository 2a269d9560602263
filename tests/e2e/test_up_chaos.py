"""Chaos under `kingpost up`: `kill -9` each service in turn while a few clients keep calling the
example model over REST. Predictions keep succeeding (the router and Envoy, which carry them, must
answer again within 5 s), each service is back under a new pid without restarting `up`, and the
platform still works end to end afterwards (a push builds, deploys and answers; the build logs kept
in JetStream survived NATS's death).
"""

from __future__ import annotations

import os
import queue
import shlex
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_up import EXAMPLE, Up, descendants, free_port, proc_stat, run_cli, tracebacks

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

# The worker agent too: its runners outlive it and the restarted agent adopts them, so the model
# keeps answering while the agent is away.
KILLED_IN_TURN = ("scheduler", "builder", "autoscaler", "agent", "router", "envoy", "nats")
# They carry the requests: while they are down, requests may fail, and must succeed again within this.
DATA_PATH = {"router": 5.0, "envoy": 5.0}
CLIENTS = 3


@dataclass(frozen=True)
class Call:
    started: float
    ended: float
    ok: bool
    what: str


class Load:
    """A few clients calling the model over REST, one request after another, recording every call."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.calls: list[Call] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(url, headers), daemon=True)
                         for _ in range(CLIENTS)]
        for thread in self._threads:
            thread.start()

    def _client(self, url: str, headers: dict[str, str]) -> None:
        with httpx.Client(headers=headers, timeout=10.0) as http:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    response = http.post(url, json={"text": "chaos"})
                    ok, what = response.status_code == 200, f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as e:
                    ok, what = False, repr(e)
                self.calls.append(Call(started, time.monotonic(), ok, what))
                time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)


def service_pid(up: Up, service: str) -> int:
    """The pid of one of `up`'s processes, by its command line."""
    for pid, command in descendants(up.process.pid).items():
        program = command.split(" ")[0]
        if service in ("nats", "envoy"):
            if program.endswith("nats-server" if service == "nats" else "envoy"):
                return pid
        elif f"kingpost.cli {service} " in command:
            return pid
    raise AssertionError(f"no {service} process under kingpost up")


def first_success_after(load: Load, moment: float, timeout: float = 60.0) -> float:
    """When the first call started after `moment` succeeded."""
    deadline = time.monotonic() + timeout
    while True:
        ended = [c.ended for c in list(load.calls) if c.ok and c.started >= moment]
        if ended:
            return min(ended)
        assert time.monotonic() < deadline, "no prediction succeeded again"
        time.sleep(0.05)


def next_line(up: Up, startswith: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = up.lines.get(timeout=1.0)
        except queue.Empty:
            continue
        if line is None:
            pytest.fail("kingpost up exited:\n" + "\n".join(up.output))
        up.output.append(line)
        if line.startswith(startswith):
            return line
    pytest.fail(f"no line starting {startswith!r} in time:\n" + "\n".join(up.output))


def test_each_service_killed_under_load_is_back_and_predictions_keep_succeeding(tmp_path: Path) -> None:
    home = tmp_path / "home"
    up = Up(home, free_port(), free_port())
    seen: dict[int, str] = {}
    load = None
    try:
        curl = shlex.split(up.wait_for_curl())
        headers = dict([curl[curl.index("-H") + 1].split(": ", 1)])
        build_log_before = run_cli(home, "logs", "echo").stdout
        assert "build succeeded" in build_log_before, build_log_before

        load = Load(curl[-1], headers)
        kills: dict[str, float] = {}
        for service in KILLED_IN_TURN:
            time.sleep(1.0)  # steady load before each kill
            old = service_pid(up, service)
            kills[service] = time.monotonic()
            os.kill(old, signal.SIGKILL)
            next_line(up, f"{service} exited (signal 9, SIGKILL); starting it again")
            back = next_line(up, f"{service} is back (pid ")
            new = int(back.split("(pid ")[1].split(")")[0])
            assert new != old and service_pid(up, service) == new, (service, old, new)
            if service in DATA_PATH:  # answering again within its bound of the kill
                again = first_success_after(load, kills[service])
                assert again - kills[service] <= DATA_PATH[service], (service, again - kills[service])
        time.sleep(1.0)
        load.stop()

        def excused(call: Call) -> bool:
            return any(kills[s] <= call.ended <= kills[s] + bound for s, bound in DATA_PATH.items())

        failed = [c for c in load.calls if not c.ok and not excused(c)]
        assert failed == [], [(round(c.started - kills["scheduler"], 2), c.what) for c in failed]
        first_kill = kills[KILLED_IN_TURN[0]]
        assert sum(c.ok for c in load.calls if c.started >= first_kill) > 10 * CLIENTS

        # Everything healed: the build logs NATS kept on disk are still there, and a push goes
        # through the builder, the scheduler (its route watchers watching again), NATS and the router.
        assert "build succeeded" in run_cli(home, "logs", "echo").stdout
        pushed = run_cli(home, "push", str(EXAMPLE), "--model-name", "after-chaos", "--json")
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        predicted = run_cli(home, "predict", "after-chaos", "--data", '{"text": "still here"}')
        assert predicted.returncode == 0, predicted.stderr
        assert "still here" in predicted.stdout

        seen = descendants(up.process.pid)
        assert up.stop() == 0, "\n".join(up.output)
        # No process of this run remains, the restarted ones included.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(proc_stat(p) for p in seen):
            time.sleep(0.2)
        assert [p for p in seen if proc_stat(p)] == []
        # The survivors took each death in their stride: a line in their logs, no traceback.
        assert tracebacks(home) == {}
    finally:
        if load is not None:
            load.stop()
        if up.process.poll() is None or any(proc_stat(p) for p in seen):
            up.kill_everything(set(seen) | set(descendants(up.process.pid)))

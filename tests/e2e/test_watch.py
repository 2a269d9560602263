"""`kingpost watch` as a user runs it: push, edit model.py, and the endpoint answers with the new code
from the same deployment (no build); a broken edit keeps the old code serving; an edit
to config.yaml's environment is a push (a new development deployment); Ctrl-C stops the watch."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_truss_compat import Platform
from tests.e2e.test_up import client_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MODEL = """
class Model:
    def predict(self, model_input):
        return {"version": VERSION}
"""


class Watch:
    def __init__(self, home: Path, truss: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kingpost.cli", "watch", str(truss), "--interval", "0.1"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=client_env(home), process_group=0)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail("kingpost watch exited:\n" + "\n".join(self.output))
            self.output.append(line)
            if text in line:
                return line
        pytest.fail(f"no {text!r} from kingpost watch:\n" + "\n".join(self.output))


def version(platform: Platform) -> Any:
    reply = platform.predict("watched", {})
    return reply.json().get("version") if reply.status_code == 200 else (reply.status_code, reply.text)


def deployment_ids(platform: Platform) -> list[str]:
    reply = platform.http.get("/v1/models/watched/deployments")
    assert reply.status_code == 200, reply.text
    return [d["id"] for d in reply.json()["deployments"]]


def test_watch_reloads_code_live_and_pushes_config_changes(platform: Platform, tmp_path: Path) -> None:
    truss = tmp_path / "watched"
    (truss / "model").mkdir(parents=True)
    (truss / "config.yaml").write_text("model_name: watched\n")
    model_py = truss / "model" / "model.py"
    model_py.write_text(MODEL.replace("VERSION", "1"))
    watch = Watch(platform.home, truss)
    try:
        watch.wait_for("is ACTIVE")
        until = time.monotonic() + 10  # the router may get the new route table just after ACTIVE
        while version(platform) != 1 and time.monotonic() < until:
            time.sleep(0.05)
        assert version(platform) == 1
        first = deployment_ids(platform)
        assert len(first) == 1

        model_py.write_text(MODEL.replace("VERSION", "2"))
        written = time.monotonic()
        # A deadline for a hung reload, not a speed test (the time is printed below): what shows
        # a live reload is that the same deployment serves the new code, with no build.
        while version(platform) != 2:
            assert time.monotonic() - written < 60, "\n".join(watch.output)
            time.sleep(0.02)
        served_after = time.monotonic() - written
        assert "Reloaded model/model.py" in watch.wait_for("Reloaded")
        assert deployment_ids(platform) == first  # no build, no new deployment

        model_py.write_text("class Model:\n    def predict(self, model_input)\n")  # a syntax error
        watch.wait_for("reload failed (the previous code keeps serving)")
        watch.wait_for("SyntaxError")  # the runner's traceback, shown to the user
        assert version(platform) == 2  # the old code keeps serving
        model_py.write_text(MODEL.replace("VERSION", "3"))
        watch.wait_for("Reloaded")
        assert version(platform) == 3

        (truss / "config.yaml").write_text("model_name: watched\nenvironment_variables:\n  A: '1'\n")
        assert "environment_variables" in watch.wait_for(": pushing")
        watch.wait_for("is ACTIVE")
        second = deployment_ids(platform)
        assert len(second) == 1 and second != first  # a push replaced the development deployment
        assert version(platform) == 3

        watch.process.send_signal(signal.SIGINT)
        assert watch.process.wait(timeout=30) == 0
        watch.wait_for("Stopped watching.", timeout=5)
        print(f"new code served {served_after:.3f} s after the write", *watch.output, sep="\n")
    finally:
        if watch.process.poll() is None:
            os.killpg(watch.process.pid, signal.SIGKILL)
            watch.process.wait()

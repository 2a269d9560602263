"""Replicas heal under `kingpost up` (issue 21, acceptance 1), as a user sees it over REST and the CLI.

`kill -9` of the runner of a production deployment under load: the request in flight may get a 502
naming the crash, the others wait for the restart, predictions succeed again within 5 s, the
deployment never leaves ACTIVE, and `kingpost deployments get` shows the restart and how the runner
ended. A model that crashes at every start after its first is shown crash-looping with its last
lines, and its deployment UNHEALTHY (503 naming the crash loop); a new deployment whose model does
not load is FAILED, and `activate` tries it again.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_truss_compat import Platform, platform_up
from tests.e2e.test_up import run_cli
from tests.e2e.test_up_chaos import CLIENTS, Load, first_success_after

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

ECHO = """
class Model:
    def predict(self, model_input):
        return model_input
"""

# Loads once per replica; every later start of its runner fails (as a model whose GPU went away).
ONCE = """
import tempfile
from pathlib import Path

class Model:
    def load(self):
        marker = Path(tempfile.gettempdir()) / "loaded-once"
        if marker.exists():
            print("checking the GPU", flush=True)
            raise RuntimeError("the GPU is gone: this model loads once")
        marker.touch()

    def predict(self, model_input):
        return model_input
"""

# Does not load until FLAG exists (a fix outside the Truss: a file, a service, a credential).
UNTIL_FLAG = """
from pathlib import Path

class Model:
    def load(self):
        if not Path("FLAG").exists():
            raise RuntimeError("FLAG is missing")

    def predict(self, model_input):
        return {"loaded": True}
"""


def truss(root: Path, name: str, code: str) -> Path:
    d = root / name
    (d / "model").mkdir(parents=True)
    (d / "config.yaml").write_text(f"model_name: {name}\n")
    (d / "model" / "model.py").write_text(code)
    return d


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform_up(tmp_path_factory, "heal") as platform:
        yield platform


def cli_json(platform: Platform, *args: str) -> Any:
    done = run_cli(platform.home, *args, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def until(check: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if result := (last := check()):
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def runner_pid(platform: Platform, replica_id: str) -> int:
    """The pid of the replica's runner, from its agent's record (<home>/agent/replicas/<id>.json)."""
    record = json.loads((platform.home / "agent" / "replicas" / f"{replica_id}.json").read_text())
    return int(record["pid"])


class StatusWatch:
    """Reads the deployment over REST every 0.1 s, recording each status seen."""

    def __init__(self, platform: Platform, path: str) -> None:
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(platform, path), daemon=True)
        self._thread.start()

    def _watch(self, platform: Platform, path: str) -> None:
        while not self._stop.is_set():
            self.seen.append(platform.http.get(path).json()["status"])
            time.sleep(0.1)

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(timeout=15)
        return self.seen


def test_a_killed_runner_of_a_production_deployment_heals_under_load(platform: Platform, tmp_path: Path) -> None:
    pushed = platform.push(truss(tmp_path, "heal-echo", ECHO), "--environment", "production")
    model_id, dep_id = pushed["model"]["id"], pushed["deployment"]["id"]
    deployment_path = f"/v1/models/{model_id}/deployments/{dep_id}"
    until(lambda: platform.http.get(deployment_path).json()["status"] == "ACTIVE", "ACTIVE")
    (replica,) = platform.http.get(deployment_path).json()["replicas"]
    assert (replica["state"], replica["restarts"], replica["last_exit"]) == ("READY", 0, "")

    load = Load(f"{platform.url}/models/{model_id}/production/predict",
                {"Authorization": f"Api-Key {platform.key}"})
    watch = StatusWatch(platform, deployment_path)
    try:
        time.sleep(1.0)  # steady load first
        killed_at = time.monotonic()
        os.kill(runner_pid(platform, replica["id"]), signal.SIGKILL)
        again = first_success_after(load, killed_at, timeout=30.0)
        healed = until(lambda: (r := platform.http.get(deployment_path).json()["replicas"])
                       and r[0]["state"] == "READY" and r[0]["restarts"] == 1 and r, "the replica READY again")
        time.sleep(1.0)  # steady load after
    finally:
        load.stop()
        statuses = watch.stop()
    print(f"first success {again - killed_at:.2f} s after the kill")
    assert again - killed_at <= 5.0, again - killed_at

    # The request in flight at the crash may answer 502 naming it; no other call failed.
    failed = [c for c in load.calls if not c.ok]
    assert len(failed) <= CLIENTS, [c.what for c in failed]
    assert all(c.what.startswith("502 ") and "crashed or was killed" in c.what for c in failed), failed
    assert sum(c.ok for c in load.calls if c.started > again) > 5 * CLIENTS
    # The deployment never left ACTIVE.
    assert len(statuses) > 10 and set(statuses) == {"ACTIVE"}, statuses

    # The restart and how the runner ended, in `deployments get` (REST, CLI --json, CLI text).
    assert healed[0]["id"] == replica["id"]  # healed in place: not replaced
    (replica,) = healed
    assert replica["last_exit"].startswith("runner was killed by signal 9 (SIGKILL)"), replica
    assert not replica["crash_looping"]
    got = cli_json(platform, "deployments", "get", model_id, "production")
    assert got["status"] == "ACTIVE" and got["replicas"][0]["restarts"] == 1
    text = run_cli(platform.home, "deployments", "get", model_id, "production").stdout
    assert f"replica {replica['id']} on " in text and ": READY, restarted 1 time(s)" in text, text
    assert "last exit: runner was killed by signal 9 (SIGKILL)" in text, text


def test_a_crash_loop_is_unhealthy_and_a_failed_deployment_is_activated_again(
    platform: Platform, tmp_path: Path
) -> None:
    pushed = platform.push(truss(tmp_path, "heal-once", ONCE), "--publish")
    model_id, dep_id = pushed["model"]["id"], pushed["deployment"]["id"]
    path = f"/v1/models/{model_id}/deployments/{dep_id}"
    predict = f"/models/{model_id}/deployment/{dep_id}/predict"
    assert platform.http.post(predict, json={"n": 1}).json() == {"n": 1}
    (replica,) = platform.http.get(path).json()["replicas"]

    # Its runner dies; every start after that fails: crash-looping, and with its only replica so,
    # the deployment is UNHEALTHY, with the model's last lines.
    os.kill(runner_pid(platform, replica["id"]), signal.SIGKILL)
    d = until(lambda: (d := platform.http.get(path).json())["status"] == "UNHEALTHY" and d,
              "the deployment to be UNHEALTHY", timeout=60.0)
    assert d["status_reason"].startswith(f"every replica is crash-looping; replica {replica['id']}"), d
    assert "the GPU is gone" in d["status_reason"], d
    (looping,) = d["replicas"]
    assert looping["crash_looping"] and looping["state"] == "RESTARTING" and looping["restarts"] >= 2
    text = run_cli(platform.home, "deployments", "get", model_id, dep_id).stdout
    assert "UNHEALTHY (every replica is crash-looping" in text and ": CRASH-LOOPING, restarted" in text, text
    assert "RuntimeError: the GPU is gone: this model loads once" in text, text
    refused = platform.http.post(predict, json={"n": 2})
    assert refused.status_code == 503 and "crash-looping" in refused.text, refused.text

    # A new deployment whose model does not load at its first start: FAILED. Once the fix is in
    # place, `activate` tries it again and it serves.
    flag = Path(f"/tmp/kp-heal-{uuid.uuid4().hex}")
    created = platform.push(truss(tmp_path, "heal-flag", UNTIL_FLAG.replace("FLAG", str(flag))),
                            "--publish", "--no-wait")
    model_id, dep_id = created["model"]["id"], created["deployment"]["id"]
    path = f"/v1/models/{model_id}/deployments/{dep_id}"
    d = until(lambda: (d := platform.http.get(path).json())["status"] == "FAILED" and d,
              "the new deployment to be FAILED", timeout=120.0)
    assert "is missing" in d["status_reason"], d
    try:
        flag.touch(mode=0o644)
        done = run_cli(platform.home, "deployments", "activate", model_id, dep_id)
        assert done.returncode == 0, done.stdout + done.stderr
        until(lambda: platform.http.get(path).json()["status"] == "ACTIVE", "ACTIVE after activate")
        answer = platform.http.post(f"/models/{model_id}/deployment/{dep_id}/predict", json={})
        assert answer.json() == {"loaded": True}, answer.text
    finally:
        flag.unlink(missing_ok=True)

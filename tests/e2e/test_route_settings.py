"""kingpost's extensions of the autoscaling settings as a user meets them, through `kingpost up`: set with
`kingpost autoscaling set --backpressure reject --cold-start-timeout 5`, shown by the CLI and REST, and
honoured by the router over REST: 503 naming the timeout when no replica is ready in time, 429 at once
when the one replica is busy. The model's load and predict wait on files the test creates, so the test
decides when the deployment is ready and when a request ends: every assertion is about order, none
about how long something took beyond the timeout itself.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_truss_compat import Platform
from tests.e2e.test_up import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

MODEL = """
import pathlib
import time

GATES = pathlib.Path(GATES_DIR)


def wait_for(name):
    while not (GATES / name).exists():
        time.sleep(0.02)


class Model:
    def load(self):
        wait_for("loaded")

    def predict(self, model_input):
        (GATES / f"started-{model_input['n']}").touch()
        wait_for("released")
        return model_input
"""


def cli(platform: Platform, *args: str) -> Any:
    done = run_cli(platform.home, *args, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def gated_truss(root: Path, gates: Path) -> Path:
    d = root / "gated"
    (d / "model").mkdir(parents=True)
    (d / "config.yaml").write_text("model_name: gated\nruntime:\n  predict_concurrency: 1\n")
    (d / "model" / "model.py").write_text(MODEL.replace("GATES_DIR", repr(str(gates))))
    return d


def until(check: Any, what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_backpressure_reject_and_the_cold_start_timeout_reach_the_router(
    platform: Platform, tmp_path: Path
) -> None:
    gates = tmp_path / "gates"
    gates.mkdir()
    pushed = platform.push(gated_truss(tmp_path, gates), "--publish", "--no-wait")
    model_id, deployment_id = pushed["model"]["id"], pushed["deployment"]["id"]
    assert pushed["deployment"]["autoscaling_settings"]["backpressure_policy"] == "queue"  # the default

    reply = cli(platform, "autoscaling", "set", model_id, "--deployment", deployment_id,
                "--backpressure", "reject", "--cold-start-timeout", "5")
    assert reply["status"] == "ACCEPTED", reply
    got = cli(platform, "deployments", "get", model_id, deployment_id)["autoscaling_settings"]
    assert (got["backpressure_policy"], got["cold_start_timeout_seconds"]) == ("reject", 5)
    text = run_cli(platform.home, "deployments", "get", model_id, deployment_id).stdout
    assert "back-pressure reject, cold-start timeout 5s" in text
    shown = cli(platform, "autoscaling", "get", model_id, "--deployment", deployment_id)
    assert (shown["autoscaling_settings"]["backpressure_policy"],
            shown["autoscaling_settings"]["cold_start_timeout_seconds"]) == ("reject", 5)
    rest = platform.http.get(f"/v1/models/{model_id}/deployments/{deployment_id}").json()
    assert (rest["autoscaling_settings"]["backpressure_policy"],
            rest["autoscaling_settings"]["cold_start_timeout_seconds"]) == ("reject", 5)
    refused = platform.http.patch(f"/v1/models/{model_id}/deployments/{deployment_id}/autoscaling_settings",
                                  json={"backpressure_policy": "drop"})
    assert refused.status_code == 400, refused.text
    assert "backpressure_policy = 'drop': must be one of 'queue' or 'reject'" in refused.json()["error"]

    # The router learns of changes in order, by one stream. A deactivation after the settings, seen
    # as a 404 through REST, proves the router holds a table that has the settings too.
    predict = f"/models/{model_id}/deployment/{deployment_id}/predict"
    cli(platform, "deployments", "deactivate", model_id, deployment_id)
    inactive = until(lambda: (r := platform.http.post(predict, json={"n": 0})).status_code == 404 and r,
                     "the router to see the deactivation")
    assert inactive.json()["error"] == (f"deployment '{deployment_id}' of model '{model_id}' is inactive "
                                        "(deactivated; `kingpost deployments activate` brings it back)")
    cli(platform, "deployments", "activate", model_id, deployment_id)

    # Its replica loads until the test says so: a request is held, then refused after 5 s, not 300.
    def held_then_refused() -> httpx.Response | None:
        sent = time.monotonic()
        r = platform.http.post(predict, json={"n": 0})
        if r.status_code == 404 or "its build has not finished" in r.text:
            return None  # the router has not seen the activation yet, or the build still runs
        assert time.monotonic() - sent >= 5, r.text  # it was held for the timeout first
        return r

    cold = until(held_then_refused, "a request held until the cold-start timeout")
    assert cold.status_code == 503, cold.text
    assert cold.json()["error"] == (f"deployment '{deployment_id}' was not ready within the cold-start "
                                    "timeout of 5 s (status: DEPLOYING: its first replica is starting)")

    # Loaded: one request runs (predict_concurrency 1); a second one is refused at once.
    (gates / "loaded").touch()
    until(lambda: cli(platform, "deployments", "get", model_id, deployment_id)["status"] == "ACTIVE",
          "the deployment to be ACTIVE")
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(platform.http.post, predict, json={"n": 1})
        until(lambda: (gates / "started-1").exists(), "the first request to reach the model")
        second = platform.http.post(predict, json={"n": 2})
        assert second.status_code == 429, second.text
        assert "back-pressure policy is 'reject'" in second.json()["error"]
        assert not first.done()  # refused while the first still ran: it cannot end before "released"
        (gates / "released").touch()
        assert first.result().status_code == 200 and first.result().json() == {"n": 1}
    assert not (gates / "started-2").exists()  # the refused request never reached the model

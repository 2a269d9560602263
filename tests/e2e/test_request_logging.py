"""Request/response logging as a user turns it on, through `kingpost up`: `kingpost autoscaling set
--request-log-sample-rate 1 --request-log-max-bytes 16` on one deployment, shown by `deployments get`
and REST, applied by the replica started after it; a request's line (its id, status, input and
output cut at 16 bytes) is then found by `kingpost logs MODEL --request-id R`, and a deployment left
at the default logs none."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_route_settings import cli, until
from tests.e2e.test_truss_compat import Platform
from tests.e2e.test_up import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

MODEL = """
class Model:
    def predict(self, model_input):
        return {"echo": model_input, "padding": "x" * 100}
"""
REQUEST_LOGGER = "kingpost_runner.request_log"
BODY = b'{"prompt": "hello, world"}'


def echo_truss(root: Path, name: str) -> Path:
    d = root / name
    (d / "model").mkdir(parents=True)
    (d / "config.yaml").write_text(f"model_name: {name}\n")
    (d / "model" / "model.py").write_text(MODEL)
    return d


def request_lines(platform: Platform, model_id: str, request_id: str = "") -> list[dict[str, Any]]:
    args = ("--request-id", request_id) if request_id else ()
    done = run_cli(platform.home, "logs", model_id, *args, "-n", "1000", "--json")
    assert done.returncode == 0, done.stderr
    return [line for line in json.loads(done.stdout)["lines"] if REQUEST_LOGGER in line["text"]]


def test_a_sampled_request_is_logged_and_found_by_its_id(platform: Platform, tmp_path: Path) -> None:
    logged = platform.push(echo_truss(tmp_path, "logged-echo"), "--publish", "--no-wait")
    quiet = platform.push(echo_truss(tmp_path, "quiet-echo"), "--publish", "--no-wait")
    model_id, deployment_id = logged["model"]["id"], logged["deployment"]["id"]

    reply = cli(platform, "autoscaling", "set", model_id, "--deployment", deployment_id,
                "--request-log-sample-rate", "1", "--request-log-max-bytes", "16")
    assert reply["status"] == "ACCEPTED", reply
    text = run_cli(platform.home, "deployments", "get", model_id, deployment_id).stdout
    assert "request logging 1 of requests, 16 bytes a body" in text
    rest = platform.http.get(f"/v1/models/{model_id}/deployments/{deployment_id}").json()
    assert (rest["autoscaling_settings"]["request_logging_sample_rate"],
            rest["autoscaling_settings"]["request_logging_max_bytes"]) == (1, 16)
    refused = platform.http.patch(f"/v1/models/{model_id}/deployments/{deployment_id}/autoscaling_settings",
                                  json={"request_logging_sample_rate": 2})
    assert refused.status_code == 400 and "request_logging_sample_rate = 2" in refused.text

    # The setting reaches the replicas started after it: deactivate (until none is left), activate.
    cli(platform, "deployments", "deactivate", model_id, deployment_id)
    until(lambda: not cli(platform, "deployments", "get", model_id, deployment_id).get("active_replica_count")
          and cli(platform, "deployments", "get", model_id, deployment_id)["status"] == "INACTIVE",
          "the deactivated deployment to have no replica")
    cli(platform, "deployments", "activate", model_id, deployment_id)

    def answered(model: str, deployment: str) -> Any:
        response = platform.http.post(f"/models/{model}/deployment/{deployment}/predict",
                                      content=BODY, headers={"content-type": "application/json"})
        return response if response.status_code == 200 else None

    response = until(lambda: answered(model_id, deployment_id), "the logged deployment to answer", 180)
    request_id = response.headers["x-baseten-request-id"]
    quiet_response = until(lambda: answered(quiet["model"]["id"], quiet["deployment"]["id"]),
                           "the quiet deployment to answer", 180)
    assert quiet_response.json()["echo"] == {"prompt": "hello, world"}

    found = until(lambda: request_lines(platform, model_id, request_id), "the request's line", 30)
    assert len(found) == 1, found
    line = json.loads(found[0]["text"].split(": ", 1)[1])
    assert (line["request_id"], line["path"], line["status"]) == (request_id, "predict", 200)
    assert line["input"] == {"bytes": 26, "content_type": "application/json", "text": '{"prompt": "hell', "cut": True}
    assert line["output"]["text"] == response.content[:16].decode() and line["output"]["cut"] is True
    assert line["output"]["bytes"] == len(response.content)
    # Another id finds nothing of it; the deployment left at the default logs no request.
    assert request_lines(platform, model_id, "not-" + request_id) == []
    time.sleep(1)  # the agent ships a replica's lines every 0.1 s: the quiet one's would be there by now
    assert request_lines(platform, quiet["model"]["id"]) == []

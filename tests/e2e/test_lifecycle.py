"""The model lifecycle as a user lives it, with the CLI and with REST: development and published
deployments, promotion to production under load (not one request fails), environments and the
`environment` a model reads, deactivate / activate / delete answering 404 where they should.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_truss_compat import TRUSSES, Platform
from tests.e2e.test_up import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

MODEL = """
class Model:
    def predict(self, model_input):
        return {"version": VERSION}
"""


def truss(root: Path, version: int) -> Path:
    d = root / f"v{version}"
    (d / "model").mkdir(parents=True)
    (d / "config.yaml").write_text("model_name: lifecycle\n")
    (d / "model" / "model.py").write_text(MODEL.replace("VERSION", str(version)))
    return d


def cli_json(platform: Platform, *args: str) -> Any:
    done = run_cli(platform.home, *args, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def until(check: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_publish_promote_under_load_environments_and_404s(platform: Platform, tmp_path: Path) -> None:
    http = platform.http
    dev = platform.push(truss(tmp_path, 0), "--development")
    model_id = dev["model"]["id"]
    assert dev["deployment"]["name"] == "development"
    d1 = platform.push(truss(tmp_path, 1), "--publish")["deployment"]
    d2 = platform.push(truss(tmp_path, 2), "--publish")["deployment"]
    assert (d1["name"], d2["name"]) == ("deployment-1", "deployment-2")
    prod_url = f"/models/{model_id}/production/predict"

    # The model's first published deployment serves production at once (as on Baseten); promoting it
    # there again changes nothing.
    promoted = cli_json(platform, "deployments", "promote", "lifecycle", "deployment-1")
    assert promoted["environment"]["current_deployment"]["id"] == d1["id"]
    until(lambda: http.post(prod_url, json={}).json() == {"version": 1}, "production to serve deployment-1")

    # REST: promote deployment-2 while a client calls production constantly.
    failures: list[str] = []
    answers: list[int] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=platform.url, headers=dict(http.headers), timeout=30.0) as client:
            while not stop.is_set():
                r = client.post(prod_url, json={})
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text}")
                else:
                    answers.append(r.json()["version"])

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        began = time.monotonic()
        r = http.post(f"/v1/models/{model_id}/environments/production/promote", json={"deployment_id": d2["id"]})
        assert r.status_code == 200, r.text
        again = http.post(f"/v1/models/{model_id}/environments/production/promote",
                          json={"deployment_id": d1["id"]})
        assert again.status_code == 409 and "in progress" in again.json()["error"]

        def swapped() -> bool:
            env = http.get(f"/v1/models/{model_id}/environments/production").json()
            return (env["current_deployment"] or {}).get("id") == d2["id"]

        until(swapped, "production to serve deployment-2")
        print(f"REST promote deployment-2 until production serves it: {time.monotonic() - began:.2f} s")
        until(lambda: answers[-20:] == [2] * 20, "the load to reach deployment-2")
    finally:
        stop.set()
        for t in threads:
            t.join()
    print(f"requests through /production/predict during the promotion: {len(answers)}, "
          f"failed: {len(failures)}")
    assert not failures, failures[:5]
    assert 1 in answers and 2 in answers
    assert http.post(prod_url, json={}).json() == {"version": 2}

    # Production's deployment cannot be deleted; the CLI says why and exits non-zero.
    refused = run_cli(platform.home, "deployments", "delete", "lifecycle", d2["id"])
    assert refused.returncode == 1 and "promote another deployment to production first" in refused.stderr

    # Deactivate (CLI) → 404; activate (REST) → it answers again.
    by_id = f"/models/{model_id}/deployment/{d1['id']}/predict"
    cli_json(platform, "deployments", "deactivate", "lifecycle", d1["id"])
    until(lambda: http.post(by_id, json={}).status_code == 404, "the deactivated deployment to 404")
    assert http.post(f"/v1/models/{model_id}/deployments/{d1['id']}/activate", json={}).json() == {
        "success": True, "no_op": False}
    until(lambda: http.post(by_id, json={}).status_code == 200, "the activated deployment to answer")
    assert http.post(by_id, json={}).json() == {"version": 1}

    # Delete (REST) → 404, and gone from the list.
    assert http.delete(f"/v1/models/{model_id}/deployments/{d1['id']}").status_code == 200
    until(lambda: http.post(by_id, json={}).status_code == 404, "the deleted deployment to 404")
    listed = cli_json(platform, "deployments", "list", "lifecycle")
    assert d1["id"] not in {d["id"] for d in listed["deployments"]}


def test_a_model_reads_its_environment_through_the_staging_endpoint(platform: Platform) -> None:
    http = platform.http
    pushed = platform.push(TRUSSES / "environment", "--publish")
    model_id, dep = pushed["model"]["id"], pushed["deployment"]
    r = http.post(f"/v1/models/{model_id}/environments", json={"name": "staging"})
    assert r.status_code == 200, r.text
    listed = cli_json(platform, "environments", "list", model_id)
    assert [e["name"] for e in listed["environments"]] == ["production", "staging"]

    promoted = cli_json(platform, "environments", "promote", model_id, "staging", dep["id"])
    assert promoted["environment"]["current_deployment"]["environment"] == "staging"
    staging = f"/models/{model_id}/environments/staging/predict"
    assert http.post(staging, json={}).json()["environment"] == {"name": "staging"}

    r = http.delete(f"/v1/models/{model_id}/environments/production")
    assert r.status_code == 409 and "cannot be deleted" in r.json()["error"]
    cli_json(platform, "environments", "delete", model_id, "staging")
    until(lambda: http.post(staging, json={}).status_code == 404, "the deleted environment to 404")

    cli_json(platform, "models", "delete", model_id)
    assert http.get(f"/v1/models/{model_id}").status_code == 404

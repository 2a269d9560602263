"""Traces, as a user with a collector sees them: `kingpost up` with OTEL_EXPORTER_OTLP_ENDPOINT set, a
request carrying a W3C traceparent, and the spans (Envoy's, the router's, the runner's phases) arriving
over OTLP at a stand-in collector."""

from __future__ import annotations

import json
import queue
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_up import Up, client_env, descendants, free_port, proc_stat, run_cli
from tests.fixtures.otlp import Collector, attributes, collector  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRUSSES = Path(__file__).parent.parent / "trusses"
CHAINS = Path(__file__).parent.parent / "chains"


def traced_post(url: str, key: str, trace_id: str) -> httpx.Response:
    return httpx.post(url, content=b'{"text": "traced"}', timeout=60, headers={
        "Authorization": f"Api-Key {key}", "traceparent": f"00-{trace_id}-{PARENT}-01"})


def test_a_request_is_one_trace_from_the_client_through_router_and_runner_phases_with_its_request_id(
    collector: tuple[Collector, int], tmp_path: Path
) -> None:
    servicer, port = collector
    rest, grpc_port = free_port(), free_port()
    home = tmp_path / "home"
    up = Up(home, rest, grpc_port, env={
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_METRIC_EXPORT_INTERVAL": "500"})
    seen: dict[int, str] = {}
    try:
        curl = shlex.split(up.wait_for_curl())
        key = curl[curl.index("-H") + 1].split("Api-Key ")[1]
        # A model with preprocess, predict and postprocess, whose load() takes 3 s (a request that
        # follows its activation waits for it).
        truss = tmp_path / "traced"
        shutil.copytree(TRUSSES / "async_methods", truss)
        model_py = truss / "model" / "model.py"
        model_py.write_text(model_py.read_text().replace(
            "    def load(self):\n", "    def load(self):\n        __import__('time').sleep(3)\n").replace(
            "    async def predict(self, model_input: Any) -> Dict:\n",
            "    async def predict(self, model_input: Any) -> Dict:\n"
            "        __import__('logging').getLogger('traced').warning('predicting %s', model_input)\n"))
        pushed = run_cli(home, "push", str(truss), "--json")
        assert pushed.returncode == 0, pushed.stderr
        deployment = json.loads(pushed.stdout)["deployment"]
        url = f"http://127.0.0.1:{rest}/models/{deployment['model_id']}/deployment/{deployment['id']}/predict"

        response = traced_post(url, key, TRACE)
        assert response.status_code == 200, response.text
        request_id = response.headers["x-baseten-request-id"]
        spans = servicer.wait_for(TRACE, {"ingress", "kingpost.router/Predict", "kingpost.runner/Predict",
                                           "preprocess", "predict", "postprocess"})
        (service, server), (_, call) = spans["kingpost.router/Predict"], spans["kingpost.runner/Predict"]
        edge_service, edge = spans["ingress"]
        assert (edge_service, service) == ("kingpost-envoy", "kingpost-router")
        assert edge.parent_span_id.hex() == PARENT  # the client's span
        assert server.parent_span_id == edge.span_id
        assert call.parent_span_id == server.span_id
        assert server.end_time_unix_nano >= call.end_time_unix_nano > call.start_time_unix_nano
        phases = [spans[name][1] for name in ("preprocess", "predict", "postprocess")]
        for phase in phases:
            assert phase.parent_span_id == call.span_id
            assert call.start_time_unix_nano <= phase.start_time_unix_nano <= phase.end_time_unix_nano
        assert [p.start_time_unix_nano <= q.start_time_unix_nano for p, q in zip(phases, phases[1:])] == [True] * 2
        assert "cold_start_wait" not in spans and "load" not in spans  # its replica was ready
        assert {attributes(span)["kingpost.request_id"] for _, span in servicer.of_trace(TRACE)} == {request_id}
        # Each response has its own id; errors too.
        other = traced_post(url, key, "0" * 31 + "1")
        assert other.headers["x-baseten-request-id"] not in ("", request_id)
        missing = httpx.post(f"http://127.0.0.1:{rest}/models/nope/production/predict", json={},
                             headers={"Authorization": f"Api-Key {key}"}, timeout=30)
        assert missing.status_code == 404 and missing.headers["x-baseten-request-id"]

        # The services' metrics arrive over OTLP too: the router's request counter, with its labels.
        def two_ok(metric: Any) -> bool:
            labelled = [({a.key: a.value.string_value for a in p.attributes}, getattr(p, p.WhichOneof("value")))
                        for p in metric.sum.data_points]
            return any(labels["model"] == deployment["model_id"] and labels["deployment"] == deployment["id"]
                       and labels["model_name"] == "Test Async" and labels["code"] == "OK" and value == 2
                       for labels, value in labelled)

        requests = servicer.metrics_receiver.wait_for("kingpost-router", "kingpost_router_requests", two_ok)
        assert requests.sum.is_monotonic
        servicer.metrics_receiver.wait_for("kingpost-scheduler", "kingpost_scheduler_ready_replicas")

        # From zero: the request waits for the replica that activation starts, and its trace shows
        # the wait and, under it, the model's load().
        def cli(*args: str) -> dict:
            done = run_cli(home, *args, "--json")
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout) if done.stdout.strip() else {}

        ids = (deployment["model_id"], deployment["id"])
        cli("deployments", "deactivate", *ids)
        deadline = time.monotonic() + 60
        while traced_post(url, key, "f" * 32).status_code != 404 or next(
                d for d in cli("deployments", "list", ids[0])["deployments"] if d["id"] == ids[1]
        ).get("active_replica_count", 0):
            assert time.monotonic() < deadline, "the deactivated deployment kept its replica"
            time.sleep(0.2)
        cli("deployments", "activate", *ids)
        for attempt in range(100):  # until the router has the table that says it is active again
            cold_trace = f"{attempt + 2:032x}"
            response = traced_post(url, key, cold_trace)
            if response.status_code != 404:
                break
            time.sleep(0.1)
        assert response.status_code == 200, response.text
        spans = servicer.wait_for(cold_trace, {"kingpost.router/Predict", "cold_start_wait", "load",
                                                      "kingpost.runner/Predict", "predict"})
        server, wait, load = (spans[name][1] for name in ("kingpost.router/Predict", "cold_start_wait", "load"))
        assert wait.parent_span_id == server.span_id and load.parent_span_id == wait.span_id
        assert wait.start_time_unix_nano <= load.end_time_unix_nano <= wait.end_time_unix_nano + 50_000_000
        assert attributes(load)["kingpost.request_id"] == response.headers["x-baseten-request-id"]

        # Logs: `--request-id` finds one request's line; `--follow` shows a new one within a second.
        found = run_cli(home, "logs", deployment["model_id"], "--request-id", request_id)
        assert found.returncode == 0, found.stderr
        assert [line for line in found.stdout.splitlines() if "predicting" in line] == [
            line for line in found.stdout.splitlines() if request_id in line] and request_id in found.stdout
        follow = subprocess.Popen([sys.executable, "-m", "kingpost.cli", "logs", deployment["model_id"], "--follow"],
                                  env=client_env(home), stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(2)  # its first answer: the lines so far
            followed = traced_post(url, key, "e" * 32)
            answered = time.monotonic()
            wanted = followed.headers["x-baseten-request-id"]
            lines: queue.Queue[str] = queue.Queue()
            threading.Thread(target=lambda: [lines.put(line) for line in follow.stdout], daemon=True).start()
            while wanted not in (line := lines.get(timeout=10)):
                pass
            assert "predicting" in line and time.monotonic() - answered < 1.0
        finally:
            follow.terminate()
            follow.wait(timeout=10)
        # A chain: the Chainlet's call to its dependency continues the trace, under the caller's runner
        # call, with the same request id.
        chain = run_cli(home, "chains", "push", str(CHAINS / "hello.py"), "--json")
        assert chain.returncode == 0, chain.stderr
        chain_id = json.loads(chain.stdout)["chain"]["id"]
        chain_trace = "c" * 32
        response = httpx.post(f"http://127.0.0.1:{rest}/chains/{chain_id}/production/run_remote", timeout=120,
                              json={"max_value": 2}, headers={"Authorization": f"Api-Key {key}",
                                                              "traceparent": f"00-{chain_trace}-{PARENT}-01"})
        assert response.status_code == 200 and response.json().startswith("Hello World!"), response.text
        servicer.wait_for(chain_trace, {"ingress", "kingpost.router/Predict", "kingpost.runner/Predict"})
        deadline = time.monotonic() + 30
        while len([s for _, s in servicer.of_trace(chain_trace) if s.name == "kingpost.runner/Predict"]) < 2:
            assert time.monotonic() < deadline, [s.name for _, s in servicer.of_trace(chain_trace)]
            time.sleep(0.1)
        by_id = {span.span_id: span for _, span in servicer.of_trace(chain_trace)}
        routers = sorted((s for s in by_id.values() if s.name == "kingpost.router/Predict"),
                         key=lambda s: s.start_time_unix_nano)
        assert len(routers) == 2
        entry, dependency = routers
        assert by_id[entry.parent_span_id].name == "ingress"
        hop = by_id[dependency.parent_span_id]  # the entry Chainlet's runner call, under the entry's router span
        assert hop.name == "kingpost.runner/Predict" and hop.parent_span_id == entry.span_id
        assert {attributes(s)["kingpost.request_id"] for s in by_id.values()} == {
            response.headers["x-baseten-request-id"]}

        seen = descendants(up.process.pid)
        assert up.stop() == 0
    finally:
        if up.process.poll() is None or any(proc_stat(p) for p in seen):
            up.kill_everything(set(seen) | set(descendants(up.process.pid)))

"""Async inference as a user meets it, through `kingpost up` and Envoy's REST: a thousand requests
queued at once, each answered at a local webhook receiver once, signed by both active webhook
secrets, with its own input's answer; bad input refused naming the field; and the router, then the
NATS server, `kill -9`ed while requests are queued, after which every one still reaches a terminal
status and its webhook (at least once).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from kingpost_router.async_policy import SIGNATURE_HEADER, sign, verify
from tests.e2e.test_up import Up, descendants, free_port, proc_stat, run_cli
from tests.e2e.test_up_chaos import next_line, service_pid

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ACK_WAIT_S = 3


@dataclass
class Receiver:
    """A webhook endpoint on localhost that keeps every POST it gets."""

    server: ThreadingHTTPServer
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def by_request(self) -> dict[str, list[tuple[dict[str, str], bytes]]]:
        out: dict[str, list[tuple[dict[str, str], bytes]]] = {}
        with self.lock:
            for headers, body in self.got:
                out.setdefault(json.loads(body)["request_id"], []).append((headers, body))
        return out


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["content-length"]))
            with holder[0].lock:
                holder[0].got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(Receiver(server))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder[0]
    server.shutdown()


@dataclass
class Platform:
    up: Up
    http: httpx.Client
    model_id: str
    secrets: tuple[str, str] = ("", "")  # (newest, older): both active, as during a rotation


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Platform]:
    home = tmp_path_factory.mktemp("async") / "home"
    env = {"KINGPOST_ASYNC_ACK_WAIT_SECONDS": str(ACK_WAIT_S)}
    rest = free_port()
    up = Up(home, rest, free_port(), env=env)
    seen: dict[int, str] = {}
    try:
        up.wait_for_curl()
        config = (home / "config.toml").read_text()
        key = next(line.split('"')[1] for line in config.splitlines() if line.startswith("api_key"))
        with httpx.Client(base_url=f"http://127.0.0.1:{rest}", headers={"Authorization": f"Api-Key {key}"},
                          timeout=60) as http:
            models = http.get("/v1/models").json()["models"]
            echo = next(m for m in models if m["name"] == "echo")
            older = http.post("/v1/webhook_secrets", json={}).json()["secret"]
            newest = run_cli(home, "webhook-secrets", "create", "--json")
            assert newest.returncode == 0, newest.stderr
            platform = Platform(up, http, echo["id"], (json.loads(newest.stdout)["secret"], older))
            signed_by_both(platform, receiver)
            yield platform
        seen = descendants(up.process.pid)
        assert up.stop() == 0
    finally:
        if up.process.poll() is None or any(proc_stat(p) for p in seen):
            up.kill_everything(set(seen) | set(descendants(up.process.pid)))


def signed_by_both(platform: Platform, receiver: Receiver) -> None:
    """Probes until the router has the route table with both new secrets (it follows the commit)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        (probe,) = queue(platform, receiver, ["probe"])
        wait_for_webhooks(receiver, {probe}, timeout=30)
        if receiver.by_request()[probe][0][0][SIGNATURE_HEADER.lower()].count("v1=") == 2:
            with receiver.lock:
                receiver.got.clear()
            return
    raise AssertionError("webhooks are not signed with both secrets")


def queue(platform: Platform, receiver: Receiver, inputs: list[Any], **extra: Any) -> dict[str, Any]:
    """request id → the input it carried."""
    def one(model_input: Any) -> tuple[str, Any]:
        r = platform.http.post(f"/models/{platform.model_id}/development/async_predict",
                               json={"model_input": model_input, "webhook_endpoint": receiver.url, **extra})
        assert r.status_code == 201, r.text  # Baseten answers 201 Created
        assert list(r.json()) == ["request_id"]
        return r.json()["request_id"], model_input

    with ThreadPoolExecutor(8) as pool:  # a client queueing as fast as it can
        return dict(pool.map(one, inputs))


def wait_for_webhooks(receiver: Receiver, ids: set[str], timeout: float = 180.0,
                      platform: Platform | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        missing = ids - set(receiver.by_request())
        if not missing:
            return
        time.sleep(0.2)
    statuses: dict[str, int] = {}
    for request_id in sorted(missing) if platform else ():  # what the platform says of the lost ones
        r = platform.http.get(f"/models/{platform.model_id}/async_request/{request_id}")
        status = r.json().get("status") or f"{r.status_code} {r.json().get('error')}"
        statuses[status] = statuses.get(status, 0) + 1
    counts = platform.http.get(f"/models/{platform.model_id}/development/async_queue_status").json() \
        if platform else {}
    raise AssertionError(f"{len(missing)} of {len(ids)} webhooks never arrived; their statuses: {statuses}; "
                         f"the queue: {counts}")


def check_delivered(platform: Platform, receiver: Receiver, sent: dict[str, Any], *, once: bool) -> None:
    got = receiver.by_request()
    for request_id, model_input in sent.items():
        deliveries = got[request_id]
        if once:
            assert len(deliveries) == 1, (request_id, len(deliveries))
        for headers, body in deliveries:
            signature = headers[SIGNATURE_HEADER.lower()]
            newest, older = platform.secrets
            assert signature.count("v1=") == 2  # both active secrets sign, the newest first
            assert signature.split(",")[0] == f"v1={sign(body, newest)}" and verify(body, signature, older)
            hook = json.loads(body)
            assert hook["type"] == "async_request_completed" and hook["errors"] == []
            assert (hook["model_id"], hook["data"]) == (platform.model_id, {"echo": model_input})
        # After a crash the webhook may come before the status that records it (the request is run
        # again once its job is handed out again): the status follows within a few seconds.
        deadline = time.monotonic() + 60
        while True:
            status = platform.http.get(f"/models/{platform.model_id}/async_request/{request_id}").json()
            assert "status" in status, status
            if status["status"] != "IN_PROGRESS" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert (status["status"], status["webhook_status"]) == ("SUCCEEDED", "SUCCEEDED"), status
        assert status["request_id"] == request_id and status["errors"] == []


def test_many_async_requests_each_arrive_once_signed_with_their_own_answer(
    platform: Platform, receiver: Receiver
) -> None:
    sent = queue(platform, receiver, [{"n": i} for i in range(1000)], priority=1)
    wait_for_webhooks(receiver, set(sent))
    check_delivered(platform, receiver, sent, once=True)
    counts = platform.http.get(f"/models/{platform.model_id}/development/async_queue_status").json()
    assert counts["num_queued_requests"] == 0 and counts["num_in_progress_requests"] == 0, counts
    assert counts["model_id"] == platform.model_id and counts["deployment_id"].startswith("dep_")
    # Already done: nothing to cancel, and the answer says why.
    some = next(iter(sent))
    cancel = platform.http.delete(f"/models/{platform.model_id}/async_request/{some}").json()
    assert cancel == {"request_id": some, "canceled": False,
                      "message": "only a QUEUED request can be canceled; this one is SUCCEEDED"}


@pytest.mark.parametrize(("body", "status", "names"), [
    ({"webhook_endpoint": "http://127.0.0.1/x"}, 400, "model_input"),
    ({"model_input": 1, "priority": 7}, 400, "priority"),
    ({"model_input": 1, "max_time_in_queue_seconds": 5}, 400, "max_time_in_queue_seconds"),
    ({"model_input": 1, "webhook_endpoint": "ftp://example.com/x"}, 400, "webhook_endpoint"),
    ({"model_input": 1, "webhok_endpoint": "https://example.com"}, 400, "webhok_endpoint"),
    ({"model_input": "x" * (300 * 1024)}, 413, "limit is 262144"),
])
def test_bad_async_input_is_refused_naming_the_field(
    platform: Platform, body: dict[str, Any], status: int, names: str
) -> None:
    r = platform.http.post(f"/models/{platform.model_id}/development/async_predict", json=body)
    assert r.status_code == status, r.text
    assert names in r.json()["error"]


def test_unknown_deployments_and_request_ids_are_404(platform: Platform) -> None:
    r = platform.http.post(f"/models/{platform.model_id}/deployment/dep_nope/async_predict",
                           json={"model_input": 1})
    assert r.status_code == 404 and "dep_nope" in r.json()["error"], r.text
    r = platform.http.get(f"/models/{platform.model_id}/async_request/0123456789abcdef")
    assert r.status_code == 404 and "0123456789abcdef" in r.json()["error"], r.text


@pytest.mark.parametrize("service", ["router", "nats"])
def test_a_service_killed_while_requests_are_queued_loses_none(
    platform: Platform, receiver: Receiver, service: str
) -> None:
    sent = queue(platform, receiver, [{"k": i, "killed": service} for i in range(300)])
    counts = platform.http.get(f"/models/{platform.model_id}/development/async_queue_status").json()
    assert counts["num_queued_requests"] + counts["num_in_progress_requests"] > 0, counts
    os.kill(service_pid(platform.up, service), signal.SIGKILL)
    next_line(platform.up, f"{service} exited (signal 9, SIGKILL); starting it again")
    wait_for_webhooks(receiver, set(sent), platform=platform)
    # At least once: a request the dead router had started may be answered twice, never zero times.
    check_delivered(platform, receiver, sent, once=False)

"""Autoscaling as a user sees it, through `kingpost up`: a published deployment with min_replica 0
and a short scale-down delay goes to zero, and the next request is held through a cold start and
answered (never refused); with concurrency_target 1 and max_replica 4, four steady clients bring it
to 4 replicas, which stay for the scale-down delay after the clients stop and then go.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_truss_compat import Platform, platform_up
from tests.e2e.test_up import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform_up(tmp_path_factory, "autoscale") as platform:
        yield platform


def cli(platform: Platform, *args: str) -> dict[str, Any]:
    done = run_cli(platform.home, *args, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def push_published(platform: Platform, truss: str, **settings: int) -> tuple[str, str]:
    result = platform.push(truss, "--publish")
    model_id, deployment_id = result["model"]["id"], result["deployment"]["id"]
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in settings.items()]
    reply = cli(platform, "autoscaling", "set", model_id, "--deployment", deployment_id, *flags)
    assert reply["status"] == "ACCEPTED", reply
    return model_id, deployment_id


def state(platform: Platform, model_id: str, deployment_id: str) -> tuple[str, int]:
    got = cli(platform, "autoscaling", "get", model_id, "--deployment", deployment_id)
    return got["status"], got["active_replica_count"]


def wait_for(platform: Platform, model_id: str, deployment_id: str, want, what: str, timeout: float = 120
             ) -> tuple[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        now = state(platform, model_id, deployment_id)
        if want(*now):
            return now
        assert time.monotonic() < deadline, f"{what}: still {now}"
        time.sleep(0.5)


def predict_path(model_id: str, deployment_id: str) -> str:
    return f"/models/{model_id}/deployment/{deployment_id}/predict"


def test_scales_to_zero_and_the_next_request_is_held_through_a_cold_start(platform: Platform) -> None:
    model_id, deployment_id = push_published(platform, "echo", min_replica=0, autoscaling_window=10,
                                             scale_down_delay=3)
    wait_for(platform, model_id, deployment_id, lambda s, n: s == "SCALED_TO_ZERO" and n == 0,
             "scale to zero after the delay with no traffic")
    started = time.perf_counter()
    response = platform.http.post(predict_path(model_id, deployment_id), json={"cold": True})
    cold = time.perf_counter() - started
    assert response.status_code == 200, response.text
    assert response.json() == {"cold": True}
    assert state(platform, model_id, deployment_id) == ("ACTIVE", 1)
    print(f"cold start, request to response: {cold:.2f} s")
    # And back to zero once quiet again.
    wait_for(platform, model_id, deployment_id, lambda s, n: s == "SCALED_TO_ZERO", "zero again")


def test_four_steady_clients_reach_four_replicas_which_stay_for_the_delay(platform: Platform) -> None:
    delay = 20
    model_id, deployment_id = push_published(
        platform, "concurrency", min_replica=1, max_replica=4, concurrency_target=1,
        target_utilization_percentage=100, autoscaling_window=10, scale_down_delay=delay)
    wait_for(platform, model_id, deployment_id, lambda s, n: s == "ACTIVE", "the first replica")
    stop = threading.Event()
    failures: list[str] = []

    def client() -> None:
        while not stop.is_set():
            r = platform.http.post(predict_path(model_id, deployment_id), json={"x": 1})
            if r.status_code != 200:
                failures.append(f"{r.status_code} {r.text}")

    clients = [threading.Thread(target=client) for _ in range(4)]
    for t in clients:
        t.start()
    try:
        wait_for(platform, model_id, deployment_id, lambda s, n: n == 4, "4 replicas under 4 clients")
    finally:
        stop.set()
        for t in clients:
            t.join(timeout=30)
    stopped = time.monotonic()
    assert not failures, failures[:3]
    # Up for the delay... The load ended a moment before `stopped` (the last requests returned first),
    # so watch a little less than the delay; a slow machine only makes the autoscaler later, never earlier.
    while time.monotonic() - stopped < delay - 5:
        assert state(platform, model_id, deployment_id)[1] == 4
        time.sleep(1)
    # ... then down to min_replica.
    wait_for(platform, model_id, deployment_id, lambda s, n: n == 1, "down to min_replica after the delay")

"""Canary promotions as a user lives them, under constant load through /production/predict: a
canary over 10 s moves the answers to the new code in 10 stages and ends with it serving; a
cancelled one sends every answer back to the current deployment; not one request fails."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_lifecycle import cli_json, truss, until
from tests.e2e.test_truss_compat import Platform, platform_up

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform_up(tmp_path_factory, "canary") as platform:
        yield platform


class Load:
    """Four clients calling production constantly; each answer's time and version."""

    def __init__(self, platform: Platform, url: str) -> None:
        self.answers: list[tuple[float, int]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        headers = dict(platform.http.headers)

        def run() -> None:
            with httpx.Client(base_url=platform.url, headers=headers, timeout=30.0) as client:
                while not self._stop.is_set():
                    r = client.post(url, json={})
                    if r.status_code != 200:
                        self.failures.append(f"{r.status_code} {r.text}")
                    else:
                        self.answers.append((time.monotonic(), r.json()["version"]))

        self._threads = [threading.Thread(target=run) for _ in range(4)]
        for t in self._threads:
            t.start()

    def last(self, n: int) -> list[int]:
        return [v for _, v in self.answers[-n:]]

    def share(self, version: int, start: float, end: float) -> float:
        window = [v for t, v in self.answers if start <= t < end]
        return sum(1 for v in window if v == version) / max(1, len(window))

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()


def test_canary_ramps_in_ten_stages_and_a_cancelled_one_returns(platform: Platform, tmp_path: Path) -> None:
    http = platform.http
    pushed = platform.push(truss(tmp_path, 1), "--publish")
    d1, model_id = pushed["deployment"], pushed["model"]["id"]
    d2 = platform.push(truss(tmp_path, 2), "--publish")["deployment"]
    d3 = platform.push(truss(tmp_path, 3), "--publish")["deployment"]
    cli_json(platform, "deployments", "promote", "lifecycle", d1["id"])
    env_url = f"/v1/models/{model_id}/environments/production"
    load = Load(platform, f"/models/{model_id}/production/predict")

    def env() -> dict[str, Any]:
        return http.get(env_url).json()

    try:
        until(lambda: load.last(20) == [1] * 20, "the load to reach deployment-1")
        # A 10 s canary, from the CLI; GET shows the stage and split while it ramps.
        cli_json(platform, "environments", "promote", "lifecycle", "production", d2["id"],
                 "--canary-duration", "10", "--no-wait")
        stages: list[tuple[float, int, dict[str, int]]] = []

        def swapped() -> bool:
            e = env()
            if "current_canary" in e:
                stages.append((time.monotonic(), e["current_canary"].get("stage", 0), e["traffic"]))
            return e["current_deployment"]["id"] == d2["id"] and not e.get("promoting_deployment_id")

        until(swapped, "production to serve deployment-2 after its canary", timeout=90)
        ended = time.monotonic()
        seen = [s for _, s, _ in stages]
        print(f"canary stages seen: {sorted(set(seen))}")
        assert seen == sorted(seen) and len({s for s in seen if s > 0}) >= 6
        for _, stage, traffic in stages:
            if 0 < stage < 10:
                assert traffic == {d1["id"]: 100 - 10 * stage, d2["id"]: 10 * stage}
        began = next(t for t, s, _ in stages if s > 0)
        early, late = load.share(2, began, began + 3), load.share(2, ended - 3, ended)
        print(f"answers from deployment-2: {early:.0%} in the canary's first 3 s, {late:.0%} in its last 3 s")
        assert 0 < early < late and late > 0.6
        until(lambda: load.last(20) == [2] * 20, "every answer from deployment-2")

        # A second canary, cancelled part-way: every answer comes from deployment-2 again.
        http.post(f"{env_url}/promote", json={"deployment_id": d3["id"], "ramp_up_duration_seconds": 30})
        until(lambda: env().get("current_canary", {}).get("stage", 0) >= 3, "the canary to reach stage 3")
        until(lambda: 3 in load.last(40), "answers from deployment-3")
        cancelled = cli_json(platform, "environments", "cancel-promotion", "lifecycle", "production")
        assert cancelled["traffic"] == {d2["id"]: 100} and "current_canary" not in cancelled
        until(lambda: load.last(40) == [2] * 40, "every answer back on deployment-2")
        assert env()["current_deployment"]["id"] == d2["id"]
    finally:
        load.stop()
    print(f"requests during the canaries: {len(load.answers)}, failed: {len(load.failures)}")
    assert not load.failures, load.failures[:5]

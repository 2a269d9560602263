"""Cold starts from zero and the autoscaler's reaction time, measured on a real `kingpost up`.

    .venv/bin/python bench/cold_start.py [--cold-starts 10]

Starts `kingpost up` in a temporary home, publishes a Truss with no requirements (bench/trusses/noop),
sets min_replica 0, a 10-s window and no scale-down delay, then repeats: wait until the deployment
is SCALED_TO_ZERO with no replica left, send one REST predict and time it to its response (the
router holds it, pokes the autoscaler, which scales to 1; the replica starts, loads, and the held
request is released). Then the reaction to a load step on a warm deployment (max_replica 4): the
time from the step to the autoscaler's first higher decision (its desired-replicas gauge), and the
autoscaler's own poke → ScaleDeployment histogram. Prints a Markdown table. Stops what it started.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import re
import statistics
import tempfile
import threading
import time
import tomllib
import urllib.request
from pathlib import Path

from platform_latency import NOOP, percentile, start_up, stop_up

from kingpost import deployment_status, rpc
from kingpost.client_config import ClientConfig
from kingpost.push import push
from kingpost.v1 import management_pb2, management_pb2_grpc


def rest_predict(port: int, path: str, key: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    start = time.perf_counter()
    conn.request("POST", path, body=b'{"x": 1}', headers={"Authorization": f"Api-Key {key}",
                                                           "Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    elapsed = time.perf_counter() - start
    conn.close()
    assert response.status == 200, (response.status, data)
    return elapsed


def service_metrics(home: Path, service: str) -> str:
    port = tomllib.loads((home / "run" / f"{service}.toml").read_text())["metrics_port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def autoscaler_metrics(home: Path) -> str:
    return service_metrics(home, "autoscaler")


def phase_means(text: str, histogram: str) -> dict[str, tuple[int, float]]:
    """phase → (count, mean seconds) of one of the cold-start histograms."""
    out = {}
    for m in re.finditer(rf'{histogram}_count{{phase="([a-z]+)"}} ([0-9.e+]+)', text):
        phase, count = m.group(1), float(m.group(2))
        total = re.search(rf'{histogram}_sum{{phase="{phase}"}} ([0-9.e+]+)', text)
        if count and total:
            out[phase] = (int(count), float(total.group(1)) / count)
    return out


def desired_gauge(text: str, deployment_id: str) -> float:
    m = re.search(rf'kingpost_autoscaler_desired_replicas{{deployment_id="{deployment_id}"}} ([0-9.e+]+)', text)
    return float(m.group(1)) if m else -1.0


async def main_async(args: argparse.Namespace, home: Path, info: dict) -> None:
    config = ClientConfig(url=info["url"], grpc=info["grpc"], api_key=info["api_key"])
    rest_port = int(config.url.rsplit(":", 1)[1])
    auth = rpc.api_key(config.api_key)
    channel = rpc.channel(config.grpc)
    management = management_pb2_grpc.ManagementServiceStub(channel)
    result = await push(config, NOOP, publish=True)
    model_id, deployment_id = result.model.id, result.deployment.id
    path = f"/models/{model_id}/deployment/{deployment_id}/predict"

    async def patch(**fields: int) -> None:
        await rpc.call(management.UpdateAutoscalingSettings, management_pb2.UpdateAutoscalingSettingsRequest(
            model_id=model_id, deployment_id=deployment_id, **fields), auth=auth)

    async def deployment() -> management_pb2.Deployment:
        reply = await rpc.call(management.GetDeployment, management_pb2.GetDeploymentRequest(
            model_id=model_id, deployment_id=deployment_id), auth=auth)
        return reply

    await patch(min_replica=0, max_replica=4, autoscaling_window=10, scale_down_delay=0)
    cold: list[float] = []
    for _ in range(args.cold_starts):
        while True:
            d = await deployment()
            if d.status == deployment_status.SCALED_TO_ZERO and d.active_replica_count == 0:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # let the stopped runner's exit settle
        cold.append(await asyncio.to_thread(rest_predict, rest_port, path, config.api_key))
        print(f"cold start {len(cold)}: {cold[-1]:.2f} s", flush=True)
    poke_hist = autoscaler_metrics(home)
    phases = {**{f"scheduler {k}": v for k, v in phase_means(
                 service_metrics(home, "scheduler"), "kingpost_scheduler_cold_start_seconds").items()},
              **{f"agent {k}": v for k, v in phase_means(
                 service_metrics(home, "agent"), "kingpost_worker_agent_cold_start_seconds").items()}}

    # Load step on a warm deployment: 1 replica, then 8 concurrent clients.
    await patch(min_replica=1, scale_down_delay=600)
    while (await deployment()).status != deployment_status.ACTIVE:
        await asyncio.sleep(0.2)
    await asyncio.sleep(3)
    before = desired_gauge(autoscaler_metrics(home), deployment_id)
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            rest_predict(rest_port, path, config.api_key)

    step = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    reaction = None
    while time.perf_counter() - step < 30:
        if desired_gauge(autoscaler_metrics(home), deployment_id) > max(before, 1):
            reaction = time.perf_counter() - step
            break
        await asyncio.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    await channel.close()

    count = re.search(r"kingpost_autoscaler_poke_to_scale_seconds_count ([0-9.e+]+)", poke_hist)
    total = re.search(r"kingpost_autoscaler_poke_to_scale_seconds_sum ([0-9.e+]+)", poke_hist)
    print(f"\nmachine: {os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| measure | n | p50 | p99 | max |\n|---|---|---|---|---|")
    print(f"| cold start from zero, request → response (noop Truss) | {len(cold)} | "
          f"{statistics.median(cold):.2f} s | {percentile(cold, 99):.2f} s | {max(cold):.2f} s |")
    if count and total and float(count.group(1)):
        mean_ms = float(total.group(1)) / float(count.group(1)) * 1000
        print(f"| poke → ScaleDeployment answered (autoscaler, mean) | {int(float(count.group(1)))} | "
              f"{mean_ms:.1f} ms (mean) | | |")
    print(f"| load step (1 → 8 clients) → first higher decision | 1 | "
          f"{'%.2f s' % reaction if reaction is not None else 'none in 30 s'} | | |")
    print("\n| cold-start phase (includes the first push) | n | mean |\n|---|---|---|")
    for phase, (n, mean) in phases.items():
        print(f"| {phase} | {n} | {mean * 1000:.0f} ms |")
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for line in (home / "logs" / "agent.log").read_text().splitlines():
        if "runner containment: " in line:
            print(line.partition("kingpost_worker_agent.containment: ")[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold-starts", type=int, default=10)
    parser.add_argument("--baseline", action="store_true",
                        help="as before issue 5's cuts: no standby runner, autoscaler decides on its tick only")
    parser.add_argument("--runner-python", help="the agent's runner_python: as root, one other users can run, so "
                        "that runners run as users of their own (docs/isolation.md)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kp-bench-") as tmp:
        home = Path(tmp)
        home.chmod(0o711)  # as `kingpost up` leaves a home: runners' own users pass through
        env = {"KINGPOST_STANDBY_RUNNERS": "0", "KINGPOST_DECIDE_ON_SAMPLES": "false"} if args.baseline else {}
        if args.runner_python:
            env["KINGPOST_RUNNER_PYTHON"] = args.runner_python
        proc, info = start_up(home, env)
        try:
            asyncio.run(main_async(args, home, info))
        finally:
            stop_up(proc)


if __name__ == "__main__":
    main()

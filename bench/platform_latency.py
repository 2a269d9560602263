"""Push-to-ready and the platform's added latency, measured on a real `kingpost up`.

    .venv/bin/python bench/platform_latency.py [--requests 2000] [--pushes 5]

Starts `kingpost up` in a temporary home, then:
1. push-to-ready: pushes of a Truss with no requirements (new content each time, so each one
   builds, schedules, starts a runner and loads), timed from the CLI's upload to ACTIVE; plus
   re-pushes of unchanged content (the builder reuses the artifact);
2. a no-op predict (async model, predict_concurrency 32), concurrency 1, in interleaved blocks:
   the runner called directly over gRPC (the baseline), the same call through the platform's gRPC
   address (Envoy → router → runner), and REST through Envoy (a keep-alive http.client, which costs
   far less than httpx).
Prints a Markdown table. Stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import kingpost  # noqa: F401  (first: the gRPC settings kingpost processes run with)

from kingpost import rpc
from kingpost.client_config import ClientConfig
from kingpost.push import push
from kingpost.v1 import (
    inference_pb2,
    inference_pb2_grpc,
    runner_pb2,
    runner_pb2_grpc,
    scheduler_pb2,
    scheduler_pb2_grpc,
)
from google.api import httpbody_pb2

ROOT = Path(__file__).resolve().parent
NOOP = ROOT / "trusses" / "noop"
BODY = b'{"x": 1}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def stop_up(proc: subprocess.Popen[str]) -> None:
    """Ctrl-C to `kingpost up` (it stops everything it started), then a kill if it has not in 60 s."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_up(home: Path, env_extra: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], dict]:
    rest, grpc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINGPOST_")} | (env_extra or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "kingpost.cli", "up", "--home", str(home), "--port", str(rest),
         "--grpc-port", str(grpc_port), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("{"):
            return proc, json.loads(line)
    raise SystemExit(f"kingpost up exited with {proc.wait()}; see {home}/logs")


async def runner_address(home: Path, model_id: str) -> str:
    scheduler_port = tomllib.loads((home / "run" / "scheduler.toml").read_text())["grpc_port"]
    async with rpc.channel(f"127.0.0.1:{scheduler_port}") as channel:
        stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
        async for reply in stub.WatchRoutes(scheduler_pb2.WatchRoutesRequest(watcher="bench")):
            for model in reply.table.models:
                if model.model_id != model_id:
                    continue
                for deployment in model.deployments:
                    if deployment.deployment_id == model.development_deployment_id and deployment.replicas:
                        return deployment.replicas[0].address
    raise SystemExit("no replica found")


async def bench_pushes(config: ClientConfig, pushes: int, workdir: Path) -> dict[str, list[float]]:
    fresh, cached = [], []
    for i in range(pushes):
        truss = workdir / f"noop{i}"
        shutil.copytree(NOOP, truss)
        (truss / "model" / "model.py").write_text((NOOP / "model" / "model.py").read_text() + f"\n# {i} {time.time()}\n")
        start = time.perf_counter()
        await push(config, truss, model_name="bench-push")
        fresh.append(time.perf_counter() - start)
        start = time.perf_counter()
        await push(config, truss, model_name="bench-push")
        cached.append(time.perf_counter() - start)
    return {"fresh": fresh, "cached": cached}


async def grpc_latencies(call, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def rest_latencies(port: int, path: str, key: str, n: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
    out = []
    for _ in range(n):
        start = time.perf_counter()
        conn.request("POST", path, body=BODY, headers=headers)
        response = conn.getresponse()
        data = response.read()
        out.append((time.perf_counter() - start) * 1000)
        assert response.status == 200, (response.status, data)
    conn.close()
    return out


async def bench_latency(config: ClientConfig, home: Path, requests: int, blocks: int = 10) -> dict[str, list[float]]:
    result = await push(config, NOOP)
    model_id = result.model.id
    address = await runner_address(home, model_id)
    rest_port = int(config.url.rsplit(":", 1)[1])
    body = httpbody_pb2.HttpBody(content_type="application/json", data=BODY)
    auth = rpc.api_key(config.api_key)
    direct_channel, platform_channel = rpc.channel(address), rpc.channel(config.grpc)
    runner = runner_pb2_grpc.RunnerServiceStub(direct_channel)
    inference = inference_pb2_grpc.InferenceServiceStub(platform_channel)
    direct_request = runner_pb2.RunnerPredictRequest(body=body)
    platform_request = inference_pb2.PredictRequest(model_id=model_id, target="development", body=body)

    async def direct() -> None:
        async for _ in runner.Predict(direct_request):
            pass

    async def platform() -> None:
        async for _ in inference.Predict(platform_request, metadata=auth):
            pass

    samples: dict[str, list[float]] = {"runner direct (gRPC)": [], "platform (gRPC via Envoy)": [],
                                       "platform (REST via Envoy)": []}
    per_block = max(1, requests // blocks)
    await grpc_latencies(direct, 200)  # warm up all three paths
    await grpc_latencies(platform, 200)
    rest_latencies(rest_port, f"/models/{model_id}/development/predict", config.api_key, 200)
    for _ in range(blocks):
        samples["runner direct (gRPC)"] += await grpc_latencies(direct, per_block)
        samples["platform (gRPC via Envoy)"] += await grpc_latencies(platform, per_block)
        samples["platform (REST via Envoy)"] += await asyncio.to_thread(
            rest_latencies, rest_port, f"/models/{model_id}/development/predict", config.api_key, per_block)
    await direct_channel.close()
    await platform_channel.close()
    return samples


async def main_async(args: argparse.Namespace, home: Path, info: dict) -> None:
    config = ClientConfig(url=info["url"], grpc=info["grpc"], api_key=info["api_key"])
    pushes = await bench_pushes(config, args.pushes, home / "bench")
    latency = await bench_latency(config, home, args.requests)
    print(f"\nmachine: {os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| push (no requirements) | n | p50 s | max s |\n|---|---|---|---|")
    for name, values in (("new content: upload → ACTIVE", pushes["fresh"]),
                         ("unchanged content (cached artifact)", pushes["cached"])):
        print(f"| {name} | {len(values)} | {statistics.median(values):.2f} | {max(values):.2f} |")
    base = statistics.median(latency["runner direct (gRPC)"])
    print("\n| no-op predict, concurrency 1 | n | p50 ms | p99 ms | added p50 ms |\n|---|---|---|---|---|")
    for name, values in latency.items():
        p50 = statistics.median(values)
        print(f"| {name} | {len(values)} | {p50:.2f} | {percentile(values, 99):.2f} | {p50 - base:+.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--pushes", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kp-bench-") as tmp:
        home = Path(tmp)
        proc, info = start_up(home)
        try:
            asyncio.run(main_async(args, home, info))
        finally:
            stop_up(proc)


if __name__ == "__main__":
    main()

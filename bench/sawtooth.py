"""Sawtooth load against the autoscaler, on a real `kingpost up` — the autoscaling issue's acceptance 3.

    .venv/bin/python bench/sawtooth.py [--minutes 10] [--period 60] [--max-clients 4]

A published Truss whose predict takes 0.2 s (predict_concurrency 1), with max_replica 4,
concurrency_target 1, target utilization 100 %, a 30-s window and a 120-s scale-down delay. The
number of clients rises by one every period/max-clients seconds from 1 to max-clients, then drops
back to 1: a sawtooth. Every second it records the deployment's active replicas; at the end it
prints each change, the count of requests and of non-2xx answers, and checks what the settings
promise: replicas within [1, 4], and no step down sooner than the scale-down delay after the last
step up. Stops what it started.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import tempfile
import threading
import time
from pathlib import Path

from platform_latency import start_up, stop_up

from kingpost import rpc
from kingpost.client_config import ClientConfig
from kingpost.push import push
from kingpost.v1 import management_pb2, management_pb2_grpc

SLEEPY = Path(__file__).resolve().parent / "trusses" / "sleepy"
WINDOW, DELAY, MAX_REPLICA = 30, 120, 4


class Load:
    def __init__(self, port: int, path: str, key: str) -> None:
        self.port, self.path, self.key = port, path, key
        self.wanted = 1
        self.ok = 0
        self.failed: list[tuple[float, int, bytes]] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def client(self, index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        headers = {"Authorization": f"Api-Key {self.key}", "Content-Type": "application/json"}
        while not self.stop.is_set():
            if index >= self.wanted:
                time.sleep(0.05)
                continue
            conn.request("POST", self.path, body=b'{"sleep": 0.2}', headers=headers)
            response = conn.getresponse()
            body = response.read()
            with self.lock:
                if 200 <= response.status < 300:
                    self.ok += 1
                else:
                    self.failed.append((time.monotonic(), response.status, body[:200]))
        conn.close()


async def main_async(args: argparse.Namespace, info: dict) -> None:
    config = ClientConfig(url=info["url"], grpc=info["grpc"], api_key=info["api_key"])
    auth = rpc.api_key(config.api_key)
    channel = rpc.channel(config.grpc)
    management = management_pb2_grpc.ManagementServiceStub(channel)
    result = await push(config, SLEEPY, publish=True)
    model_id, deployment_id = result.model.id, result.deployment.id
    await rpc.call(management.UpdateAutoscalingSettings, management_pb2.UpdateAutoscalingSettingsRequest(
        model_id=model_id, deployment_id=deployment_id, min_replica=1, max_replica=MAX_REPLICA,
        concurrency_target=1, target_utilization_percentage=100, autoscaling_window=WINDOW,
        scale_down_delay=DELAY), auth=auth)
    load = Load(int(config.url.rsplit(":", 1)[1]), f"/models/{model_id}/deployment/{deployment_id}/predict",
                config.api_key)
    threads = [threading.Thread(target=load.client, args=(i,), daemon=True) for i in range(args.max_clients)]
    for t in threads:
        t.start()
    start = time.monotonic()
    samples: list[tuple[float, int, int]] = []  # (t, clients, replicas)
    step = args.period / args.max_clients
    try:
        while (now := time.monotonic() - start) < args.minutes * 60:
            load.wanted = 1 + int((now % args.period) // step)
            reply = await rpc.call(management.GetDeployment, management_pb2.GetDeploymentRequest(
                model_id=model_id, deployment_id=deployment_id), auth=auth)
            samples.append((now, load.wanted, reply.active_replica_count))
            await asyncio.sleep(1.0)
    finally:
        load.stop.set()
        for t in threads:
            t.join(timeout=30)
        await channel.close()

    changes = [(t, c, prev, r) for (t, c, r), (_, _, prev) in zip(samples[1:], samples) if r != prev]
    print(f"\n{args.minutes} min of sawtooth (1→{args.max_clients} clients every {args.period} s), "
          f"window {WINDOW} s, scale-down delay {DELAY} s, max_replica {MAX_REPLICA}\n")
    print("| t s | clients | replicas |\n|---|---|---|")
    for t, c, prev, r in changes:
        print(f"| {t:.0f} | {c} | {prev} → {r} |")
    last_up = None
    early_downs = []
    for t, _, prev, r in changes:
        if r > prev:
            last_up = t
        elif last_up is not None and t - last_up < DELAY:
            early_downs.append((t, t - last_up))
    in_range = all(1 <= r <= MAX_REPLICA for _, _, r in samples[3:])
    print(f"\nrequests: {load.ok} answered 2xx, {len(load.failed)} not; replica changes: {len(changes)}; "
          f"replicas always within [1, {MAX_REPLICA}]: {in_range}; steps down sooner than the delay after "
          f"a step up: {early_downs or 'none'}")
    for t, status, body in load.failed[:5]:
        print(f"  non-2xx at {t - start:.0f} s: {status} {body!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--period", type=float, default=60)
    parser.add_argument("--max-clients", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kp-sawtooth-") as tmp:
        proc, info = start_up(Path(tmp))
        try:
            asyncio.run(main_async(args, info))
        finally:
            stop_up(proc)


if __name__ == "__main__":
    main()

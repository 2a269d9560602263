"""Ray Serve's scale from zero, the baseline for bench/cold_start.py (run with a Python that has ray[serve]):

    uv venv /tmp/ray && uv pip install --python /tmp/ray/bin/python "ray[serve]"
    /tmp/ray/bin/python bench/ray_cold_start.py [--cold-starts 5]

A no-op deployment with autoscaling min_replicas 0 (upscale_delay_s 0, downscale_delay_s 1): wait until
it has no replica, send one HTTP request through Serve's proxy and time it to its response.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import time

import ray
from ray import serve


@serve.deployment(autoscaling_config={
    "min_replicas": 0, "initial_replicas": 0, "max_replicas": 1, "target_ongoing_requests": 1,
    "upscale_delay_s": 0, "downscale_delay_s": 1, "downscale_to_zero_delay_s": 1,
    "metrics_interval_s": 0.5, "look_back_period_s": 2,
})
class Noop:
    async def __call__(self, request) -> dict:
        return await request.json()


def running(app: str = "default") -> int:
    deployments = serve.status().applications[app].deployments
    return sum(d.replica_states.get("RUNNING", 0) + d.replica_states.get("STARTING", 0)
               for d in deployments.values())


def request(port: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    start = time.perf_counter()
    conn.request("POST", "/", body=b'{"x": 1}', headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    elapsed = time.perf_counter() - start
    conn.close()
    assert response.status == 200, (response.status, data)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold-starts", type=int, default=5)
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": 8765})
    serve.run(Noop.bind(), blocking=False)
    cold = []
    try:
        for _ in range(args.cold_starts):
            deadline = time.time() + 120
            while running() > 0:
                assert time.time() < deadline, "never scaled to zero"
                time.sleep(0.2)
            time.sleep(1.0)
            cold.append(request(8765))
            print(f"ray serve cold start {len(cold)}: {cold[-1]:.2f} s", flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()
    cold.sort()
    print(f"\n| Ray Serve {ray.__version__} cold start from zero | {len(cold)} | p50 {statistics.median(cold):.2f} s | "
          f"max {max(cold):.2f} s | load {os.getloadavg()[0]:.2f} |")


if __name__ == "__main__":
    main()

"""Ray Serve's model composition (`DeploymentHandle`), timed from inside the caller as
bench/chain_hop.py times a Chainlet's call (run with a Python that has ray[serve]).

    python bench/peers/ray_chain.py N

Starts a local Ray (2 CPUs, no dashboard), a `Leaf` deployment and a `Caller` holding a handle to it;
the caller times N `await handle.run_remote.remote(1)` calls after a warm-up and the script prints
them as JSON (ms), then shuts Serve and Ray down.
"""

from __future__ import annotations

import json
import sys
import time

import ray
from ray import serve
from ray.serve.handle import DeploymentHandle


@serve.deployment(num_replicas=1, max_ongoing_requests=32)
class Leaf:
    async def run_remote(self, x: int) -> int:
        return x


@serve.deployment(num_replicas=1, max_ongoing_requests=32)
class Caller:
    def __init__(self, leaf: DeploymentHandle) -> None:
        self._leaf = leaf

    async def measure(self, n: int) -> list[float]:
        for _ in range(50):
            await self._leaf.run_remote.remote(1)
        out = []
        for _ in range(n):
            start = time.perf_counter()
            await self._leaf.run_remote.remote(1)
            out.append((time.perf_counter() - start) * 1000)
        return out


def main() -> None:
    n = int(sys.argv[1])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2**20)
    try:
        serve.start(proxy_location="Disabled")  # no HTTP proxy: the handle is all this needs
        handle = serve.run(Caller.bind(Leaf.bind()), name="chain", route_prefix=None)
        print(json.dumps({"version": ray.__version__, "hop": handle.measure.remote(n).result()}), flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main()

"""What one Chainlet-to-Chainlet hop costs, on a real `kingpost up`, beside Ray Serve's composition.

    .venv/bin/python bench/chain_hop.py [--requests 2000] [--no-ray]

Pushes bench/chains/hop_bench.py (development deployments) and asks its entrypoint, `Caller`, to
time from inside its runner, in interleaved blocks at concurrency 1:
- direct: the same JSON body sent straight to `Leaf`'s runner (RunnerService.Predict) — the baseline;
- chain: `await self._leaf.run_remote(1)`, the stub a Chainlet gets (gRPC → router → runner, the
  router named by the agent's KINGPOST_CHAIN_ROUTER; pydantic validation and JSON on both ends);
- the same stub through Envoy's gRPC port (where a node's agent names no router).
The difference is the hop's added cost. With Ray Serve installed in bench/peers' venv (see
bench/peers/manage.py), `Caller → Leaf` through a `DeploymentHandle` is timed the same way, after
kingpost is stopped (Ray's processes would otherwise share the two cores). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import kingpost  # noqa: F401  (first: the gRPC settings kingpost processes run with)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from platform_latency import percentile, runner_address, start_up, stop_up  # noqa: E402

from kingpost.chain_push import push_chain  # noqa: E402
from kingpost.client_config import ClientConfig  # noqa: E402

HERE = Path(__file__).resolve().parent
CHAIN = HERE / "chains" / "hop_bench.py"


def call_caller(config: ClientConfig, chain_id: str, n: int, address: str, alt: str) -> dict[str, list[float]]:
    import httpx

    r = httpx.post(f"{config.url}/chains/{chain_id}/development/run_remote", timeout=600,
                   headers={"Authorization": f"Api-Key {config.api_key}"},
                   json={"n": n, "runner_address": address, "alt_address": alt})
    if r.status_code != 200:
        raise SystemExit(f"Caller answered {r.status_code}: {r.text}")
    return r.json()


def ray_hops(n: int) -> tuple[str, list[float]] | None:
    sys.path.insert(0, str(HERE))
    from peers.manage import PEERS, PeerUnavailable, default_cache, ensure_python

    try:
        python, version = ensure_python(PEERS["ray"], default_cache())
    except PeerUnavailable as e:
        print(f"(Ray Serve skipped: {e})", file=sys.stderr)
        return None
    done = subprocess.run([str(python), str(HERE / "peers" / "ray_chain.py"), str(n)], capture_output=True,
                          text=True, timeout=600, env=os.environ | {"RAY_USAGE_STATS_ENABLED": "0"})
    line = next((x for x in done.stdout.splitlines() if x.startswith("{")), None)
    if line is None:
        print(f"(Ray Serve failed: {done.stderr[-2000:]})", file=sys.stderr)
        return None
    return version, json.loads(line)["hop"]


def row(name: str, values: list[float], base: float | None) -> str:
    p50, p99 = statistics.median(values), percentile(values, 99)
    added = f"{p50 - base:+.2f}" if base is not None else "-"
    return f"| {name} | {len(values)} | {p50:.2f} | {p99:.2f} | {added} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kp-bench-") as tmp:
        home = Path(tmp)
        proc, info = start_up(home)
        try:
            config = ClientConfig(url=info["url"], grpc=info["grpc"], api_key=info["api_key"])
            pushed = asyncio.run(push_chain(config, CHAIN, publish=False))
            leaf = next(c for c in pushed.deployment.chainlets if c.name == "Leaf")
            address = asyncio.run(runner_address(home, leaf.model_id))
            samples = call_caller(config, pushed.chain.id, args.requests, address, config.grpc)
        finally:
            stop_up(proc)
    ray = None if args.no_ray else ray_hops(args.requests)
    print(f"\nmachine: {os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| one call from a Chainlet, concurrency 1 | n | p50 ms | p99 ms | added p50 ms |\n|---|---|---|---|---|")
    base = statistics.median(samples["direct"])
    print(row("direct to the dependency's runner (baseline)", samples["direct"], None))
    print(row("kingpost Chainlet hop (stub → router → runner)", samples["chain"], base))
    print(row("the same stub through Envoy's gRPC port", samples["alt"], base))
    hop = [c - d for c, d in zip(sorted(samples["chain"]), sorted(samples["direct"]))]
    print(f"\nadded by the hop, quantile by quantile: p50 {statistics.median(hop):.2f} ms, "
          f"p99 {percentile(hop, 99):.2f} ms")
    if ray is not None:
        version, values = ray
        print(row(f"Ray Serve {version} DeploymentHandle hop", values, None))


if __name__ == "__main__":
    main()

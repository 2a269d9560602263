"""A three-Chainlet chain from zero, beside one Chainlet from zero, on a real `kingpost up`.

    .venv/bin/python bench/chain_cold_start.py [--rounds 3]

Pushes bench/chains/three_cold.py (entrypoint → two dependencies, published), sets every Chainlet's
deployment to min_replica 0, a 10-s window and no scale-down delay, then per round: waits until all
three are SCALED_TO_ZERO and times one predict on one dependency's deployment alone (one cold start,
the baseline); waits again and times one run_remote on the chain (the entrypoint's held request wakes
the two dependencies with it: the route table's wake_with). Target: the chain within the single
cold start + 0.5 s. Prints a Markdown table. Stops what it started.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import kingpost  # noqa: F401  (first: the gRPC settings kingpost processes run with)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cold_start import rest_predict  # noqa: E402
from platform_latency import start_up, stop_up  # noqa: E402

from kingpost import deployment_status, rpc  # noqa: E402
from kingpost.chain_push import push_chain  # noqa: E402
from kingpost.client_config import ClientConfig  # noqa: E402
from kingpost.v1 import management_pb2, management_pb2_grpc  # noqa: E402

CHAIN = Path(__file__).resolve().parent / "chains" / "three_cold.py"


async def main_async(args: argparse.Namespace, info: dict) -> None:
    config = ClientConfig(url=info["url"], grpc=info["grpc"], api_key=info["api_key"])
    rest_port = int(config.url.rsplit(":", 1)[1])
    auth = rpc.api_key(config.api_key)
    pushed = await push_chain(config, CHAIN)
    chainlets = list(pushed.deployment.chainlets)
    async with rpc.channel(config.grpc) as channel:
        management = management_pb2_grpc.ManagementServiceStub(channel)
        for c in chainlets:
            await rpc.call(management.UpdateAutoscalingSettings, management_pb2.UpdateAutoscalingSettingsRequest(
                model_id=c.model_id, deployment_id=c.deployment_id, min_replica=0, autoscaling_window=10,
                scale_down_delay=0), auth=auth)

        async def all_at_zero() -> None:
            while True:
                states = [(await rpc.call(management.GetDeployment, management_pb2.GetDeploymentRequest(
                    model_id=c.model_id, deployment_id=c.deployment_id), auth=auth)) for c in chainlets]
                if all(d.status == deployment_status.SCALED_TO_ZERO and d.active_replica_count == 0 for d in states):
                    await asyncio.sleep(1.0)  # let the stopped runners' exits settle
                    return
                await asyncio.sleep(0.3)

        dep = next(c for c in chainlets if c.name == "Left")
        single_path = f"/models/{dep.model_id}/deployment/{dep.deployment_id}/predict"
        chain_path = f"/chains/{pushed.chain.id}/deployment/{pushed.deployment.id}/run_remote"
        single, chain = [], []
        for i in range(args.rounds):
            await all_at_zero()
            single.append(await asyncio.to_thread(rest_predict, rest_port, single_path, config.api_key))
            await all_at_zero()
            chain.append(await asyncio.to_thread(rest_predict, rest_port, chain_path, config.api_key))
            print(f"round {i + 1}: one Chainlet {single[-1]:.2f} s, the chain {chain[-1]:.2f} s", flush=True)
    print(f"\nmachine: {os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| from zero, first answer | n | median s | max s |\n|---|---|---|---|")
    print(f"| one Chainlet (a dependency alone) | {len(single)} | {statistics.median(single):.2f} | {max(single):.2f} |")
    print(f"| the three-Chainlet chain | {len(chain)} | {statistics.median(chain):.2f} | {max(chain):.2f} |")
    print(f"\nchain − one Chainlet, median: {statistics.median(chain) - statistics.median(single):+.2f} s "
          f"(target ≤ +0.5 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--standby", type=int, default=None,
                        help="the agent's standby runners (KINGPOST_STANDBY_RUNNERS; default 1)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kp-bench-") as tmp:
        home = Path(tmp)
        home.chmod(0o711)
        env = {"KINGPOST_STANDBY_RUNNERS": str(args.standby)} if args.standby is not None else {}
        proc, info = start_up(home, env)
        try:
            asyncio.run(main_async(args, info))
        finally:
            stop_up(proc)


if __name__ == "__main__":
    main()

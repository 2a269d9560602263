"""Node loss: `kill -9` a node's agent and runners, and time until its replica is ready elsewhere.

    .venv/bin/python bench/node_loss.py [--rounds 3] [--node-timeout 15]

Starts `kingpost up` (its scheduler's node timeout set by --node-timeout) in a temporary home and
publishes a Truss with no requirements (bench/trusses/noop) at two replicas. Each round: scale it to
one replica, join a fresh agent (`kingpost agent --join`, a home of its own, declared GPUs) as a
second node, scale to two (the new replica goes to the new node: replicas spread), wait until both
are ready, then `kill -9` that agent and its runners and time

- until `kingpost nodes list` shows the node LOST (the node timeout, give or take a heartbeat), and
- until the deployment has two ready replicas again (the lost one replaced on the node left).

The baseline in the same round is one cold start on that same node: scaling from two ready replicas
to three (the deployment's own artifact and environment already there, as for the replacement). The
expectation: loss → ready elsewhere ≤ node timeout + one cold start. Prints a Markdown table; stops
what it started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from platform_latency import NOOP, start_up

from kingpost import rpc
from kingpost.client_config import ClientConfig
from kingpost.push import push
from kingpost.v1 import management_pb2, management_pb2_grpc, nodes_pb2, nodes_pb2_grpc


class Platform:
    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.auth = rpc.api_key(config.api_key)
        self.channel = rpc.channel(config.grpc)
        self.management = management_pb2_grpc.ManagementServiceStub(self.channel)
        self.nodes = nodes_pb2_grpc.NodeServiceStub(self.channel)

    async def ready(self, model_id: str, deployment_id: str) -> int:
        reply = await rpc.call(self.management.GetDeployment, management_pb2.GetDeploymentRequest(
            model_id=model_id, deployment_id=deployment_id), auth=self.auth)
        return reply.deployment.active_replica_count

    async def scale(self, model_id: str, deployment_id: str, count: int) -> None:
        await rpc.call(self.management.UpdateAutoscalingSettings, management_pb2.UpdateAutoscalingSettingsRequest(
            model_id=model_id, deployment_id=deployment_id, min_replica=count, max_replica=count), auth=self.auth)

    async def node_state(self, name: str) -> str:
        reply = await rpc.call(self.nodes.ListNodes, nodes_pb2.ListNodesRequest(), auth=self.auth)
        return next((n.state for n in reply.nodes if n.name == name), "")

    async def replicas_on(self, name: str) -> int:
        reply = await rpc.call(self.nodes.ListNodes, nodes_pb2.ListNodesRequest(), auth=self.auth)
        return next((len(n.replica_ids) for n in reply.nodes if n.name == name), 0)

    async def token(self) -> str:
        reply = await rpc.call(self.nodes.CreateJoinToken, nodes_pb2.CreateJoinTokenRequest(), auth=self.auth)
        return reply.token


async def until(check, what: str, timeout: float = 300.0, every: float = 0.05) -> float:  # type: ignore[no-untyped-def]
    """Seconds until `check()` is true."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if await check():
            return time.perf_counter() - start
        await asyncio.sleep(every)
    raise SystemExit(f"timed out waiting for {what}")


def descendants(root: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[stat.rfind(")") + 2:].split()[1])
    found, frontier = set(), [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                frontier.append(pid)
    return found


async def run(args: argparse.Namespace, work: Path) -> None:
    up, info = start_up(work / "home", {"KINGPOST_NODE_TIMEOUT_SECONDS": str(args.node_timeout)})
    agents: list[subprocess.Popen[bytes]] = []
    try:
        config = ClientConfig(url=info["url"], grpc=info["grpc"], api_key=info["api_key"])
        p = Platform(config)
        result = await push(config, NOOP, model_name="node-loss", publish=True)
        model_id, deployment_id = result.model.id, result.deployment.id
        rows = []
        for i in range(args.rounds):
            name = f"bench-{i}"
            await p.scale(model_id, deployment_id, 1)
            await until(lambda: _eq(p.ready(model_id, deployment_id), 1), "one replica")
            home = work / name
            env = {k: v for k, v in os.environ.items() if not k.startswith("KINGPOST_")} | {"KINGPOST_HOME": str(home)}
            with open(work / f"{name}.log", "wb") as log:
                agent = subprocess.Popen(
                    [sys.executable, "-m", "kingpost.cli", "agent", "--join", info["grpc"], "--token",
                     await p.token(), "--name", name, "--home", str(home), "--gpus", "T4:1"],
                    stdout=log, stderr=subprocess.STDOUT, env=env, process_group=0)
            agents.append(agent)
            await until(lambda: _eq(p.node_state(name), "READY"), f"{name} to join")
            await p.scale(model_id, deployment_id, 2)
            await until(lambda: _both(p, model_id, deployment_id, name), "a ready replica on the new node")
            # Baseline: one cold start on the node that will be left (the artifact already there).
            await p.scale(model_id, deployment_id, 3)
            cold = await until(lambda: _eq(p.ready(model_id, deployment_id), 3), "a third replica")
            await p.scale(model_id, deployment_id, 2)
            await until(lambda: _eq(p.ready(model_id, deployment_id), 2), "back to two")
            await until(lambda: _eq(p.replicas_on(name), 1), "one replica on the new node")
            # The machine is gone: the agent's process group and every runner it started.
            pids = descendants(agent.pid) | {agent.pid}
            killed_at = time.perf_counter()
            os.killpg(agent.pid, signal.SIGKILL)
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            agent.wait()
            lost = await until(lambda: _eq(p.node_state(name), "LOST"), f"{name} to be LOST")
            # Ready again: two replicas ready, none of them on the lost node.
            await until(lambda: _recovered(p, model_id, deployment_id, name), "two ready replicas again")
            recovered = time.perf_counter() - killed_at
            rows.append((lost, recovered, cold))
            print(f"round {i + 1}: LOST after {lost:.2f} s, ready elsewhere after {recovered:.2f} s; "
                  f"a cold start {cold:.2f} s", flush=True)
        print()
        print(f"Node timeout {args.node_timeout:g} s, {args.rounds} rounds (median, min–max):")
        print()
        print("| what | seconds |")
        print("|---|---|")
        for label, column in (("kill -9 → node LOST", 0), ("kill -9 → replica ready elsewhere", 1),
                              ("baseline: one cold start on the node left", 2)):
            values = [r[column] for r in rows]
            print(f"| {label} | {statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f}) |")
        bound = [args.node_timeout + r[2] for r in rows]
        print(f"| bound: node timeout + cold start | {statistics.median(bound):.2f} |")
        print(json.dumps({"rows": rows}))
    finally:
        for agent in agents:
            if agent.poll() is None:
                agent.send_signal(signal.SIGTERM)
                agent.wait(timeout=60)
        up.send_signal(signal.SIGINT)
        up.wait(timeout=120)


async def _eq(value, want) -> bool:  # type: ignore[no-untyped-def]
    return await value == want


async def _both(p: Platform, model_id: str, deployment_id: str, name: str) -> bool:
    return await p.ready(model_id, deployment_id) == 2 and await p.replicas_on(name) == 1


async def _recovered(p: Platform, model_id: str, deployment_id: str, name: str) -> bool:
    return await p.ready(model_id, deployment_id) == 2 and await p.node_state(name) == "LOST" \
        and await p.replicas_on(name) == 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--node-timeout", type=float, default=15.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kp-node-loss-") as work:
        asyncio.run(run(args, Path(work)))


if __name__ == "__main__":
    main()

"""The scheduler under 1,000 heartbeating nodes: its CPU, and how often it reconciles and rebuilds routes.

What runs, per (checkout, database), as a cluster would run it:

    nats-server (JetStream)                          this process
    `kingpost scheduler --config FILE` ◀── gRPC ──  a BuildService and an AgentService that answer for
        (the checkout's own .venv)                    every simulated node (all at one address), and
                 ▲                                    N nodes publishing NodeHeartbeat every --interval,
                 └──────────── NATS ───────────────  spread evenly, listing the replicas each runs

Set-up: every node heartbeats until the scheduler lists them all; then --deployments published
deployments, each pinned to --replicas replicas (min_replica = max_replica); the simulated agent
learns where each replica went from GetStatus, lists it in that node's heartbeats and reports it
READY. Once all are ACTIVE (or the set-up timed out, which the table says) and --warmup has passed,
the scheduler's CPU time is read from /proc/<pid>/stat over --seconds, with its /metrics before and
after: heartbeats handled, reconcile passes, route-table versions (and rebuilds, where the checkout
counts them), and the StartReplica calls the simulated agent saw (replicas replaced: 0 when nothing
went wrong). Nothing changes during the window, so every reconcile pass, rebuild and version in it
is one that a heartbeat caused.

    .venv/bin/python bench/scheduler_heartbeats.py [--baseline DIR] [--databases sqlite postgresql]
        [--nodes 1000] [--interval 2] [--seconds 60] [--deployments 20] [--replicas 2]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

--baseline DIR: another checkout with its own .venv (e.g. `git worktree add /tmp/kp-main main &&
make -C /tmp/kp-main install`), measured in the same run, alternating with this one per database.
PostgreSQL: a server where the DSN may CREATE DATABASE (a fresh one per run, dropped after).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kingpost  # noqa: F401  (first: the gRPC settings kingpost processes run with)
import asyncpg
import grpc
import httpx
from prometheus_client.parser import text_string_to_metric_families

from kingpost import rpc
from kingpost.auth import new_key
from kingpost.bus.nats_bus import NatsBus
from kingpost.bus.subjects import node_subject, replica_subject
from kingpost.flat_toml import to_toml
from kingpost.v1 import (
    agent_pb2,
    agent_pb2_grpc,
    builder_pb2,
    builder_pb2_grpc,
    events_pb2,
    management_pb2,
    management_pb2_grpc,
)

HERE = Path(__file__).resolve().parent.parent
DIGEST = "sha256:" + "ab" * 32
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the simulated builder and nodes ------------------------------------------------------------


class Cluster(builder_pb2_grpc.BuildServiceServicer, agent_pb2_grpc.AgentServiceServicer):
    """Answers GetBuild (every build SUCCEEDED) and Start/StopReplica for all simulated nodes."""

    def __init__(self, nodes: int) -> None:
        self.node_ids = [f"node-{i:04d}" for i in range(nodes)]
        self.running: dict[str, set[str]] = {n: set() for n in self.node_ids}
        self.unplaced: set[str] = set()
        self.stopped: set[str] = set()
        self.starts = 0
        self.address = ""

    async def GetBuild(self, request: builder_pb2.GetBuildRequest, context: Any) -> Any:
        return builder_pb2.GetBuildResponse(build=builder_pb2.Build(
            build_id=request.build_id, state=events_pb2.BUILD_STATE_SUCCEEDED, artifact_digest=DIGEST,
            truss=builder_pb2.TrussSummary(model_name="bench", predict_concurrency=1)))

    async def StartReplica(self, request: agent_pb2.StartReplicaRequest, context: Any) -> Any:
        if request.replica_id not in self.stopped and not any(
                request.replica_id in r for r in self.running.values()):
            self.starts += 1
            self.unplaced.add(request.replica_id)
        return agent_pb2.StartReplicaResponse()

    async def StopReplica(self, request: agent_pb2.StopReplicaRequest, context: Any) -> Any:
        self.stopped.add(request.replica_id)
        self.unplaced.discard(request.replica_id)
        for replicas in self.running.values():
            replicas.discard(request.replica_id)
        return agent_pb2.StopReplicaResponse()

    def heartbeat(self, node_id: str) -> events_pb2.NodeHeartbeat:
        return events_pb2.NodeHeartbeat(node_id=node_id, address=self.address, cpu_count=16,
                                        memory_bytes=64 << 30, replica_ids=sorted(self.running[node_id]))


async def heartbeats(cluster: Cluster, bus: NatsBus, interval: float, sent: list[int]) -> None:
    """Each node every `interval`, spread evenly over it (as independent agents would be)."""
    gap = interval / len(cluster.node_ids)
    start, k = time.monotonic(), 0
    while True:
        for node_id in cluster.node_ids:
            delay = start + k * gap - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            k += 1
            await bus.publish_fast(node_subject(node_id), cluster.heartbeat(node_id))
            sent[0] += 1


async def place_replicas(cluster: Cluster, bus: NatsBus, management: Any, auth: rpc.Metadata) -> None:
    """Learn from GetStatus which node each started replica is on; list it there and report it READY."""
    while True:
        await asyncio.sleep(0.2)
        if not cluster.unplaced:
            continue
        status = await rpc.call(management.GetStatus, management_pb2.GetStatusRequest(), auth=auth, timeout=30)
        for node in status.nodes:
            for replica_id in node.replica_ids:
                if replica_id in cluster.unplaced and node.node_id in cluster.running:
                    cluster.unplaced.discard(replica_id)
                    cluster.running[node.node_id].add(replica_id)
                    await bus.publish(replica_subject(replica_id), events_pb2.ReplicaEvent(
                        replica_id=replica_id, node_id=node.node_id, state=events_pb2.REPLICA_STATE_READY,
                        address="127.0.0.1:1"))


# --- one measured run -------------------------------------------------------------------------


@dataclass
class Result:
    checkout: str
    database: str
    setup: str = ""
    cpu_percent: float = float("nan")
    seconds: float = 0.0
    heartbeats_sent: int = 0
    counters: dict[str, float] = field(default_factory=dict)
    replicas_started: int = 0


COUNTERS = {
    "heartbeats handled": ("kingpost_scheduler_events_total", {"kind": "heartbeat", "outcome": "ok"}),
    "reconcile passes": ("kingpost_scheduler_reconcile_seconds_count", {}),
    "route-table versions": ("kingpost_scheduler_route_table_version", {}),
    "route-table builds": ("kingpost_scheduler_route_table_builds_total", {}),
}


async def scrape(port: int) -> dict[str, float]:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics", timeout=30)).text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    out = {}
    for what, (name, labels) in COUNTERS.items():
        value = samples.get((name, tuple(sorted(labels.items()))))
        if value is not None:
            out[what] = value
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (every thread)


async def until(check: Callable[[], Awaitable[bool]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.5)
    return False


def start_nats(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = Path(sys.executable).parent / "nats-server"
    port = free_port()
    proc = subprocess.Popen([str(binary), "-js", "-sd", str(directory / "js"), "-a", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, f"nats://127.0.0.1:{port}"


def stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def run_one(checkout: Path, label: str, database: str, args: argparse.Namespace) -> Result:
    result = Result(label, database)
    home = Path(tempfile.mkdtemp(prefix="kp-bench-sched-"))
    nats, nats_url = start_nats(home)
    cluster = Cluster(args.nodes)
    server = grpc.aio.server(options=rpc.server_options())
    builder_pb2_grpc.add_BuildServiceServicer_to_server(cluster, server)
    agent_pb2_grpc.add_AgentServiceServicer_to_server(cluster, server)
    cluster.address = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    await server.start()
    pg_database = ""
    if database == "postgresql":
        pg_database = f"kp_bench_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(args.postgres)
        await conn.execute(f'CREATE DATABASE "{pg_database}"')
        await conn.close()
    admin_key = new_key()
    grpc_port, metrics_port = free_port(), free_port()
    config = {
        "home": str(home), "nats_url": nats_url, "grpc_port": grpc_port, "metrics_port": metrics_port,
        "builder_address": cluster.address, "admin_key": admin_key,
        "database_url": ("postgresql+asyncpg://" + args.postgres.split("://", 1)[1].rsplit("/", 1)[0]
                         + f"/{pg_database}") if pg_database else "",
    }
    (home / "scheduler.toml").write_text(to_toml(config) + "\n")
    log = open(home / "scheduler.log", "wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINGPOST_")}
    proc = subprocess.Popen([str(checkout / ".venv" / "bin" / "kingpost"), "scheduler", "--config",
                             str(home / "scheduler.toml")], stdout=log, stderr=subprocess.STDOUT, env=env,
                            cwd=checkout)
    tasks: list[asyncio.Task[None]] = []
    bus: NatsBus | None = None
    channel = rpc.channel(f"127.0.0.1:{grpc_port}")
    try:
        management = management_pb2_grpc.ManagementServiceStub(channel)
        auth = rpc.api_key(admin_key)
        await management.ListModels(management_pb2.ListModelsRequest(), metadata=auth, timeout=60,
                                    wait_for_ready=True)
        bus = await NatsBus.connect(nats_url, "bench-nodes")
        sent = [0]
        tasks.append(asyncio.create_task(heartbeats(cluster, bus, args.interval, sent)))
        tasks.append(asyncio.create_task(place_replicas(cluster, bus, management, auth)))

        async def status() -> management_pb2.GetStatusResponse:
            return await rpc.call(management.GetStatus, management_pb2.GetStatusRequest(), auth=auth, timeout=60)

        async def all_nodes() -> bool:
            return len((await status()).nodes) == args.nodes

        started = time.monotonic()
        nodes_ok = await until(all_nodes, args.setup_timeout)
        nodes_seconds = time.monotonic() - started
        for i in range(args.deployments):
            created = await rpc.call(management.CreateDeployment, management_pb2.CreateDeploymentRequest(
                model_name=f"bench-{i}", build_id=f"bld_bench_{i}", publish=True), auth=auth, timeout=60)
            await rpc.call(management.UpdateAutoscalingSettings, management_pb2.UpdateAutoscalingSettingsRequest(
                model_id=created.model.id, deployment_id=created.deployment.id, min_replica=args.replicas,
                max_replica=args.replicas), auth=auth, timeout=60)

        async def all_active() -> bool:
            return (await status()).active_deployments == args.deployments

        active_ok = await until(all_active, args.setup_timeout)
        final = await status()
        result.setup = (f"{len(final.nodes)}/{args.nodes} nodes in {nodes_seconds:.0f} s, "
                        f"{final.active_deployments}/{args.deployments} deployments ACTIVE"
                        + ("" if nodes_ok and active_ok else " (set-up timed out)"))
        await asyncio.sleep(args.warmup)

        before, cpu0, starts0, sent0, t0 = await scrape(metrics_port), cpu_seconds(proc.pid), cluster.starts, \
            sent[0], time.monotonic()
        await asyncio.sleep(args.seconds)
        after, cpu1, starts1, sent1, t1 = await scrape(metrics_port), cpu_seconds(proc.pid), cluster.starts, \
            sent[0], time.monotonic()
        result.seconds = t1 - t0
        result.cpu_percent = 100 * (cpu1 - cpu0) / (t1 - t0)
        result.heartbeats_sent = sent1 - sent0
        result.counters = {k: after[k] - before.get(k, 0) for k in after}
        result.replicas_started = starts1 - starts0
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if bus is not None:
            await bus.close()
        await channel.close()
        stop(proc)
        log.close()
        await server.stop(None)
        stop(nats)
        if pg_database:
            conn = await asyncpg.connect(args.postgres)
            await conn.execute(f'DROP DATABASE IF EXISTS "{pg_database}" WITH (FORCE)')
            await conn.close()
        if proc.returncode not in (0, -signal.SIGTERM):
            print(f"{label} {database}: the scheduler exited with {proc.returncode}; its log:\n"
                  + (home / "scheduler.log").read_text(errors="replace")[-3000:], file=sys.stderr)
        shutil.rmtree(home, ignore_errors=True)
    return result


def commit_of(checkout: Path) -> str:
    out = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, check=False)
    return out.stdout.strip() or "?"


def report(results: list[Result], args: argparse.Namespace) -> None:
    print(f"\n{args.nodes} nodes, a heartbeat each every {args.interval:g} s; {args.deployments} deployments "
          f"x {args.replicas} replicas; measured over {args.seconds:g} s after {args.warmup:g} s of warm-up")
    for r in results:
        print(f"  set-up {r.checkout}, {r.database}: {r.setup}")
    header = ("checkout", "database", "CPU % of one core", "heartbeats sent/s", "handled/s", "reconcile passes",
              "route-table versions", "route-table builds", "replicas started")
    rows = [header]
    for r in results:
        def count(what: str, r: Result = r) -> str:
            return f"{r.counters[what]:.0f}" if what in r.counters else "n/a"

        handled = r.counters.get("heartbeats handled")
        rows.append((r.checkout, r.database, f"{r.cpu_percent:.1f}", f"{r.heartbeats_sent / r.seconds:.0f}",
                     f"{handled / r.seconds:.0f}" if handled is not None else "n/a", count("reconcile passes"),
                     count("route-table versions"), count("route-table builds"), str(r.replicas_started)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")


async def main(args: argparse.Namespace) -> None:
    checkouts = [(HERE, f"this ({commit_of(HERE)})")]
    if args.baseline:
        checkouts.insert(0, (args.baseline, f"baseline ({commit_of(args.baseline)})"))
    results = []
    for database in args.databases:
        for checkout, label in checkouts:
            print(f"measuring {label} on {database} ...", flush=True)
            results.append(await run_one(checkout, label, database, args))
    report(results, args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=lambda p: Path(p).resolve(), default=None)
    parser.add_argument("--databases", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--deployments", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--setup-timeout", type=float, default=180.0)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    asyncio.run(main(parser.parse_args()))

"""Issue 20's figures: kingpost's data path beside its limits and its peers, in one run on one machine.

    .venv/bin/python bench/data_path.py [--seconds 5] [--rounds 2] [--concurrency 1 32]
                                        [--peers ray-optimized ray bentoml]

Every path serves the same no-op model (bench/trusses/noop: echo the JSON body) to `wrk` POSTing a
small JSON body with an API key; each round runs every (path, concurrency) cell once, interleaved,
and the best round of each cell is kept:

    kingpost, direct   wrk → Envoy (key checked in Envoy) → the runner's HTTP data plane
                       (`kingpost up` with KINGPOST_DATA_PATH=envoy: the router is the control plane)
    kingpost, router   wrk → Envoy → router → runner over gRPC (`kingpost up` with the router's data path)
    envoy → runner     wrk → a plain Envoy (one route, one cluster, no filter) → the direct platform's
                       runner: what Envoy itself costs
    runner bare        wrk → that runner's HTTP data plane: the limit
    peers              from bench/peers (Ray Serve's throughput-optimized mode is `ray-optimized`:
                       HAProxy straight to the replica; `haproxy` must be on PATH)

CPU per request counts every process of the path: a `kingpost up`'s whole tree (its idle services
too), the plain Envoy plus the runner, the runner alone, a peer's tree. Needs wrk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import tomllib
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from async_queue import publish  # noqa: E402
from peers.manage import PEERS, PeerServer, PeerUnavailable, _procs, default_cache, ensure_python, tree  # noqa: E402
from platform_latency import free_port, start_up, stop_up  # noqa: E402
from router_throughput import BODY, PATH, run_wrk, wait_ok  # noqa: E402
from runner_protocols import start_plain_envoy  # noqa: E402

from kingpost import rpc  # noqa: E402
from kingpost.v1 import scheduler_pb2, scheduler_pb2_grpc  # noqa: E402



def tree_cpu(*roots: int):
    """pid → CPU seconds of the roots and everything under them."""
    def cpu() -> dict[int, float]:
        table = _procs()
        pids = set().union(*(tree(root, table) for root in roots))
        return {pid: table[pid][2] for pid in pids}
    return cpu


async def http_address(home: Path, deployment_id: str) -> str:
    """The runner's HTTP data plane of the deployment's first ready replica, from the route table."""
    scheduler_port = tomllib.loads((home / "run" / "scheduler.toml").read_text())["grpc_port"]
    async with rpc.channel(f"127.0.0.1:{scheduler_port}") as channel:
        stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
        async for reply in stub.WatchRoutes(scheduler_pb2.WatchRoutesRequest(watcher="bench")):
            for model in reply.table.models:
                for deployment in model.deployments:
                    if deployment.deployment_id == deployment_id and deployment.replicas:
                        if deployment.replicas[0].http_address:
                            return deployment.replicas[0].http_address
    raise SystemExit(f"deployment {deployment_id} has no replica with an HTTP data plane")


def script(work: Path, key: str, name: str) -> Path:
    path = work / f"post-{name}.lua"
    path.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(BODY)}\n'
                    f'wrk.headers["Content-Type"] = "application/json"\n'
                    f'wrk.headers["Authorization"] = "Api-Key {key}"\n')
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--peers", nargs="*", default=[], choices=sorted(PEERS))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install -y wrk)")
    pythons = {}
    for name in dict.fromkeys(args.peers):
        try:
            pythons[name] = ensure_python(PEERS[name], default_cache())
        except PeerUnavailable as e:
            print(f"skipping peer {name}: {e}", file=sys.stderr)

    ups, envoys, peers = [], [], []
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    started = datetime.now(timezone.utc)
    load_before = os.getloadavg()[0]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            paths = {}  # name → (port, path, cpu counter, wrk script)
            for name, data_path in (("kingpost, direct", "envoy"), ("kingpost, router", "router")):
                home = work / data_path
                proc, info = start_up(home, {"KINGPOST_DATA_PATH": data_path})
                ups.append(proc)
                model_id, deployment_id = publish(home, info)
                port = int(info["url"].rsplit(":", 1)[1])
                lua = script(work, info["api_key"], data_path)
                paths[name] = (port, f"/models/{model_id}/production/predict", tree_cpu(proc.pid), lua)
                if data_path == "envoy":
                    runner = asyncio.run(http_address(home, deployment_id))
                    runner_port = int(runner.rsplit(":", 1)[1])
                    runner_pid = next(pid for pid, _ in _listeners(runner_port))
                    envoy, envoy_port = start_plain_envoy(work, "plain", runner_port, "h1")
                    envoys.append(envoy)
                    paths["envoy → runner"] = (envoy_port, PATH, tree_cpu(envoy.pid, runner_pid), lua)
                    paths["runner bare"] = (runner_port, "/predict", tree_cpu(runner_pid), lua)
            for name, (python, _) in pythons.items():
                server = PeerServer(PEERS[name], python, free_port(), work / f"{name}.log")
                peers.append(server)
                try:
                    wait_ok(server.port, timeout=300, alive=server.alive)
                except RuntimeError:
                    print(f"skipping peer {name}: it did not answer", file=sys.stderr)
                    continue
                paths[PEERS[name].label] = (server.port, PATH, server.cpu_counter(), script(work, "none", name))
            for port, path, cpu, lua in paths.values():
                run_wrk(port, 8, 1.0, lua, cpu, path=path)  # warm-up
            for _ in range(args.rounds):
                for c in args.concurrency:
                    for name, (port, path, cpu, lua) in paths.items():
                        results.setdefault((name, c), []).append(run_wrk(port, c, args.seconds, lua, cpu, path=path))
    finally:
        for server in peers:
            for line in server.stop():
                print(f"peer {server.peer.name}: left running: {line}", file=sys.stderr)
        for envoy in envoys:
            envoy.terminate()
            envoy.wait(10)
        for proc in ups:
            stop_up(proc)

    print(f"data path, wrk {args.seconds:g} s x {args.rounds} rounds (best kept), no-op model, "
          f"{os.cpu_count()} CPUs, {started:%Y-%m-%d %H:%M} UTC, load average {load_before:.1f} → "
          f"{os.getloadavg()[0]:.1f}")
    for name, (_, version) in pythons.items():
        print(f"{PEERS[name].label}: {PEERS[name].module} {version}, {PEERS[name].describe}")
    print("| path | concurrency | req/s | p50 ms | p99 ms | non-2xx | CPU µs/req |")
    print("|---|---|---|---|---|---|---|")
    for c in args.concurrency:
        for (name, cc), runs in results.items():
            if cc != c:
                continue
            best = max(runs, key=lambda r: r["rps"])
            print(f"| {name} | {c} | {best['rps']:,.0f} | {best['p50']:.2f} | {best['p99']:.2f} | "
                  f"{best['errors']:.0f} | {best['cpu_us']:.0f} |")


def _listeners(port: int) -> list[tuple[int, str]]:
    """(pid, command) of the processes listening on a local TCP port (Linux /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            for fd in os.scandir(f"/proc/{entry.name}/fd"):
                target = os.readlink(fd.path)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    found.append((int(entry.name), Path(f"/proc/{entry.name}/cmdline").read_text()))
                    break
        except OSError:
            continue
    if not found:
        raise SystemExit(f"nothing listens on :{port}")
    return found


if __name__ == "__main__":
    main()

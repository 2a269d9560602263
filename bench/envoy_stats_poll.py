"""What reading Envoy's stats once a second costs (kingpost_router/envoy_poll.py), with N deployments'
clusters in Envoy.

    .venv/bin/python bench/envoy_stats_poll.py [--clusters 200] [--reads 200]

Starts a real Envoy (kingpost's bootstrap with a listener to N clusters named like deployment ids,
tests/fixtures/envoy_direct.py) in front of one stand-in model server, sends one request to each
cluster (so each one's stats are in use: a status code, the latency histogram, the gauges), and
gives the poller a route table naming all N. Then, in this process, one after another:
- `reads` reads parsed anew each time (the text changes whenever any deployment had traffic);
- `reads` reads of unchanged text (an idle platform: fetched, compared, not parsed);
- `reads` scrapes of the router's request metrics with Envoy's N deployments added in.
CPU seconds of this process (time.process_time) and of Envoy (/proc/<pid>/stat) per read; at one
read a second, a read's CPU milliseconds are the per-mille of a core it takes. Prints Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
from prometheus_client import CollectorRegistry, generate_latest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kingpost.v1 import scheduler_pb2 as s  # noqa: E402
from kingpost_router.envoy_poll import EnvoyPoller  # noqa: E402
from kingpost_router.metrics import RequestStats  # noqa: E402
from kingpost_router.routes import RouteSnapshot  # noqa: E402
from tests.fixtures.envoy_direct import ModelServer, direct_bootstrap  # noqa: E402
from tests.fixtures.servers import free_port, running_envoy  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def snapshot(ids: list[str]) -> RouteSnapshot:
    return RouteSnapshot.from_table(s.RouteTable(version=1, models=[s.ModelRoute(
        model_id=f"mdl_{i:04d}", name=f"model-{i}", development_deployment_id=did,
        deployments=[s.DeploymentRoute(deployment_id=did, active=True, status=s.DEPLOYMENT_STATUS_ACTIVE)])
        for i, did in enumerate(ids)]))


async def measure(clusters: int, reads: int) -> None:
    ids = [f"dep_bench{i:05d}" for i in range(clusters)]
    model = ModelServer()
    model_port, admin_port, port = free_port(), free_port(), free_port()
    await model.start(model_port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "envoy.json"
            config.write_text(json.dumps(direct_bootstrap(admin_port=admin_port, listen_port=port, rest_port=free_port(),
                                                          upstreams={did: model_port for did in ids})))
            with running_envoy(config, admin_port, timeout=60) as envoy:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                    for did in ids:
                        assert (await http.post(f"/d/{did}/ok", content=b"{}")).status_code == 200
                table = snapshot(ids)
                poller = EnvoyPoller(f"127.0.0.1:{admin_port}", lambda: table)
                stats = RequestStats()
                poller.serve_metrics(stats, lambda: 0)
                registry = CollectorRegistry()
                registry.register(stats)
                rows = []
                async with aiohttp.ClientSession() as session:
                    assert await poller.read(session)
                    await poller.read(session)  # the histograms, merged by the first read
                    size = len(poller._text or "")
                    for name, changed in (("read, parsed (text changed)", True), ("read, unchanged (idle)", False)):
                        ours, theirs, wall = time.process_time(), cpu_seconds(envoy.pid), time.perf_counter()
                        for _ in range(reads):
                            if changed:
                                poller._text = None
                            assert await poller.read(session)
                        rows.append((name, (time.process_time() - ours) / reads, (cpu_seconds(envoy.pid) - theirs) / reads,
                                     (time.perf_counter() - wall) / reads))
                ours, wall = time.process_time(), time.perf_counter()
                for _ in range(reads):
                    text = generate_latest(registry)
                rows.append(("the router's /metrics scrape, Envoy's part", (time.process_time() - ours) / reads, 0.0,
                             (time.perf_counter() - wall) / reads))
                assert text.count(b'kingpost_router_requests_total{') >= clusters
    finally:
        await model.stop()
    print(f"{clusters} deployment clusters in Envoy; {size:,} bytes a read (the filtered, used-only stats)\n")
    print("| per read | router CPU ms | Envoy CPU ms | wall ms |")
    print("|---|---|---|---|")
    for name, ours, theirs, wall in rows:
        print(f"| {name} | {ours * 1000:.2f} | {theirs * 1000:.2f} | {wall * 1000:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=200)
    parser.add_argument("--reads", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(measure(args.clusters, args.reads))


if __name__ == "__main__":
    main()

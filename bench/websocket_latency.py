"""What `{prefix}/websocket` adds to a message's round trip, measured on a real `kingpost up`.

    .venv/bin/python bench/websocket_latency.py [--messages 2000] [--blocks 5]

Starts `kingpost up` in a temporary home, pushes tests/trusses/custom_server (a standard-library
server that echoes WebSocket messages at its predict_endpoint, `docker_server`) and
tests/trusses/websocket (a Truss whose `websocket(ws)` echoes), opens one connection per path with
aiohttp's client and, in interleaved blocks, times a small text message's round trip (send, then the
echo received):
- the custom server directly, on its own port (the baseline);
- the same server through Envoy → router → runner (`/models/{id}/development/websocket`);
- the Truss model through Envoy → router → runner.
Also times opening a connection (the upgrade, key check, slot and runner stream) on each path.
Prints a Markdown table. Stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from platform_latency import percentile, start_up, stop_up  # noqa: E402

from kingpost.client_config import ClientConfig  # noqa: E402
from kingpost.push import push  # noqa: E402

TRUSSES = Path(__file__).resolve().parents[1] / "tests" / "trusses"


def server_port(home: Path) -> int:
    """The port the custom server was given (its runner says so in the replica's log)."""
    for log in home.rglob("rep_*.log"):
        if found := re.search(r"server_port 8011 is port (\d+)", log.read_text(errors="replace")):
            return int(found.group(1))
    return 8011


async def round_trips(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[float]:
    times = []
    for i in range(n):
        started = time.perf_counter()
        await ws.send_str(f"m{i}")
        assert await ws.receive_str() == f"m{i}"
        times.append(time.perf_counter() - started)
    return times


async def opens(session: aiohttp.ClientSession, url: str, headers: dict[str, str], n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        ws = await session.ws_connect(url, headers=headers)
        times.append(time.perf_counter() - started)
        await ws.close()
    return times


async def measure(info: dict, custom_id: str, truss_id: str, port: int, args: argparse.Namespace
                  ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    auth = {"Authorization": f"Api-Key {info['api_key']}"}
    paths = {
        "custom server directly": (f"http://127.0.0.1:{port}/predict", {}),
        "custom server through kingpost (Envoy → router → runner → server)": (
            f"{info['url']}/models/{custom_id}/development/websocket", auth),
        "Truss `websocket` through kingpost (Envoy → router → runner)": (
            f"{info['url']}/models/{truss_id}/development/websocket", auth),
    }
    trips: dict[str, list[float]] = {name: [] for name in paths}
    opened: dict[str, list[float]] = {name: [] for name in paths}
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 60
        for url, headers in paths.values():  # the route table reaches the router just after ACTIVE
            while True:
                try:
                    await (await session.ws_connect(url, headers=headers)).close()
                    break
                except aiohttp.ClientError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
        conns = {name: await session.ws_connect(url, headers=headers) for name, (url, headers) in paths.items()}
        for ws in conns.values():
            await round_trips(ws, 100)  # warm-up
        for _ in range(args.blocks):
            for name, ws in conns.items():
                trips[name] += await round_trips(ws, args.messages // args.blocks)
        for ws in conns.values():
            await ws.close()
        for _ in range(args.blocks):
            for name, (url, headers) in paths.items():
                opened[name] += await opens(session, url, headers, args.opens // args.blocks)
    return trips, opened


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="round trips per path")
    parser.add_argument("--opens", type=int, default=200, help="connections opened per path")
    parser.add_argument("--blocks", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="kp-bench-ws-"))
    proc, info = start_up(home)
    try:
        config = ClientConfig(url=info["url"], grpc=info["grpc"], api_key=info["api_key"])
        custom_id = asyncio.run(push(config, TRUSSES / "custom_server")).model.id
        truss_id = asyncio.run(push(config, TRUSSES / "websocket")).model.id
        trips, opened = asyncio.run(measure(info, custom_id, truss_id, server_port(home), args))
        print("| path (c=1) | round trips | p50 ms | p99 ms | opens | open p50 ms | open p99 ms |")
        print("|---|---|---|---|---|---|---|")
        for name in trips:
            t, o = trips[name], opened[name]
            print(f"| {name} | {len(t)} | {statistics.median(t) * 1e3:.2f} | {percentile(t, 99) * 1e3:.2f} "
                  f"| {len(o)} | {statistics.median(o) * 1e3:.2f} | {percentile(o, 99) * 1e3:.2f} |")
        print(f"\nmachine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        base, through = list(trips)[:2]
        print(f"\nadded p50 (custom server): round trip "
              f"{(statistics.median(trips[through]) - statistics.median(trips[base])) * 1e3:+.2f} ms, "
              f"open {(statistics.median(opened[through]) - statistics.median(opened[base])) * 1e3:+.2f} ms")
    finally:
        stop_up(proc)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()

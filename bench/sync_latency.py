"""What `/sync/{path}` adds over calling a custom server directly, measured on a real `kingpost up`.

    .venv/bin/python bench/sync_latency.py [--requests 1000] [--blocks 5]

Starts `kingpost up` in a temporary home, pushes examples/openai-server (a plain-asyncio
OpenAI-compatible server, `docker_server`), then, at concurrency 1, in interleaved blocks, with one
keep-alive http.client connection per path:
- no-op: `GET /health`, straight to the server's port (the baseline) and through
  Envoy → router → runner → server (`/models/{id}/development/sync/health`);
- for comparison, a no-op Truss's `POST {prefix}/predict` through kingpost (bench/trusses/noop:
  Envoy → router → runner, the hops a Truss model's request pays);
- time to first token: a streamed chat completion (`"stream": true`), time from sending the request
  to the first `data:` line of the body, direct and through kingpost.
Prints a Markdown table. Stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from platform_latency import percentile, start_up, stop_up  # noqa: E402

from kingpost.client_config import ClientConfig  # noqa: E402
from kingpost.push import push  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "openai-server"
NOOP = Path(__file__).resolve().parent / "trusses" / "noop"


def server_port(home: Path) -> int:
    """The port the example's server was given (its runner says so in the replica's log)."""
    for log in home.rglob("rep_*.log"):
        if found := re.search(r"server_port 8000 is port (\d+)", log.read_text(errors="replace")):
            return int(found.group(1))
    return 8000
CHAT = json.dumps({"model": "echo", "stream": True, "messages": [{"role": "user", "content": "a b c"}]}).encode()


def noop(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read()
    assert response.status == 200, response.status
    return time.perf_counter() - started


def predict(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    conn.request("POST", path, body=b'{"x": 1}', headers={**headers, "content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    assert response.status == 200, response.status
    return time.perf_counter() - started


def first_token(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    conn.request("POST", path, body=CHAT, headers={**headers, "content-type": "application/json"})
    response = conn.getresponse()
    assert response.status == 200, response.status
    while not response.readline().startswith(b"data:"):
        pass
    elapsed = time.perf_counter() - started
    response.read()  # the rest of the stream, so that the connection can be used again
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="no-op requests per path")
    parser.add_argument("--streams", type=int, default=100, help="streamed completions per path")
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--data-path", choices=("router", "envoy"), default="router",
                        help="kingpost up's KINGPOST_DATA_PATH (envoy: Envoy straight to the runner)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="kp-bench-sync-"))
    proc, info = start_up(home, {"KINGPOST_DATA_PATH": args.data_path})
    hops = "Envoy → router → runner" if args.data_path == "router" else "Envoy → runner"
    try:
        config = ClientConfig(url=info["url"], grpc=info["grpc"], api_key=info["api_key"])
        model_id = asyncio.run(push(config, EXAMPLE)).model.id
        noop_id = asyncio.run(push(config, NOOP)).model.id
        rest_host = info["url"].removeprefix("http://")
        via = http.client.HTTPConnection(rest_host, timeout=30)
        direct = http.client.HTTPConnection(f"127.0.0.1:{server_port(home)}", timeout=30)
        auth = {"authorization": f"Api-Key {info['api_key']}"}
        prefix = f"/models/{model_id}/development/sync"
        deadline = time.monotonic() + 60
        while True:  # the route table reaches the router just after ACTIVE
            try:
                noop(via, f"{prefix}/health", auth)
                break
            except (AssertionError, http.client.HTTPException, OSError):
                if time.monotonic() > deadline:
                    raise
                via.close()
                time.sleep(0.2)
        paths = {
            "server directly": (direct, "/health", "/v1/chat/completions", {}),
            f"kingpost /sync (REST, {hops} → server)": (
                via, f"{prefix}/health", f"{prefix}/v1/chat/completions", auth),
        }
        predict_name = f"no-op Truss predict (REST, {hops})"
        predicts: list[float] = []
        noops: dict[str, list[float]] = {name: [] for name in paths}
        ttfts: dict[str, list[float]] = {name: [] for name in paths}
        for name, (conn, health, chat, headers) in paths.items():  # warm-up
            for _ in range(50):
                noop(conn, health, headers)
            for _ in range(5):
                first_token(conn, chat, headers)
        for _ in range(50):
            predict(via, f"/models/{noop_id}/development/predict", auth)
        for _ in range(args.blocks):
            for name, (conn, health, chat, headers) in paths.items():
                noops[name] += [noop(conn, health, headers) for _ in range(args.requests // args.blocks)]
                ttfts[name] += [first_token(conn, chat, headers) for _ in range(args.streams // args.blocks)]
            predicts.extend(predict(via, f"/models/{noop_id}/development/predict", auth)
                            for _ in range(args.requests // args.blocks))
        print("| path (c=1) | no-op n | no-op p50 ms | no-op p99 ms | TTFT n | TTFT p50 ms | TTFT p99 ms |")
        print("|---|---|---|---|---|---|---|")
        for name in paths:
            n, t = noops[name], ttfts[name]
            print(f"| {name} | {len(n)} | {statistics.median(n) * 1e3:.2f} | {percentile(n, 99) * 1e3:.2f} "
                  f"| {len(t)} | {statistics.median(t) * 1e3:.2f} | {percentile(t, 99) * 1e3:.2f} |")
        print(f"| {predict_name} | {len(predicts)} | {statistics.median(predicts) * 1e3:.2f} | "
              f"{percentile(predicts, 99) * 1e3:.2f} | | | |")
        print(f"\nmachine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        base, through = (list(paths)[0], list(paths)[1])
        print(f"\nadded p50: no-op {(statistics.median(noops[through]) - statistics.median(noops[base])) * 1e3:+.2f} ms, "
              f"time to first token {(statistics.median(ttfts[through]) - statistics.median(ttfts[base])) * 1e3:+.2f} ms")
    finally:
        stop_up(proc)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()

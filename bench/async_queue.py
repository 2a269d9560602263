"""Async inference against sync predict, on one `kingpost up`, in the same run.

    .venv/bin/python bench/async_queue.py [--seconds 10] [--concurrency 32] [--rounds 2]

Starts `kingpost up` in a temporary home, publishes bench/trusses/noop (an async no-op,
predict_concurrency 32) and runs, per round, through Envoy's REST:

1. sync: `wrk` POSTs `/models/{id}/deployment/{deployment_id}/predict` for --seconds: requests/s, p50, p99;
2. async: `wrk` POSTs `.../deployment/{deployment_id}/async_predict` with a webhook on this machine for
   --seconds: the enqueue rate and latency (the answer is the request id, after JetStream stored
   the request); then every queued request is drained and POSTed to the local webhook receiver:
   - drain rate: requests the queue finished per second over the whole round (enqueue start to
     the last webhook), and over the backlog left when enqueueing stopped;
   - completion → webhook: the webhook body's `time` (written when the model's answer is recorded)
     to its arrival at the receiver, p50 and p99.
The receiver checks that every request id arrives (and counts duplicates). Needs `wrk`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from platform_latency import free_port, percentile, start_up, stop_up  # noqa: E402

NOOP = Path(__file__).resolve().parent / "trusses" / "noop"


class Receiver:
    """A minimal keep-alive HTTP/1.1 server on its own thread and loop: it answers 200 at once and
    records (arrival time, the body's completion time, request id) of every POST."""

    def __init__(self) -> None:
        self.port = free_port()
        self.arrivals: list[tuple[float, float, str]] = []
        self._ready = threading.Event()
        threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True).start()
        self._ready.wait()

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._connection, "127.0.0.1", self.port, backlog=1024)
        self._ready.set()
        async with server:
            await server.serve_forever()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
                body = await reader.readexactly(length)
                arrived = time.time()
                hook = json.loads(body)
                completed = datetime.fromisoformat(hook["time"].replace("Z", "+00:00")).timestamp()
                self.arrivals.append((arrived, completed, hook["request_id"]))
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def wrk(url: str, key: str, body: str, concurrency: int, seconds: int, workdir: Path) -> dict[str, float]:
    script = workdir / "post.lua"
    script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
                      f'wrk.headers["Content-Type"] = "application/json"\n'
                      f'wrk.headers["Authorization"] = "Api-Key {key}"\n')
    out = subprocess.run(["wrk", "-t2", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout

    def ms(name: str) -> float:
        value, unit = re.search(rf"\s{name}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "total": float(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
            "p50": ms("50"), "p99": ms("99"), "errors": float(errors.group(1)) if errors else 0.0}


def publish(home: Path, info: dict) -> tuple[str, str]:
    env = {**os.environ, "KINGPOST_HOME": str(home), "KINGPOST_URL": info["url"], "KINGPOST_GRPC": info["grpc"],
           "KINGPOST_API_KEY": info["api_key"]}
    done = subprocess.run([sys.executable, "-m", "kingpost.cli", "push", str(NOOP), "--publish", "--json"],
                          capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"push failed: {done.stdout}{done.stderr}")
    pushed = json.loads(done.stdout)
    return pushed["model"]["id"], pushed["deployment"]["id"]


def run_round(info: dict, model_id: str, deployment_id: str, receiver: Receiver, args: argparse.Namespace,
              workdir: Path) -> dict[str, float]:
    base = f"{info['url']}/models/{model_id}/deployment/{deployment_id}"
    key = info["api_key"]
    probe = httpx.post(f"{base}/predict", json={"x": 1}, headers={"Authorization": f"Api-Key {key}"}, timeout=60)
    if probe.status_code != 200:
        raise SystemExit(f"the model does not answer: {probe.status_code} {probe.text}")
    sync = wrk(f"{base}/predict", key, '{"x": 1}', args.concurrency, args.seconds, workdir)
    already = len(receiver.arrivals)
    hook = f"http://127.0.0.1:{receiver.port}/hook"
    started = time.time()
    enqueue = wrk(f"{base}/async_predict", key, json.dumps({"model_input": {"x": 1}, "webhook_endpoint": hook}),
                  args.concurrency, args.seconds, workdir)
    stopped = time.time()
    # wrk does not count requests still in flight when it stops; the server may have queued them.
    queued = int(enqueue["total"] - enqueue["errors"])
    if not queued:
        raise SystemExit(f"nothing was queued: sync {sync}, async {enqueue}")
    at_stop = len(receiver.arrivals) - already
    deadline = time.time() + 600
    while len(receiver.arrivals) - already < queued and time.time() < deadline:
        time.sleep(0.05)
    while (count := len(receiver.arrivals)) and time.time() < deadline:  # the few wrk did not count
        time.sleep(1.0)
        if len(receiver.arrivals) == count:
            break
    arrivals = receiver.arrivals[already:]
    finished = max(a for a, _, _ in arrivals)
    delays = [(a - c) * 1000 for a, c, _ in arrivals]
    ids = [r for _, _, r in arrivals]
    return {
        "sync_rps": sync["rps"], "sync_p50": sync["p50"], "sync_p99": sync["p99"], "sync_errors": sync["errors"],
        "enqueue_rps": enqueue["rps"], "enqueue_p50": enqueue["p50"], "enqueue_p99": enqueue["p99"],
        "enqueue_errors": enqueue["errors"], "queued": queued, "delivered": len(set(ids)),
        "duplicates": len(ids) - len(set(ids)),
        "drain_rps": len(set(ids)) / (finished - started),
        "backlog": max(0, queued - at_stop),
        "backlog_rps": max(0, queued - at_stop) / max(1e-9, finished - stopped) if queued > at_stop else 0.0,
        "hook_p50": statistics.median(delays), "hook_p99": percentile(delays, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    receiver = Receiver()
    with tempfile.TemporaryDirectory(prefix="kp-bench-async-") as tmp:
        home = Path(tmp)
        proc, info = start_up(home)
        try:
            model_id, deployment_id = publish(home, info)
            rounds = [run_round(info, model_id, deployment_id, receiver, args, home) for _ in range(args.rounds)]
        finally:
            stop_up(proc)
    print(f"\nmachine: {os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"wrk -c{args.concurrency} -d{args.seconds}s per cell\n")
    print("| round | sync req/s | sync p50/p99 ms | enqueue req/s | enqueue p50/p99 ms | queued | delivered "
          "(dupes) | drain req/s (whole round) | backlog → req/s | completion→webhook p50/p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for i, r in enumerate(rounds, 1):
        print(f"| {i} | {r['sync_rps']:.0f} | {r['sync_p50']:.1f} / {r['sync_p99']:.1f} | {r['enqueue_rps']:.0f} | "
              f"{r['enqueue_p50']:.1f} / {r['enqueue_p99']:.1f} | {r['queued']} | {r['delivered']} "
              f"({r['duplicates']}) | {r['drain_rps']:.0f} | {r['backlog']} → {r['backlog_rps']:.0f} | "
              f"{r['hook_p50']:.1f} / {r['hook_p99']:.1f} |")
        if r["sync_errors"] or r["enqueue_errors"]:
            print(f"  (non-2xx: sync {r['sync_errors']:.0f}, enqueue {r['enqueue_errors']:.0f})")


if __name__ == "__main__":
    main()

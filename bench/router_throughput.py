"""Router throughput and added latency, through Envoy, side by side in one run.

Two paths, same machine, same no-op model, same Envoy config (rendered by kingpost.gateway):

    direct:     wrk → Envoy (REST transcoder) → a no-op InferenceService (answers Predict itself)
    via router: wrk → Envoy (REST transcoder) → router → no-op RunnerService

The direct baseline is the honest "without the router" path: Envoy's transcoder only speaks to an
InferenceService, and the runner serves RunnerService, so the baseline is a servicer that does what
the runner's no-op does (echo the body) on the InferenceService path. The difference between the
two rows is what the router (one more gRPC hop, auth, resolve, slot accounting) adds.

Each (path, concurrency) cell runs `wrk` for --seconds; cells alternate direct/router per round so
that both paths see the same machine conditions. The router runs with predict_concurrency 0 (no
limit), so its queue is never used: this measures the fast path.

    .venv/bin/python bench/router_throughput.py [--seconds 5] [--rounds 2] [--concurrency 1 32]
                                                [--peers ray ray-optimized bentoml] [--peer-cache DIR]

With --peers, the same run also measures other frameworks serving the same no-op model (echo the JSON
body) on the same machine, with the same wrk cells, interleaved with kingpost's in each round:

    ray serve:  wrk → Serve's HTTP proxy → one replica (bench/peers/ray_noop.py)
    ray-optimized: the same with RAY_SERVE_ENABLE_HA_PROXY=1 RAY_SERVE_THROUGHPUT_OPTIMIZED=1:
                wrk → HAProxy → the replica's own HTTP server (needs `haproxy` on PATH; Debian's 2.6 works)
    bentoml:    wrk → `bentoml serve`, one worker (bench/peers/bentoml_noop.py)

Each peer runs from its own venv, made with uv on first use (see bench/peers/manage.py); a peer that
cannot be installed or started is skipped with a message. The bench starts and stops their servers.

Needs `wrk` (Debian: apt-get install -y wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kingpost  # noqa: F401  (first: the gRPC settings kingpost processes run with)
import grpc
import httpx
from google.api import httpbody_pb2

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers.manage import PEERS, PeerServer, PeerUnavailable, default_cache, ensure_python  # noqa: E402
from router_overhead import KEY, _free_port, _run, serve_router  # noqa: E402

from kingpost import rpc  # noqa: E402
from kingpost.gateway import envoy_command, write_envoy_config  # noqa: E402
from kingpost.up import descriptor_path  # noqa: E402
from kingpost.v1 import inference_pb2_grpc, runner_pb2, runner_pb2_grpc  # noqa: E402

PATH = "/models/mdl_bench/development/predict"
BODY = '{"text": "hello"}'
STREAM = b'"stream"'  # this body makes the no-op model stream: a chunk, 50 ms, a chunk
STREAM_GAP = 0.05


async def _echo(request):  # the no-op model, shared by both stand-ins
    if request.body.data == STREAM:
        yield httpbody_pb2.HttpBody(content_type="text/plain", data=b"first ")
        await asyncio.sleep(STREAM_GAP)
        yield httpbody_pb2.HttpBody(content_type="text/plain", data=b"last")
    else:
        yield httpbody_pb2.HttpBody(content_type=request.body.content_type, data=request.body.data)


class NoopInference(inference_pb2_grpc.InferenceServiceServicer):
    async def Predict(self, request, context):  # noqa: N802
        async for chunk in _echo(request):
            yield chunk


class NoopRunner(runner_pb2_grpc.RunnerServiceServicer):
    async def Predict(self, request, context):  # noqa: N802
        async for chunk in _echo(request):
            yield chunk

    async def Ready(self, request, context):  # noqa: N802
        return runner_pb2.ReadyResponse(ready=True)


def serve_noop_runner(port: int) -> None:
    async def main() -> None:
        server = grpc.aio.server(options=rpc.server_options())
        runner_pb2_grpc.add_RunnerServiceServicer_to_server(NoopRunner(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    _run(main)


def serve_noop_inference(port: int) -> None:
    async def main() -> None:
        server = grpc.aio.server(options=rpc.server_options())
        inference_pb2_grpc.add_InferenceServiceServicer_to_server(NoopInference(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    _run(main)


def start_envoy(workdir: Path, name: str, upstream: str, **tracing: Any) -> tuple[subprocess.Popen[bytes], int]:
    """`tracing`: render_envoy_config's otlp_endpoint and trace_ratio, for Envoy's own spans."""
    rest, grpc_port, admin = _free_port(), _free_port(), _free_port()
    config = write_envoy_config(workdir / f"{name}.yaml", rest_port=rest, grpc_port=grpc_port,
                                admin_port=admin, router=upstream, scheduler="127.0.0.1:1",
                                builder="127.0.0.1:2", descriptor_path=descriptor_path(), **tracing)
    proc = subprocess.Popen(envoy_command(config), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{admin}/ready", timeout=1).status_code == 200:
                return proc, rest
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"envoy {name} did not start")
        time.sleep(0.05)


def wait_ok(port: int, timeout: float = 60, alive: Callable[[], bool] = lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = httpx.post(f"http://127.0.0.1:{port}{PATH}", content=BODY, timeout=5,
                           headers={"Authorization": f"Api-Key {KEY}", "Content-Type": "application/json"})
            if r.status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not alive():
            raise RuntimeError(f"no 200 from :{port}")
        time.sleep(0.1)


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> Callable[[], dict[int, float]]:
    return lambda: {pid: cpu_seconds(pid)}


def run_wrk(port: int, concurrency: int, seconds: float, script: Path,
            cpu: Callable[[], dict[int, float]], path: str = PATH) -> dict[str, float]:
    """wrk's figures, plus the CPU time the serving processes (router, direct stand-in, or a peer's
    process tree; cpu() gives pid → CPU seconds so far) spent per request: a figure that other load
    on the machine disturbs far less than latency."""
    threads = 1 if concurrency == 1 else 2
    cpu_before = cpu()
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    cpu_after = cpu()
    cpu_us = sum(t - cpu_before.get(pid, 0.0) for pid, t in cpu_after.items()) / max(1.0, total) * 1e6
    return {"rps": rps, "p50": p50, "p99": p99, "errors": float(errors.group(1)) if errors else 0.0,
            "cpu_us": cpu_us}


def streaming_ttfb(port: int, requests: int) -> dict[str, float]:
    """Time to the first streamed chunk, and to the last, of a model that waits between them."""
    first, last = [], []
    headers = {"Authorization": f"Api-Key {KEY}", "Content-Type": "application/json"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for _ in range(requests):
            t0 = time.perf_counter()
            with client.stream("POST", PATH, content=STREAM, headers=headers) as response:
                chunks = response.iter_raw()
                head = next(chunks)
                first.append(time.perf_counter() - t0)
                rest = b"".join(chunks)
                last.append(time.perf_counter() - t0)
            assert (head + rest).startswith(b"first") and (head + rest).endswith(b"last"), head + rest
    first.sort()
    last.sort()
    return {"ttfb_p50": first[len(first) // 2] * 1e3, "ttfb_p99": first[int(len(first) * 0.99)] * 1e3,
            "last_p50": last[len(last) // 2] * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk duration per cell")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best round is kept")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--stream-requests", type=int, default=100, help="streaming requests per path")
    parser.add_argument("--peers", nargs="*", default=[], choices=sorted(PEERS),
                        help="also measure these frameworks serving the same no-op model")
    parser.add_argument("--peer-cache", type=Path, default=default_cache(),
                        help="where the peers' venvs are made on first use (default: %(default)s)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install -y wrk)")
    peer_pythons: dict[str, tuple[Path, str]] = {}  # name → (interpreter, framework version)
    for name in dict.fromkeys(args.peers):
        try:
            peer_pythons[name] = ensure_python(PEERS[name], args.peer_cache)
        except PeerUnavailable as e:
            print(f"skipping peer {name}: {e}", file=sys.stderr, flush=True)

    spawn = multiprocessing.get_context("spawn")
    runner_port, router_port, direct_port = _free_port(), _free_port(), _free_port()
    procs = [
        spawn.Process(target=serve_noop_runner, args=(runner_port,), daemon=True),
        spawn.Process(target=serve_router, args=(router_port, f"127.0.0.1:{runner_port}"), daemon=True),
        spawn.Process(target=serve_noop_inference, args=(direct_port,), daemon=True),
    ]
    for p in procs:
        p.start()
    envoys: list[subprocess.Popen[bytes]] = []
    peers: list[PeerServer] = []
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    ttfb: dict[str, dict[str, float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            script = work / "post.lua"
            script.write_text(f'wrk.method = "POST"\nwrk.body = \'{BODY}\'\n'
                              f'wrk.headers["Content-Type"] = "application/json"\n'
                              f'wrk.headers["Authorization"] = "Api-Key {KEY}"\n')
            direct_envoy, direct_rest = start_envoy(work, "direct", f"127.0.0.1:{direct_port}")
            envoys.append(direct_envoy)
            routed_envoy, routed_rest = start_envoy(work, "routed", f"127.0.0.1:{router_port}")
            envoys.append(routed_envoy)
            # name → (HTTP port, pid → CPU seconds of the serving processes: behind Envoy, or a peer's tree)
            paths = {"direct": (direct_rest, process_cpu(procs[2].pid)),
                     "via router": (routed_rest, process_cpu(procs[1].pid))}
            for port, cpu in paths.values():
                wait_ok(port)
            for name, (python, _) in peer_pythons.items():
                peer = PEERS[name]
                server = PeerServer(peer, python, _free_port(), work / f"{name}.log")
                peers.append(server)
                try:
                    wait_ok(server.port, timeout=300, alive=server.alive)
                except RuntimeError:
                    log = server.log.read_text(errors="replace")[-2000:]
                    print(f"skipping peer {name}: its server did not answer; its log ends:\n{log}",
                          file=sys.stderr, flush=True)
                    continue
                paths[peer.label] = (server.port, server.cpu_counter())
            for port, cpu in paths.values():
                run_wrk(port, 8, 1.0, script, cpu)  # warm-up
            for _ in range(args.rounds):
                for c in args.concurrency:
                    for name, (port, cpu) in paths.items():
                        results.setdefault((name, c), []).append(run_wrk(port, c, args.seconds, script, cpu))
            for name in ("direct", "via router"):
                ttfb[name] = streaming_ttfb(paths[name][0], args.stream_requests)
    finally:
        for server in peers:
            for line in server.stop():
                print(f"peer {server.peer.name}: process left running: {line}", file=sys.stderr, flush=True)
        for e in envoys:
            e.terminate()
            e.wait(10)
        for p in procs:
            p.kill()
            p.join(10)

    print(f"router throughput via Envoy REST, wrk {args.seconds:g} s x {args.rounds} rounds (best kept), "
          f"no-op model, {os.cpu_count()} CPUs")
    print("cpu us/req: CPU time of the process behind Envoy (the router; or the direct stand-in) per request")
    measured = {name for name, _ in results}
    for name, (_, version) in peer_pythons.items():
        peer = PEERS[name]
        if peer.label in measured:
            print(f"{peer.label}: {peer.module} {version}, {peer.describe}, no Envoy; cpu us/req: its whole "
                  f"process tree (HTTP server included)")
    print(f"{'path':<12} {'conc':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'cpu us/req':>11}")
    best: dict[tuple[str, int], dict[str, float]] = {}
    for (name, c), runs in results.items():
        best[(name, c)] = r = max(runs, key=lambda r: r["rps"])
        print(f"{name:<12} {c:>5} {r['rps']:>9.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['errors']:>8.0f} "
              f"{r['cpu_us']:>11.0f}")
    for c in args.concurrency:
        d, r = best[("direct", c)], best[("via router", c)]
        print(f"{'added':<12} {c:>5} {r['rps'] - d['rps']:>9.0f} {r['p50'] - d['p50']:>8.2f} "
              f"{r['p99'] - d['p99']:>8.2f}")

    print(f"\nstreaming through Envoy REST: {args.stream_requests} requests, chunks {STREAM_GAP * 1e3:g} ms apart")
    print(f"{'path':<12} {'TTFB p50':>9} {'TTFB p99':>9} {'last p50':>9}  (ms)")
    for name, t in ttfb.items():
        print(f"{name:<12} {t['ttfb_p50']:>9.2f} {t['ttfb_p99']:>9.2f} {t['last_p50']:>9.2f}")
    print(f"{'added':<12} {ttfb['via router']['ttfb_p50'] - ttfb['direct']['ttfb_p50']:>9.2f}")


if __name__ == "__main__":
    main()

"""Which protocol should the runner's data plane speak to Envoy? Measured side by side in one run.

Envoy (one HTTP/1.1 listener) → a no-op upstream that echoes the body, for each candidate:

    grpc (today):    Envoy's gRPC-JSON transcoder → a grpc.aio no-op (router_throughput's "direct")
    uvicorn h1:      Envoy → HTTP/1.1 → uvicorn (httptools, uvloop), a raw ASGI app
    granian h1:      Envoy → HTTP/1.1 → granian (ASGI, uvloop, 1 worker)
    granian h2c:     Envoy → h2c (prior knowledge) → granian (ASGI, uvloop, 1 worker)
    hypercorn h2c:   Envoy → h2c → hypercorn (asyncio, uvloop)
    protocol h1:     Envoy → HTTP/1.1 → an asyncio.Protocol + httptools on uvloop (the floor)
    uvicorn bare:    wrk → uvicorn, no Envoy
    runner h1:       Envoy → HTTP/1.1 → the kingpost runner's HTTP data plane (http_plane.py) serving
                     bench/trusses/noop (an async no-op model through the whole Pipeline)
    runner bare:     wrk → the same runner's HTTP data plane, no Envoy

wrk at each concurrency for --seconds, cells interleaved per round, best round kept; "cpu us/req" is
the CPU time of the upstream's process tree per request (Envoy's own is not counted).

The candidates run from a venv made with uv on first use (the bench cache, as bench/peers does):

    .venv/bin/python bench/runner_protocols.py [--seconds 5] [--rounds 2] [--concurrency 1 32]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peers.manage import _uv, default_cache  # noqa: E402
from router_overhead import KEY, _free_port  # noqa: E402
from router_throughput import BODY, PATH, run_wrk, serve_noop_inference, start_envoy  # noqa: E402

from kingpost.gateway import envoy_command  # noqa: E402

CANDIDATES = {  # row → (server kind in protocol_servers.py, upstream protocol or None for no Envoy)
    "uvicorn h1": ("uvicorn", "h1"),
    "granian h1": ("granian-h1", "h1"),
    "granian h2c": ("granian-h2", "h2c"),
    "hypercorn h2c": ("hypercorn-h2", "h2c"),
    "protocol h1": ("protocol", "h1"),
    "uvicorn bare": ("uvicorn", None),
    "runner h1": ("runner", "h1"),
    "runner bare": ("runner", None),
}
PACKAGES = ["uvicorn", "httptools", "uvloop", "granian", "hypercorn"]


def bench_python(cache: Path) -> Path:
    venv = cache / "runner-protocols"
    python = venv / "bin" / "python"
    if not (venv / ".installed").exists():
        uv = _uv()
        if uv is None:
            sys.exit("uv not found: run `make install` first")
        subprocess.run([uv, "venv", "-q", "--allow-existing", str(venv)], check=True)
        subprocess.run([uv, "pip", "install", "-q", "--python", str(python), *PACKAGES], check=True)
        (venv / ".installed").write_text("")
    return python


def envoy_yaml(listen: int, admin: int, upstream: int, protocol: str) -> str:
    h2 = ("    typed_extension_protocol_options:\n"
          "      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n"
          "        \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n"
          "        explicit_http_config: {http2_protocol_options: {}}\n") if protocol == "h2c" else ""
    return f"""admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
static_resources:
  listeners:
  - address: {{socket_address: {{address: 127.0.0.1, port_value: {listen}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          codec_type: HTTP1
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "{PATH}"}}
                route: {{cluster: upstream, prefix_rewrite: "/predict", timeout: 0s}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  clusters:
  - name: upstream
    type: STATIC
    connect_timeout: 1s
    circuit_breakers: {{thresholds: [{{max_connections: 100000, max_pending_requests: 100000, max_requests: 100000}}]}}
{h2}    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {upstream}}}}}}}
"""


def start_plain_envoy(work: Path, name: str, upstream: int, protocol: str) -> tuple[subprocess.Popen, int]:
    listen, admin = _free_port(), _free_port()
    config = work / f"{name.replace(' ', '-')}.yaml"
    config.write_text(envoy_yaml(listen, admin, upstream, protocol))
    proc = subprocess.Popen(envoy_command(config), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{admin}/ready", timeout=1).status_code == 200:
                return proc, listen
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"envoy for {name} did not start")
        time.sleep(0.05)


def tree_cpu(pid: int):
    def cpu() -> dict[int, float]:
        out = {}
        try:
            root = psutil.Process(pid)
            for p in (root, *root.children(recursive=True)):
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
        except psutil.Error:
            pass
        return out
    return cpu


def wait_ok(port: int, path: str = PATH, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = httpx.post(f"http://127.0.0.1:{port}{path}", content=BODY, timeout=5,
                           headers={"Authorization": f"Api-Key {KEY}", "Content-Type": "application/json"})
            if r.status_code == 200 and r.json() == json.loads(BODY):
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no echo from :{port}")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--only", nargs="*", help="rows to measure (default: all)")
    args = parser.parse_args()
    python = bench_python(default_cache())
    rows = [r for r in ["grpc (today)", *CANDIDATES] if not args.only or r in args.only]
    procs: list[subprocess.Popen] = []
    spawned: list[multiprocessing.Process] = []
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            script = work / "post.lua"
            script.write_text(f'wrk.method = "POST"\nwrk.body = \'{BODY}\'\n'
                              f'wrk.headers["Content-Type"] = "application/json"\n'
                              f'wrk.headers["Authorization"] = "Api-Key {KEY}"\n')
            paths = {}
            for row in rows:
                upstream = _free_port()
                if row == "grpc (today)":
                    p = multiprocessing.get_context("spawn").Process(
                        target=serve_noop_inference, args=(upstream,), daemon=True)
                    p.start()
                    spawned.append(p)
                    envoy, port = start_envoy(work, "grpc", f"127.0.0.1:{upstream}")
                    procs.append(envoy)
                    paths[row] = (port, tree_cpu(p.pid), PATH)
                    continue
                kind, protocol = CANDIDATES[row]
                path = PATH
                if kind == "runner":
                    command = [sys.executable, "-m", "kingpost_runner", "--truss", str(HERE / "trusses" / "noop"),
                               "--port", str(_free_port()), "--http-port", str(upstream)]
                    path = PATH if protocol else "/predict"
                else:
                    command = [str(python), str(HERE / "protocol_servers.py"), kind, str(upstream)]
                server = subprocess.Popen(command, cwd=HERE, start_new_session=True,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                procs.append(server)
                port = upstream
                if protocol is not None:
                    envoy, port = start_plain_envoy(work, row, upstream, protocol)
                    procs.append(envoy)
                paths[row] = (port, tree_cpu(server.pid), path)
            for row, (port, cpu, path) in paths.items():
                wait_ok(port, path)
                run_wrk(port, 8, 1.0, script, cpu, path)  # warm-up
            for _ in range(args.rounds):
                for c in args.concurrency:
                    for row, (port, cpu, path) in paths.items():
                        results.setdefault((row, c), []).append(run_wrk(port, c, args.seconds, script, cpu, path))
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for p in spawned:
            p.kill()
            p.join(10)
    load = os.getloadavg()
    print(f"runner protocols via Envoy (HTTP/1.1 listener), wrk {args.seconds:g} s x {args.rounds} rounds "
          f"(best kept), no-op echo, {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'upstream':<14} {'conc':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'cpu us/req':>11}")
    for (row, c), runs in sorted(results.items(), key=lambda kv: (kv[0][1], rows.index(kv[0][0]))):
        r = max(runs, key=lambda r: r["rps"])
        print(f"{row:<14} {c:>5} {r['rps']:>9.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['errors']:>8.0f} "
              f"{r['cpu_us']:>11.0f}")


if __name__ == "__main__":
    main()

"""The API key check on a route Envoy sends straight to a runner, measured side by side (issue 20).

One Envoy (one worker, as kingpost runs it), one listener, one route per way of checking, all to the
same trivial upstream (a second Envoy answering 200 itself, so that the upstream costs little):

    none:     no key check at all (the floor)
    lua:      kingpost's check inside Envoy (the listener's kingpost.api_key Lua filter: sha256 of
              the key, remembered per worker; the digest looked up in the key set the route
              carries, as kingpost_router.envoy_keys builds it), 1 key in the table
    lua-1k:   the same with 1,000 keys in the table (the lookup does not grow with it)
    ext_authz: Envoy asks the router's Check (kingpost_router.authz, the router's own interceptor and
              key cache, in a process of its own and otherwise idle: a best case) on every request

Cells alternate between the ways in each round, so that each sees the same machine. CPU per request
is Envoy's (and the Check server's, for ext_authz), from /proc.

    .venv/bin/python bench/envoy_key_check.py [--seconds 5] [--rounds 2] [--concurrency 1 32]

Needs `wrk` (Debian: apt-get install -y wrk).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from kingpost.gateway import API_KEY_FILTER, EXT_AUTHZ_FILTER, envoy_command, render_envoy_config
from kingpost.v1 import scheduler_pb2 as s
from kingpost_router.envoy_keys import FILTER_CONFIG, route_key_fields
from kingpost_router.routes import RouteSnapshot

KEY = "kp_benchkey_0123456789abcdefghijklmnopqrstu"
WAYS = ("none", "lua", "lua-1k", "ext_authz")
HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER_FILTER = {"name": "envoy.filters.http.router",
                 "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}

# The Check server: the router's interceptor and key cache, nothing else.
CHECK_SERVER = """
import asyncio, sys
import grpc
from kingpost.auth import KeyCache
from kingpost_router.authz import EnvoyAuthzInterceptor

async def main():
    server = grpc.aio.server(interceptors=[EnvoyAuthzInterceptor(KeyCache([sys.argv[2]]))])
    server.add_insecure_port("127.0.0.1:" + sys.argv[1])
    await server.start()
    await server.wait_for_termination()

try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listener(name: str, port: int, routes: list[dict[str, Any]], filters: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                            "typed_config": {"@type": HCM, "stat_prefix": name,
                                                             "route_config": {"virtual_hosts": [{
                                                                 "name": name, "domains": ["*"], "routes": routes}]},
                                                             "http_filters": [*filters, ROUTER_FILTER]}}]}]}


def cluster(name: str, port: int, http2: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "type": "STATIC", "connect_timeout": "1s",
                           "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {
                               "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}}
    if http2:
        out["typed_extension_protocol_options"] = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}}}}
    return out


def key_fields(keys: int) -> dict[str, Any]:
    """envoy_keys' route fields for a model in a table of `keys` keys (KEY among them)."""
    digests = [hashlib.sha256(KEY.encode()).hexdigest(),
               *(hashlib.sha256(f"other-{i}".encode()).hexdigest() for i in range(keys - 1))]
    snapshot = RouteSnapshot.from_table(s.RouteTable(models=[s.ModelRoute(model_id="mdl_bench", name="bench")],
                                                     api_key_sha256=digests))
    return route_key_fields(snapshot, snapshot.by_id["mdl_bench"])


def configs(port: int, upstream: int, check: int, admin: int, upstream_admin: int) -> tuple[dict, dict]:
    """The bench Envoy (the listener's own filters, from kingpost.gateway) and the trivial upstream."""
    kingpost = render_envoy_config(rest_port=1, grpc_port=2, admin_port=3, router="127.0.0.1:4",
                                   scheduler="127.0.0.1:5", builder="127.0.0.1:6", descriptor_path="/x.binpb")
    [rest] = [x for x in kingpost["static_resources"]["listeners"] if x["name"] == "rest"]
    filters = {f["name"]: f for f in rest["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]}
    lua = filters[API_KEY_FILTER]
    # The listener's ext_authz without its "small bodies skip it" matcher: asked on every request.
    authz = filters[EXT_AUTHZ_FILTER]["typed_config"]["extension_config"]
    authz["typed_config"]["grpc_service"]["envoy_grpc"]["cluster_name"] = "check"
    off = {"typed_per_filter_config": {EXT_AUTHZ_FILTER: {"@type": FILTER_CONFIG, "disabled": True}}}
    per_way = {"none": off, "lua": key_fields(1), "lua-1k": key_fields(1000), "ext_authz": {}}
    routes = [{"match": {"path": f"/{way}"}, "route": {"cluster": "upstream"}, **fields}
              for way, fields in per_way.items()]
    bench = {"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
             "static_resources": {"listeners": [listener("bench", port, routes, [lua, authz])],
                                  "clusters": [cluster("upstream", upstream), cluster("check", check, http2=True)]}}
    ok = [{"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]
    trivial = {"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": upstream_admin}}},
               "static_resources": {"listeners": [listener("upstream", upstream, ok, [])]}}
    return bench, trivial


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, concurrency: int, seconds: int, pids: list[int]) -> dict[str, float]:
    before = sum(cpu_seconds(p) for p in pids)
    out = subprocess.run(["wrk", f"-t{1 if concurrency == 1 else 2}", f"-c{concurrency}", f"-d{seconds}s",
                          "--latency", "-H", f"Authorization: Api-Key {KEY}", url],
                         capture_output=True, text=True, check=True).stdout
    total = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "p50": _ms(re.search(r"\s50%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
            "p99": _ms(re.search(r"\s99%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
            "errors": float(errors.group(1)) if errors else 0.0,
            "cpu_us": (sum(cpu_seconds(p) for p in pids) - before) / max(1.0, total) * 1e6}


def wait_ready(admin: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"envoy exited {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{admin}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    sys.exit("envoy did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per cell")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install -y wrk)")
    port, upstream, check, admin, upstream_admin = (free_port() for _ in range(5))
    bench, trivial = configs(port, upstream, check, admin, upstream_admin)
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="envoy-key-bench-") as tmp:
        try:
            for name, config, ready in (("upstream", trivial, upstream_admin), ("bench", bench, admin)):
                path = Path(tmp) / f"{name}.json"
                path.write_text(json.dumps(config))
                procs.append(subprocess.Popen(envoy_command(path), stdout=subprocess.DEVNULL))
                wait_ready(ready, procs[-1])
            digest = hashlib.sha256(KEY.encode()).hexdigest()
            procs.append(subprocess.Popen([sys.executable, "-c", CHECK_SERVER, str(check), digest]))
            time.sleep(2)  # the Check server's import and start
            for way in WAYS:  # every way answers 200 with the key, 401 without
                url = f"http://127.0.0.1:{port}/{way}"
                assert httpx.get(url, headers={"authorization": f"Api-Key {KEY}"}).status_code == 200, way
                refused = httpx.get(url)
                assert refused.status_code == (200 if way == "none" else 401), (way, refused.status_code)
            envoy_pid, check_pid = procs[1].pid, procs[2].pid
            results: dict[tuple[str, int], list[dict[str, float]]] = {}
            for way in WAYS:
                run_wrk(f"http://127.0.0.1:{port}/{way}", 8, 1, [envoy_pid])  # warm-up
            for _ in range(args.rounds):
                for c in args.concurrency:
                    for way in WAYS:
                        pids = [envoy_pid, check_pid] if way == "ext_authz" else [envoy_pid]
                        results.setdefault((way, c), []).append(
                            run_wrk(f"http://127.0.0.1:{port}/{way}", c, args.seconds, pids))
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(timeout=10)
    print(f"\n{'way':<10} {'c':>3} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU µs/req':>11} {'non-2xx':>8}")
    for (way, c), cells in sorted(results.items(), key=lambda kv: (kv[0][1], WAYS.index(kv[0][0]))):
        best = max(cells, key=lambda r: r["rps"])
        print(f"{way:<10} {c:>3} {best['rps']:>9.0f} {best['p50']:>8.3f} {best['p99']:>8.3f} "
              f"{min(r['cpu_us'] for r in cells):>11.1f} {sum(r['errors'] for r in cells):>8.0f}")
    print("(best round of each cell: req/s and its latencies; CPU: the lowest round)")


if __name__ == "__main__":
    main()

"""What the REST edge's guards cost, and what they save (issue 21), on a real `kingpost up`.

    .venv/bin/python bench/rest_edge.py [--requests 4000]

Starts `kingpost up` in a temporary home and pushes a no-op Truss, then starts a second Envoy in
front of the same router and scheduler, rendered from the same template without the guards (no
ext_authz key check before big bodies, no Lua request hook), so both are measured side by side:
1. a no-op predict at concurrency 1 with an 8-byte and a 2 MiB body, interleaved blocks: p50, p99
   and each Envoy's CPU time per request;
2. five POSTs without a key through each (90 MiB to predict, with a length and chunked; 16 MiB of
   non-JSON to the management API): the answer, the time until it arrived, the router's growth;
3. the router's resident size after two authenticated 48 MiB requests, and once it is back.
Prints Markdown tables. Stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import os
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import tomllib
from pathlib import Path

import kingpost  # noqa: F401  (first: the gRPC settings kingpost processes run with)
import msgpack
import yaml

from kingpost.client_config import ClientConfig
from kingpost.gateway import envoy_command, render_envoy_text
from kingpost.push import push
from platform_latency import NOOP, free_port, percentile, start_up

MB = 1024 * 1024


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss(home: Path, service: str) -> int:
    config = str(home / "run" / f"{service}.toml").encode()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and config in (entry / "cmdline").read_bytes().split(b"\0"):
                return int((entry / "statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            continue
    raise SystemExit(f"no {service} process")


def resident(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def pid_of(config: Path) -> int:
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(config).encode() in (entry / "cmdline").read_bytes():
                return int(entry.name)
        except OSError:
            continue
    raise SystemExit(f"no process runs {config}")


def unguarded(text: str) -> str:
    """The rendered config without the key check before big bodies and without the request hook."""
    text = text.replace("function envoy_on_request(handle)", "function not_on_request(handle)")
    config = yaml.safe_load(text)
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["http_filters"] = [f for f in hcm["http_filters"] if f["name"] != "envoy.filters.http.ext_authz"]
    return yaml.safe_dump(config)


def latencies(port: int, path: str, key: str, body: bytes, n: int,
              content_type: str = "application/json") -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": content_type}
    out = []
    for _ in range(n):
        start = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        out.append((time.perf_counter() - start) * 1000)
        assert response.status in (200, 400), response.status  # 400: random bytes are not JSON
    conn.close()
    return out


def time_to_answer(port: int, path: str, size: int, *, chunked: bool) -> tuple[bytes, float]:
    """POST `size` zero bytes without a key (sent by a thread, as fast as the server takes them) and
    time the answer's arrival: the guarded edge answers long before the body is sent."""
    body = bytes(size)
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % size
    with socket.create_connection(("127.0.0.1", port)) as s:
        start = time.perf_counter()
        s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n" % (path.encode(), framing))

        def send() -> None:
            with contextlib.suppress(OSError):  # the server answered and closed: the rest is not wanted
                if not chunked:
                    s.sendall(body)
                    return
                for i in range(0, size, MB):
                    s.sendall(b"%x\r\n%s\r\n" % (len(body[i:i + MB]), body[i:i + MB]))
                s.sendall(b"0\r\n\r\n")

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        head = s.recv(65536)
        took = (time.perf_counter() - start) * 1000
        s.shutdown(socket.SHUT_RDWR)
    sender.join()
    return head.split(b"\r\n")[0], took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kp-bench-") as tmp:
        home = Path(tmp)
        proc, info = start_up(home)
        plain = None
        try:
            config = ClientConfig(url=info["url"], grpc=info["grpc"], api_key=info["api_key"])
            model = asyncio.run(push(config, NOOP)).model.id
            ports = {s: tomllib.loads((home / "run" / f"{s}.toml").read_text())["grpc_port"]
                     for s in ("router", "scheduler", "builder")}
            plain_rest = free_port()
            plain_config = home / "run" / "envoy-unguarded.yaml"
            plain_config.write_text(unguarded(render_envoy_text(
                rest_port=plain_rest, grpc_port=free_port(), admin_port=free_port(),
                descriptor_path=Path(kingpost.__file__).parent / "envoy" / "kingpost.binpb",
                **{s: f"127.0.0.1:{p}" for s, p in ports.items()})))
            plain = subprocess.Popen(envoy_command(plain_config), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
            time.sleep(3)
            edges = {"unguarded": (plain_rest, plain.pid),
                     "as shipped": (int(info["url"].rsplit(":", 1)[1]), pid_of(home / "run" / "envoy.yaml"))}
            path = f"/models/{model}/development/predict"
            bodies = {"8 B": b'{"x": 1}', "2 MiB": os.urandom(2 * MB)}
            samples = {(e, b): [] for e in edges for b in bodies}
            cpu = dict.fromkeys(samples, 0.0)
            for (port, _), body in ((p, b) for p in edges.values() for b in bodies.values()):
                latencies(port, path, info["api_key"], body, 50)
            blocks = 10
            for _ in range(blocks):
                for edge, (port, pid) in edges.items():
                    for name, body in bodies.items():
                        n = max(1, args.requests // blocks // (1 if len(body) < MB else 20))
                        before = cpu_seconds(pid)
                        samples[edge, name] += latencies(port, path, info["api_key"], body, n)
                        cpu[edge, name] += cpu_seconds(pid) - before
            when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            print(f"\nmachine: {os.cpu_count()} cores; {when}\n")
            print("| no-op predict, c=1 | Envoy | n | p50 ms | p99 ms | Envoy CPU µs/request |")
            print("|---|---|---|---|---|---|")
            for (edge, name), values in samples.items():
                print(f"| {name} body | {edge} | {len(values)} | {statistics.median(values):.2f} | "
                      f"{percentile(values, 99):.2f} | {cpu[edge, name] * 1e6 / len(values):.0f} |")
            print("\n| five POSTs without a key | Envoy | status | ms until the answer "
                  "| router, Envoy grew MB |")
            print("|---|---|---|---|---|")
            for name, target, size, chunked in (
                ("90 MiB predict", path, 90 * MB, False), ("90 MiB predict, chunked", path, 90 * MB, True),
                ("16 MiB to /v1/models", "/v1/models", 16 * MB, False),
            ):
                for edge, (port, pid) in edges.items():
                    before = rss(home, "router"), resident(pid)
                    answers = [time_to_answer(port, target, size, chunked=chunked) for _ in range(5)]
                    router_mb = (rss(home, "router") - before[0]) / MB
                    grown = f"{router_mb:+.0f}, {(resident(pid) - before[1]) / MB:+.0f}"
                    statuses = ", ".join(sorted({a[0].decode() for a in answers}))
                    took = ", ".join(f"{a[1]:.0f}" for a in answers)
                    print(f"| {name} | {edge} | {statuses} | {took} | {grown} |")
            payload = msgpack.packb({"blob": os.urandom(48 * MB)})
            time.sleep(6)  # a trim after the runs above
            at_rest = rss(home, "router")
            for _ in range(2):
                latencies(edges["as shipped"][0], path, info["api_key"], payload, 1,
                          "application/octet-stream")
            after = rss(home, "router")
            started = time.monotonic()
            while rss(home, "router") - at_rest > 50 * MB and time.monotonic() - started < 30:
                time.sleep(0.25)
            print(f"\nrouter resident: {at_rest / MB:.0f} MB at rest, {after / MB:.0f} MB after two "
                  f"authenticated 48 MiB requests, {rss(home, 'router') / MB:.0f} MB "
                  f"{time.monotonic() - started:.1f} s later")
        finally:
            if plain is not None:
                plain.terminate()
                plain.wait()
            proc.send_signal(2)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()

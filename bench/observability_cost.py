"""What observability costs a no-op predict: metrics and tracing on, against both off, in one run.

Three routers, the same real runner (`python -m kingpost_runner`, bench/trusses/noop), each router
behind its own Envoy (the config kingpost.gateway renders), wrk cells interleaved per round:

    off:        the router's per-request metrics replaced by no-ops, no tracer (the baseline)
    on:         metrics, and tracing with OTEL_EXPORTER_OTLP_ENDPOINT set to a port where no collector
                listens (spans are made, batched and dropped after failed exports)
    collector:  metrics, and tracing exported to a stand-in OTLP/gRPC collector in its own process

Every request is traced in `on` and `collector` (wrk sends no traceparent, so each request is a new,
sampled root trace; the runner records its phases and sends them back). Reported per cell: requests/s,
p50, p99, and the CPU time the router and the runner spent per request (the figure other load on a
shared machine disturbs least). The best of --rounds is kept per cell.

    .venv/bin/python bench/observability_cost.py [--seconds 5] [--rounds 3] [--concurrency 1 32]

Needs `wrk` (Debian: apt-get install -y wrk).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from concurrent import futures
from pathlib import Path

import kingpost  # noqa: F401  (first: the gRPC settings kingpost processes run with)
import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from router_overhead import KEY, _free_port, _run  # noqa: E402
from router_throughput import BODY, run_wrk, start_envoy, wait_ok  # noqa: E402

NOOP = Path(__file__).resolve().parent / "trusses" / "noop"
MODES = ("off", "on", "collector")


def serve_collector(port: int) -> None:
    """An OTLP/gRPC trace receiver that keeps nothing (what a collector's receiver costs the sender)."""
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    class Drop(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request, context):  # noqa: N802
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Drop(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


class _NullSeries:
    def waited(self, *_: object) -> None: ...

    def answered(self, *_: object) -> None: ...


class _NullStats:
    _series = _NullSeries()

    def series(self, *_: str) -> _NullSeries:
        return self._series

    def retain(self, *_: object) -> None: ...


def serve_router(port: int, runner_address: str, mode: str, otlp: str) -> None:
    from kingpost import service
    from kingpost.auth import AuthInterceptor, KeyCache, key_digest
    from kingpost.v1 import inference_pb2_grpc
    from kingpost.v1 import scheduler_pb2 as s
    from kingpost_router import metrics
    from kingpost_router.main import PUBLIC_PREFIXES
    from kingpost_router.service import RouterServicer
    from kingpost_router.settings import RouterSettings

    from kingpost import rpc

    if mode == "off":
        metrics.REQUESTS = _NullStats()  # type: ignore[assignment]
    else:
        os.environ.update({"OTEL_EXPORTER_OTLP_ENDPOINT": otlp, "OTEL_EXPORTER_OTLP_INSECURE": "true"})
    tracer = service.setup_tracing("router")
    assert (tracer is None) == (mode == "off")

    async def main() -> None:
        keys = KeyCache()
        router = RouterServicer(RouterSettings(router_id=f"router-{mode}"), keys, tracer=tracer)
        router.apply_table(s.RouteTable(version=1, api_key_sha256=[key_digest(KEY)], models=[
            s.ModelRoute(model_id="mdl_bench", name="bench", development_deployment_id="dep_bench",
                         deployments=[s.DeploymentRoute(
                             deployment_id="dep_bench", active=True, status=s.DEPLOYMENT_STATUS_ACTIVE,
                             replicas=[s.ReplicaRoute(replica_id="rep_bench", address=runner_address)])])]))
        server = grpc.aio.server(interceptors=[AuthInterceptor(keys, public_prefixes=PUBLIC_PREFIXES)],
                                 options=rpc.server_options())
        inference_pb2_grpc.add_InferenceServiceServicer_to_server(router, server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    _run(main)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk duration per cell")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best is kept per cell")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    args = parser.parse_args()

    spawn = multiprocessing.get_context("spawn")
    runner_port, collector_port = _free_port(), _free_port()
    runner = subprocess.Popen([sys.executable, "-m", "kingpost_runner", "--truss", str(NOOP),
                               "--port", str(runner_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    collector = spawn.Process(target=serve_collector, args=(collector_port,), daemon=True)
    collector.start()
    otlp = {"off": "", "on": f"http://127.0.0.1:{_free_port()}", "collector": f"http://127.0.0.1:{collector_port}"}
    router_ports = {mode: _free_port() for mode in MODES}
    routers = {mode: spawn.Process(target=serve_router, daemon=True,
                                   args=(router_ports[mode], f"127.0.0.1:{runner_port}", mode, otlp[mode]))
               for mode in MODES}
    for process in routers.values():
        process.start()
    envoys: list[subprocess.Popen[bytes]] = []
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            script = work / "post.lua"
            script.write_text(f'wrk.method = "POST"\nwrk.body = \'{BODY}\'\n'
                              f'wrk.headers["Content-Type"] = "application/json"\n'
                              f'wrk.headers["Authorization"] = "Api-Key {KEY}"\n')
            rest = {}
            for mode in MODES:
                envoy, rest[mode] = start_envoy(work, mode, f"127.0.0.1:{router_ports[mode]}")
                envoys.append(envoy)
                wait_ok(rest[mode], alive=lambda: runner.poll() is None)
            for mode in MODES:
                cpu = lambda mode=mode: {p: cpu_seconds(p) for p in (routers[mode].pid, runner.pid)}  # noqa: E731
                run_wrk(rest[mode], 8, 1.0, script, cpu)  # warm-up
            for _ in range(args.rounds):
                for c in args.concurrency:
                    for mode in MODES:
                        cpu = lambda mode=mode: {p: cpu_seconds(p) for p in (routers[mode].pid, runner.pid)}  # noqa: E731
                        results.setdefault((mode, c), []).append(run_wrk(rest[mode], c, args.seconds, script, cpu))
                        time.sleep(0.5)
    finally:
        for envoy in envoys:
            envoy.terminate()
        for process in (*routers.values(), collector):
            process.terminate()
        runner.terminate()
        runner.wait(timeout=10)

    print(f"observability cost, best of {args.rounds} rounds of {args.seconds:g} s per cell "
          f"(router + runner CPU per request)")
    print("| mode | concurrency | req/s | p50 ms | p99 ms | CPU µs/req | req/s vs off | p50 vs off |")
    print("|---|---|---|---|---|---|---|---|")
    for c in args.concurrency:
        best = {mode: max(results[(mode, c)], key=lambda r: r["rps"]) for mode in MODES}
        for mode in MODES:
            r, base = best[mode], best["off"]
            errors = f" ({r['errors']:.0f} errors)" if r["errors"] else ""
            print(f"| {mode} | {c} | {r['rps']:,.0f}{errors} | {r['p50']:.2f} | {r['p99']:.2f} | {r['cpu_us']:.0f} | "
                  f"{(r['rps'] / base['rps'] - 1) * 100:+.1f} % | {(r['p50'] / base['p50'] - 1) * 100:+.1f} % |")


if __name__ == "__main__":
    main()

"""What observability costs a no-op predict: metrics and tracing on, against both off, in one run.

Five routers, the same real runner (`python -m kingpost_runner`, bench/trusses/noop), each router
behind its own Envoy (the config kingpost.gateway renders; with an OTLP endpoint, Envoy's tracing on at
the router's ratio, as `kingpost up` renders it), wrk cells interleaved per round:

    off:              the router's per-request metrics replaced by no-ops, no tracer (the baseline)
    off again:        a second, identical baseline router: the difference between the two is the
                      noise floor of this run (an A/A comparison)
    metrics:          metrics as shipped, no OTEL_EXPORTER_OTLP_ENDPOINT (the default)
    sampled:          metrics, and tracing to a stand-in OTLP/gRPC collector (its own process) as by
                      default: callers' sampled traceparents, and 1 % of other requests (trace_root_ratio)
    all, collector:   metrics, every request traced (trace_root_ratio 1), to the collector
    all, none:        the same, with no collector listening (spans made, batched, dropped)

wrk sends no traceparent, so in the last two each request is a new root trace (the runner records its
phases and sends them back). Reported per cell: requests/s, p50, p99, and the CPU time the router, the
runner and Envoy spent per request (the figure other load on a shared machine disturbs least). The best of
--rounds is kept per cell; the order of the routers is shuffled in each round, so that none always
runs first or last.

    .venv/bin/python bench/observability_cost.py [--seconds 5] [--rounds 3] [--concurrency 1 32]

Needs `wrk` (Debian: apt-get install -y wrk).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import statistics
from random import Random
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
MODES = ("off", "off again", "metrics", "sampled", "all, collector", "all, none")


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

    logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)  # "all, none" fails every export
    if mode.startswith("off"):
        metrics.REQUESTS = _NullStats()  # type: ignore[assignment]
    if otlp:
        os.environ.update({"OTEL_EXPORTER_OTLP_ENDPOINT": otlp, "OTEL_EXPORTER_OTLP_INSECURE": "true"})
    tracer = service.setup_tracing("router")
    assert (tracer is None) == (not otlp)

    async def main() -> None:
        keys = KeyCache()
        settings = RouterSettings(router_id=f"router-{mode}", trace_root_ratio=1.0 if mode.startswith("all") else 0.01)
        router = RouterServicer(settings, keys, tracer=tracer)
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


def per_request_cost(requests: int = 20000) -> dict[str, float]:
    """CPU µs per request of the router's observability code alone, in this process (what a shared,
    noisy machine cannot hide): the metrics a request records, and its spans when it is sampled,
    not sampled, or traced by its caller, through the SDK's batch processor to an exporter that drops."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from kingpost import trace_phases
    from kingpost.v1 import inference_pb2
    from kingpost_router import metrics, tracing
    from kingpost_router.routes import Deployment, Replica
    from kingpost_router.service import environment_label

    class Drop(SpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            return SpanExportResult.SUCCESS

    request = inference_pb2.PredictRequest(model_id="bench", target="development")
    deployment = Deployment("dep_bench", "mdl_bench", "bench", True, "ACTIVE", "", 0, ())
    replica = Replica("rep_bench", "127.0.0.1:1")
    now = time.time_ns()
    trailers = ((trace_phases.PHASES_KEY, trace_phases.encode([("load", now - 10**9, now - 10**8),
                                                               ("predict", now, now + 1000)])),)
    stats = metrics.RequestStats()

    def record_metrics() -> None:
        series = stats.series(deployment.model_id, deployment.model_name, deployment.deployment_id,
                              environment_label(request))
        series.waited(0.0, None)
        series.answered("OK", 0.0012, 0.0008)

    def traced(tracer, metadata, root_ratio=1.0):  # type: ignore[no-untyped-def]
        def one() -> None:
            trace = tracing.start_request(tracer, metadata, "bench", root_ratio=root_ratio)
            if trace is None:
                return
            call = tracing.start_call(trace, deployment, replica)
            tracing.with_context(list(metadata), call)
            tracing.runner_phases(trace, call, trailers)
            tracing.finish(call, "OK")
            tracing.finish(trace.span, "OK")
        return one

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    tracer = provider.get_tracer("bench")
    caller = (("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),)
    cases = {
        "metrics": record_metrics,
        "tracing on, caller's traceparent not sampled": traced(tracer, caller),
        "tracing on, default trace_root_ratio (1 % of requests without one)": traced(tracer, (), 0.01),
        "request traced (3 spans + a phase)": traced(tracer, ()),
    }
    cost = {}
    for name, fn in cases.items():
        for _ in range(1000):
            fn()
        started = time.process_time()
        for _ in range(requests):
            fn()
        cost[name] = (time.process_time() - started) / requests * 1e6
    provider.shutdown()
    return cost


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk duration per cell")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best is kept per cell")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--micro-only", action="store_true", help="only the in-process cost per request")
    args = parser.parse_args()

    micro = per_request_cost()
    print("in-process CPU per request of the observability code (this machine, one core):")
    for name, us in micro.items():
        print(f"  {name}: {us:.1f} µs")
    if args.micro_only:
        return

    shuffle = Random(16).shuffle
    spawn = multiprocessing.get_context("spawn")
    runner_port, collector_port = _free_port(), _free_port()
    runner = subprocess.Popen([sys.executable, "-m", "kingpost_runner", "--truss", str(NOOP),
                               "--port", str(runner_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    collector = spawn.Process(target=serve_collector, args=(collector_port,), daemon=True)
    collector.start()
    collecting = f"http://127.0.0.1:{collector_port}"
    otlp = {"off": "", "off again": "", "metrics": "", "sampled": collecting, "all, collector": collecting,
            "all, none": f"http://127.0.0.1:{_free_port()}"}
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
                # As `kingpost up` renders it: with an OTLP endpoint, Envoy traces at the router's ratio.
                tracing = {"otlp_endpoint": otlp[mode], "trace_ratio": 1.0 if mode.startswith("all") else 0.01}
                envoy, rest[mode] = start_envoy(work, mode.replace(", ", "-").replace(" ", "-"),
                                                f"127.0.0.1:{router_ports[mode]}", **(tracing if otlp[mode] else {}))
                envoys.append(envoy)
                wait_ok(rest[mode], alive=lambda: runner.poll() is None)
            pids = {mode: (routers[mode].pid, runner.pid, envoy.pid) for mode, envoy in zip(MODES, envoys)}
            for mode in MODES:
                cpu = lambda mode=mode: {p: cpu_seconds(p) for p in pids[mode]}  # noqa: E731
                run_wrk(rest[mode], 8, 1.0, script, cpu)  # warm-up
            order = list(MODES)
            for _ in range(args.rounds):
                for c in args.concurrency:
                    shuffle(order)
                    for mode in order:
                        cpu = lambda mode=mode: {p: cpu_seconds(p) for p in pids[mode]}  # noqa: E731
                        envoy_before = cpu_seconds(pids[mode][2])
                        cell = run_wrk(rest[mode], c, args.seconds, script, cpu)
                        served = cell["rps"] * max(1, round(args.seconds))  # wrk's own count, near enough
                        cell["envoy_us"] = (cpu_seconds(pids[mode][2]) - envoy_before) / max(1.0, served) * 1e6
                        results.setdefault((mode, c), []).append(cell)
                        time.sleep(0.5)
    finally:
        for envoy in envoys:
            envoy.terminate()
        for process in (*routers.values(), collector):
            process.terminate()
        runner.terminate()
        runner.wait(timeout=10)

    print(f"observability cost, best of {args.rounds} rounds of {args.seconds:g} s per cell "
          f"(router + runner + Envoy CPU per request)")
    print("| mode | concurrency | req/s | p50 ms | p99 ms | req/s vs off | p50 vs off | CPU µs/req (median) | CPU vs off "
          "| of which Envoy µs/req |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for c in args.concurrency:
        best = {mode: max(results[(mode, c)], key=lambda r: r["rps"]) for mode in MODES}
        cpu = {mode: statistics.median(r["cpu_us"] for r in results[(mode, c)]) for mode in MODES}
        envoy = {mode: statistics.median(r["envoy_us"] for r in results[(mode, c)]) for mode in MODES}
        for mode in MODES:
            r, base = best[mode], best["off"]
            errors = f" ({r['errors']:.0f} errors)" if r["errors"] else ""
            print(f"| {mode} | {c} | {r['rps']:,.0f}{errors} | {r['p50']:.2f} | {r['p99']:.2f} | "
                  f"{(r['rps'] / base['rps'] - 1) * 100:+.1f} % | {(r['p50'] / base['p50'] - 1) * 100:+.1f} % | "
                  f"{cpu[mode]:.0f} | {(cpu[mode] / cpu['off'] - 1) * 100:+.1f} % | {envoy[mode]:.0f} |")


if __name__ == "__main__":
    main()

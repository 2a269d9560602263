"""What the router adds to a request: direct runner calls vs the same calls through the router.

Three processes: a runner (a no-op RunnerService, or the real `kingpost_runner` with --truss),
the router (RouterServicer behind the AuthInterceptor, fed a route table directly, no scheduler)
and this client, which alternates blocks of direct and routed calls at concurrency 1 so that
both paths see the same machine conditions.

    .venv/bin/python bench/router_overhead.py [--requests 3000] [--truss DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import kingpost  # noqa: F401  (first: the gRPC settings kingpost processes run with)
import grpc
from google.api import httpbody_pb2

from kingpost import rpc
from kingpost.auth import AuthInterceptor, KeyCache, key_digest
from kingpost.v1 import inference_pb2, inference_pb2_grpc, runner_pb2, runner_pb2_grpc
from kingpost.v1 import scheduler_pb2 as s

KEY = "kp_benchkey_0123456789abcdefghijklmnopqrstu"
BODY = httpbody_pb2.HttpBody(content_type="application/json", data=b'{"text": "hello"}')
BLOCK = 100


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro_fn())
    else:
        uvloop.run(coro_fn())


class NoopRunner(runner_pb2_grpc.RunnerServiceServicer):
    async def Predict(self, request, context):
        yield httpbody_pb2.HttpBody(content_type=request.body.content_type, data=request.body.data)

    async def Ready(self, request, context):
        return runner_pb2.ReadyResponse(ready=True)


def serve_noop_runner(port: int) -> None:
    async def main() -> None:
        server = grpc.aio.server(options=rpc.server_options())
        runner_pb2_grpc.add_RunnerServiceServicer_to_server(NoopRunner(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    _run(main)


def serve_router(port: int, runner_address: str) -> None:
    from kingpost_router.main import PUBLIC_PREFIXES
    from kingpost_router.service import RouterServicer
    from kingpost_router.settings import RouterSettings

    async def main() -> None:
        keys = KeyCache()
        router = RouterServicer(RouterSettings(router_id="router-bench"), keys)
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


async def _wait_ready(address: str, timeout: float = 120.0) -> None:
    async with rpc.channel(address) as channel:
        stub = runner_pb2_grpc.RunnerServiceStub(channel)
        deadline = time.monotonic() + timeout
        while True:
            try:
                reply = await stub.Ready(runner_pb2.ReadyRequest(), timeout=5, wait_for_ready=True)
                if reply.ready:
                    return
            except grpc.aio.AioRpcError:
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.1)


async def measure(runner_address: str, router_address: str, requests: int) -> dict[str, list[float]]:
    async with rpc.channel(runner_address) as direct_channel, rpc.channel(router_address) as router_channel:
        runner = runner_pb2_grpc.RunnerServiceStub(direct_channel).Predict
        router = inference_pb2_grpc.InferenceServiceStub(router_channel).Predict
        direct_request = runner_pb2.RunnerPredictRequest(body=BODY)
        routed_request = inference_pb2.PredictRequest(model_id="mdl_bench", target="development", body=BODY)
        auth = rpc.api_key(KEY)

        # wait_for_ready on both paths: the router process may still be starting at the first call.
        async def direct() -> None:
            async for _ in runner(direct_request, timeout=30, wait_for_ready=True):
                pass

        async def routed() -> None:
            async for _ in router(routed_request, timeout=30, metadata=auth, wait_for_ready=True):
                pass

        paths = {"runner direct": direct, "via router": routed}
        for call in paths.values():  # warm up channels, caches and the runner
            for _ in range(200):
                await call()
        samples: dict[str, list[float]] = {name: [] for name in paths}
        clock = time.perf_counter
        for _ in range(max(1, requests // BLOCK)):
            for name, call in paths.items():
                out = samples[name]
                for _ in range(BLOCK):
                    t0 = clock()
                    await call()
                    out.append(clock() - t0)
        return samples


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000, help="measured requests per path")
    parser.add_argument("--truss", help="serve this Truss with the real runner instead of a no-op servicer")
    args = parser.parse_args()

    runner_port, router_port = _free_port(), _free_port()
    runner_address, router_address = f"127.0.0.1:{runner_port}", f"127.0.0.1:{router_port}"
    spawn = multiprocessing.get_context("spawn")
    runner_proc: subprocess.Popen[bytes] | multiprocessing.process.BaseProcess
    if args.truss:
        runner_proc = subprocess.Popen(
            [sys.executable, "-m", "kingpost_runner", "--truss", args.truss, "--port", str(runner_port)])
        runner_kind = f"kingpost_runner ({os.path.basename(os.path.abspath(args.truss))})"
    else:
        runner_proc = spawn.Process(target=serve_noop_runner, args=(runner_port,), daemon=True)
        runner_proc.start()
        runner_kind = "no-op grpc.aio servicer"
    router_proc = spawn.Process(target=serve_router, args=(router_port, runner_address), daemon=True)
    router_proc.start()
    try:
        asyncio.run(_wait_ready(runner_address))
        samples = asyncio.run(measure(runner_address, router_address, args.requests))
    finally:
        router_proc.kill()
        router_proc.join(10)
        runner_proc.kill()
        if isinstance(runner_proc, subprocess.Popen):
            runner_proc.wait(10)
        else:
            runner_proc.join(10)

    print(f"router overhead, concurrency 1, {args.requests} requests per path, "
          f"runner: {runner_kind}, {os.cpu_count()} CPUs")
    print(f"{'path':<15} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'req/s':>8}")
    for name, values in samples.items():
        mean = statistics.fmean(values)
        print(f"{name:<15} {_percentile(values, 0.5) * 1e3:>8.3f} {_percentile(values, 0.99) * 1e3:>8.3f} "
              f"{mean * 1e3:>8.3f} {1 / mean:>8.0f}")
    direct, routed = samples["runner direct"], samples["via router"]
    print(f"{'added':<15} {(_percentile(routed, 0.5) - _percentile(direct, 0.5)) * 1e3:>8.3f} "
          f"{(_percentile(routed, 0.99) - _percentile(direct, 0.99)) * 1e3:>8.3f} "
          f"{(statistics.fmean(routed) - statistics.fmean(direct)) * 1e3:>8.3f}")


if __name__ == "__main__":
    main()

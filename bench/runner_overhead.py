"""Per-request overhead of the runner: a no-op predict called sequentially over grpc.aio.

    .venv/bin/python bench/runner_overhead.py [--requests 2000]

Starts `python -m kingpost_runner` on a throw-away Truss whose predict returns its input, sends
small JSON bodies one at a time from a single channel, and prints latency percentiles. The figure
is the whole round trip (client stub + gRPC + runner decode/encode + a sync predict in a thread).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import kingpost  # noqa: F401  (first: the gRPC settings kingpost processes run with)
import grpc
from google.api import httpbody_pb2
from google.protobuf import message_factory

from kingpost.v1 import runner_pb2, runner_pb2_grpc

PredictRequest = message_factory.GetMessageClass(
    runner_pb2.DESCRIPTOR.services_by_name["RunnerService"].methods_by_name["Predict"].input_type
)

MODELS = {
    "sync": "class Model:\n    def predict(self, model_input):\n        return model_input\n",
    "async": "class Model:\n    async def predict(self, model_input):\n        return model_input\n",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def measure(address: str, requests: int) -> list[float]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = runner_pb2_grpc.RunnerServiceStub(channel)
        deadline = time.monotonic() + 30
        while True:
            try:
                await stub.Ready(runner_pb2.ReadyRequest(), timeout=1)
                break
            except grpc.aio.AioRpcError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
        body = httpbody_pb2.HttpBody(content_type="application/json", data=b'{"x": 1}')
        request = PredictRequest(body=body)
        for _ in range(200):  # warm-up
            [_ async for _ in stub.Predict(request)]
        samples = []
        for _ in range(requests):
            start = time.perf_counter()
            [_ async for _ in stub.Predict(request)]
            samples.append(time.perf_counter() - start)
        return samples


def bench(kind: str, requests: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        truss = pathlib.Path(tmp)
        (truss / "model").mkdir()
        (truss / "config.yaml").write_text("model_name: noop\n")
        (truss / "model" / "model.py").write_text(MODELS[kind])
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "kingpost_runner", "--truss", str(truss), "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy(),
        )
        try:
            samples = sorted(asyncio.run(measure(f"127.0.0.1:{port}", requests)))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    q = statistics.quantiles(samples, n=100)
    print(f"{kind:5s} predict, {requests} sequential calls: p50 {q[49] * 1e6:.0f} us, "
          f"p90 {q[89] * 1e6:.0f} us, p99 {q[98] * 1e6:.0f} us, {requests / sum(samples):.0f} req/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    for kind in MODELS:
        bench(kind, args.requests)


if __name__ == "__main__":
    main()

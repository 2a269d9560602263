"""Per-request overhead of the runner: a no-op predict called sequentially over grpc.aio.

    .venv/bin/python bench/runner_overhead.py [--requests 2000] [--request-log RATE,...] [--rounds N]
        [--runner-path DIR]

`--request-log 0,1`: each kind with request logging off (0) and at each rate given (the runner's
output then goes to a file, as under the agent). `--runner-path DIR`: a kingpost_runner package from
elsewhere (e.g. `git archive main services/runner`) first on the runner's PYTHONPATH, as a baseline.
`--rounds N` repeats the set, interleaved, so that a change of load hits every variant alike.

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


def bench(kind: str, requests: int, rate: float = 0.0, runner_path: str = "") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        truss = pathlib.Path(tmp)
        (truss / "model").mkdir()
        (truss / "config.yaml").write_text("model_name: noop\n")
        (truss / "model" / "model.py").write_text(MODELS[kind])
        port = free_port()
        env = os.environ.copy()
        if rate > 0:
            env |= {"KINGPOST_REQUEST_LOG_SAMPLE_RATE": str(rate), "KINGPOST_REQUEST_LOG_MAX_BYTES": "1024"}
        if runner_path:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (runner_path, env.get("PYTHONPATH", "")) if p)
        output = open(truss / "runner.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [sys.executable, "-m", "kingpost_runner", "--truss", str(truss), "--port", str(port)],
            stdout=output, stderr=output, env=env,
        )
        try:
            samples = sorted(asyncio.run(measure(f"127.0.0.1:{port}", requests)))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            output.close()
    q = statistics.quantiles(samples, n=100)
    label = f"{kind:5s} predict" + (f" ({runner_path})" if runner_path else "") + \
        (f" request logging {rate:g}" if rate > 0 else "")
    print(f"{label}, {requests} sequential calls: p50 {q[49] * 1e6:.0f} us, "
          f"p90 {q[89] * 1e6:.0f} us, p99 {q[98] * 1e6:.0f} us, {requests / sum(samples):.0f} req/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--request-log", default="0", help="sample rates, comma-separated (0: off)")
    parser.add_argument("--runner-path", default="", help="also run this kingpost_runner, as a baseline")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    rates = [float(r) for r in args.request_log.split(",")]
    for _ in range(args.rounds):
        for kind in MODELS:
            if args.runner_path:
                bench(kind, args.requests, 0.0, args.runner_path)
            for rate in rates:
                bench(kind, args.requests, rate)


if __name__ == "__main__":
    main()

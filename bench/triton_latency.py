"""Triton runner vs Python runner, and Triton's dynamic batching, measured on a real `kingpost up`.

    KINGPOST_TRITON_HOME=.tools/triton .venv/bin/python bench/triton_latency.py [--requests 1000] [--seconds 10]

One `kingpost up` (a CPU tritonserver from `make test`'s .tools/triton), three deployments of one
tiny model (OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1 over four FP32 values):
- `bench/trusses/add_sub_py`: a Python Truss taking and answering the same V2 JSON;
- `tests/trusses/triton_add_sub`: Triton's Python backend with `dynamic_batching`;
- the same repository with batching off (its model renamed add_sub_nobatch).
Then:
1. latency at concurrency 1, interleaved blocks: REST predict with the same V2 JSON body to the
   Python Truss and to Triton, and V2 gRPC (`ModelInfer` through Envoy → router → runner → Triton);
2. throughput under 32 concurrent V2 gRPC clients, batching on vs off, with Triton's own statistics
   (inference_count / execution_count = the mean batch size; read from the replica's tritonserver,
   whose address its log names).
Prints Markdown tables. Stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np
from tritonclient.grpc import service_pb2

from kingpost.client_config import ClientConfig
from kingpost.push import push
from platform_latency import percentile, start_up, stop_up

ROOT = Path(__file__).resolve().parents[1]
PYTHON_TRUSS = ROOT / "bench" / "trusses" / "add_sub_py"
TRITON_REPO = ROOT / "tests" / "trusses" / "triton_add_sub"
A = [1.0, 2.0, 3.0, 4.0]
B = [10.0, 10.0, 10.0, 10.0]
BODY = json.dumps({"inputs": [{"name": "INPUT0", "shape": [1, 4], "datatype": "FP32", "data": A},
                              {"name": "INPUT1", "shape": [1, 4], "datatype": "FP32", "data": B}]}).encode()
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"


def infer_request(model: str) -> bytes:
    request = service_pb2.ModelInferRequest(model_name=model)
    for name, values in (("INPUT0", A), ("INPUT1", B)):
        tensor = request.inputs.add(name=name, datatype="FP32")
        tensor.shape.extend([1, 4])
        request.raw_input_contents.append(np.array(values, dtype=np.float32).tobytes())
    return request.SerializeToString()


def without_batching(workdir: Path) -> Path:
    repo = workdir / "triton_nobatch"
    shutil.copytree(TRITON_REPO, repo)
    (repo / "config.yaml").write_text("model_name: bench-add-sub-nobatch\n")
    (repo / "add_sub").rename(repo / "add_sub_nobatch")
    config = repo / "add_sub_nobatch" / "config.pbtxt"
    text = config.read_text().replace('name: "add_sub"', 'name: "add_sub_nobatch"')
    config.write_text(re.sub(r"^dynamic_batching.*$", "", text, flags=re.MULTILINE))
    return repo


def rest_latencies(port: int, path: str, key: str, n: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
    out = []
    for _ in range(n):
        start = time.perf_counter()
        conn.request("POST", path, body=BODY, headers=headers)
        response = conn.getresponse()
        data = response.read()
        out.append((time.perf_counter() - start) * 1000)
        assert response.status == 200, (response.status, data)
    conn.close()
    return out


async def grpc_latencies(call, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def triton_stats(home: Path, model: str) -> dict:
    """The model's statistics from its replica's tritonserver (found through the replica's log)."""
    for log in home.rglob("*.log"):
        text = log.read_text(errors="replace")
        if f"successfully loaded '{model}'" in text:
            port = re.findall(r"Started HTTPService at 127\.0\.0\.1:(\d+)", text)[-1]
            conn = http.client.HTTPConnection("127.0.0.1", int(port))
            conn.request("GET", f"/v2/models/{model}/stats")
            stats = json.loads(conn.getresponse().read())["model_stats"][0]
            conn.close()
            return stats
    raise SystemExit(f"no replica log names {model}")


async def throughput(channel: grpc.aio.Channel, metadata, model: str, clients: int, seconds: float) -> int:
    call = channel.unary_unary(MODEL_INFER)
    data = infer_request(model)
    done = 0
    stop = time.monotonic() + seconds

    async def client() -> None:
        nonlocal done
        while time.monotonic() < stop:
            await call(data, metadata=metadata)
            done += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return done


async def main_async(args: argparse.Namespace, home: Path, info: dict) -> None:
    config = ClientConfig(url=info["url"], grpc=info["grpc"], api_key=info["api_key"])
    python = (await push(config, PYTHON_TRUSS)).model.id
    batched = (await push(config, TRITON_REPO)).model.id
    unbatched = (await push(config, without_batching(home / "bench"))).model.id
    rest_port = int(config.url.rsplit(":", 1)[1])
    channel = grpc.aio.insecure_channel(config.grpc)
    auth = ("authorization", f"Api-Key {config.api_key}")

    def meta(model_id: str) -> tuple:
        return (auth, ("kingpost-model", model_id), ("kingpost-target", "development"))

    async def v2_grpc() -> None:
        await channel.unary_unary(MODEL_INFER)(infer_request("add_sub"), metadata=meta(batched))

    paths = {"Python runner: REST predict (V2 JSON)": f"/models/{python}/development/predict",
             "Triton runner: REST predict (V2 JSON)": f"/models/{batched}/development/predict",
             "Triton runner: REST V2 infer": f"/models/{batched}/development/v2/models/add_sub/infer"}
    samples: dict[str, list[float]] = {name: [] for name in paths} | {"Triton runner: V2 gRPC ModelInfer": []}
    for path in paths.values():  # warm up
        rest_latencies(rest_port, path, config.api_key, 100)
    await grpc_latencies(v2_grpc, 100)
    blocks = 10
    for _ in range(blocks):
        for name, path in paths.items():
            samples[name] += await asyncio.to_thread(rest_latencies, rest_port, path, config.api_key,
                                                     args.requests // blocks)
        samples["Triton runner: V2 gRPC ModelInfer"] += await grpc_latencies(v2_grpc, args.requests // blocks)

    rates = {}
    for label, model_id, model in (("dynamic batching on", batched, "add_sub"),
                                   ("dynamic batching off", unbatched, "add_sub_nobatch")):
        await throughput(channel, meta(model_id), model, args.clients, 2.0)  # warm up
        before = triton_stats(home, model)
        count = await throughput(channel, meta(model_id), model, args.clients, args.seconds)
        after = triton_stats(home, model)
        inferences = after["inference_count"] - before["inference_count"]
        executions = after["execution_count"] - before["execution_count"]
        rates[label] = (count / args.seconds, inferences / max(1, executions))
    await channel.close()

    print(f"\nmachine: {os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    base = statistics.median(samples["Python runner: REST predict (V2 JSON)"])
    print("| add_sub, concurrency 1 | n | p50 ms | p99 ms | vs Python runner p50 |\n|---|---|---|---|---|")
    for name, values in samples.items():
        p50 = statistics.median(values)
        print(f"| {name} | {len(values)} | {p50:.2f} | {percentile(values, 99):.2f} | {p50 - base:+.2f} ms |")
    print(f"\n| Triton, {args.clients} concurrent V2 gRPC clients, {args.seconds:g} s | requests/s | "
          "mean batch size (Triton's statistics) |\n|---|---|---|")
    for label, (rate, batch) in rates.items():
        print(f"| {label} | {rate:.0f} | {batch:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    triton_home = os.environ.get("KINGPOST_TRITON_HOME") or str(ROOT / ".tools" / "triton")
    with tempfile.TemporaryDirectory(prefix="kp-bench-triton-") as tmp:
        home = Path(tmp)
        proc, info = start_up(home, {"KINGPOST_TRITON_HOME": triton_home})
        try:
            asyncio.run(main_async(args, home, info))
        finally:
            stop_up(proc)


if __name__ == "__main__":
    main()

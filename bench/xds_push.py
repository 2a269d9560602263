"""The router's share of a route push (data_path "envoy"): a route table → Envoy's files, by table size.

    .venv/bin/python bench/xds_push.py [--models 1 10 100 1000] [--tables 20]

For each size, `--tables` route tables that each move every model's replica (so every push
changes every cluster and route), applied in turn by the router's writer (xds_files.XdsFiles):
median milliseconds to build the resources (xds.envoy_resources) and to apply a table (build,
compare, write CDS and RDS), and the size of the routes file. Envoy's own share, file → serving,
is measured end to end by `pytest tests/integration/test_xds.py -k bound -s` (real router, real
Envoy, a request polled until the new route answers).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from kingpost import gateway
from kingpost.gateway_direct import RDS_FILE
from kingpost.v1 import scheduler_pb2 as s
from kingpost_router.routes import RouteSnapshot
from kingpost_router.xds import envoy_resources
from kingpost_router.xds_files import XdsFiles

ACTIVE = s.DEPLOYMENT_STATUS_ACTIVE


def table(models: int, port: int) -> s.RouteTable:
    return s.RouteTable(version=port, models=[s.ModelRoute(
        model_id=f"mdl_{i}", name=f"model-{i}", development_deployment_id=f"dep_{i}",
        environments=[s.EnvironmentRoute(name="production", deployments=[
            s.WeightedDeployment(deployment_id=f"dep_{i}", weight=100)])],
        deployments=[s.DeploymentRoute(deployment_id=f"dep_{i}", active=True, status=ACTIVE, predict_concurrency=4,
                                       replicas=[s.ReplicaRoute(replica_id=f"rep_{i}", address="10.0.0.1:1",
                                                                http_address=f"10.0.0.1:{port}")])])
        for i in range(models)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument("--tables", type=int, default=20)
    args = parser.parse_args()
    descriptor = Path(__file__).resolve().parents[1] / "src" / "kingpost" / "envoy" / "kingpost.binpb"
    print("| models | routes | build resources (ms) | apply a table (ms) | rds.json (KiB) |")
    print("|---|---|---|---|---|")
    for models in args.models:
        with tempfile.TemporaryDirectory() as folder:
            for path, text in gateway.initial_xds_files(
                    folder, rest_port=1, grpc_port=2, admin_port=3, router="127.0.0.1:4", scheduler="127.0.0.1:5",
                    builder="127.0.0.1:6", descriptor_path=descriptor).items():
                path.write_text(text)
            writer = XdsFiles(folder, request_timeout_seconds=600, max_queue_per_deployment=1000,
                              max_body_bytes=100 * 1024 * 1024)
            snapshots = [RouteSnapshot.from_table(table(models, 2000 + k)) for k in range(args.tables)]
            builds, applies = [], []
            for snapshot in snapshots:
                started = time.perf_counter()
                resources = envoy_resources(snapshot)
                builds.append(time.perf_counter() - started)
                writer.apply(snapshot)
                applies.append(writer.last_write_seconds)
            size = (Path(folder) / RDS_FILE).stat().st_size / 1024
            print(f"| {models} | {len(resources.routes)} | {statistics.median(builds) * 1000:.2f} "
                  f"| {statistics.median(applies) * 1000:.2f} | {size:.0f} |")


if __name__ == "__main__":
    main()

"""The router's writes of Envoy's files: what changed only, in an order that never routes to a missing cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kingpost.gateway_direct import BASE_FILE, CDS_FILE, RDS_FILE, read_base
from kingpost.v1 import scheduler_pb2 as s
from kingpost_router import xds_files
from kingpost_router.routes import RouteSnapshot
from kingpost_router.xds_files import XdsFiles

BASE = {"name": "rest", "virtual_hosts": [{"name": "kingpost", "domains": ["*"],
                                           "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "router"}}]}]}


def snapshot(*deployments: str) -> RouteSnapshot:
    return RouteSnapshot.from_table(s.RouteTable(models=[s.ModelRoute(model_id="mdl_a", deployments=[
        s.DeploymentRoute(deployment_id=did, active=True, status=s.DEPLOYMENT_STATUS_ACTIVE, replicas=[
            s.ReplicaRoute(replica_id=f"r_{did}", address="10.0.0.1:1", http_address=f"10.0.0.1:{port}")])
        for port, did in enumerate(deployments, start=9000)])]))


@pytest.fixture
def written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str]]]:
    (tmp_path / BASE_FILE).write_text(json.dumps(BASE))
    writes: list[tuple[str, list[str]]] = []
    real = xds_files.replace_file

    def recording(path: Path, text: str) -> None:
        resources = json.loads(text)["resources"]
        names = [r["name"] for r in resources] if path.name == CDS_FILE else [
            r["route"]["cluster"] for r in resources[0]["virtual_hosts"][0]["routes"]]
        writes.append((path.name, names))
        real(path, text)

    monkeypatch.setattr(xds_files, "replace_file", recording)
    return writes


def files(tmp_path: Path) -> XdsFiles:
    return XdsFiles(tmp_path, request_timeout_seconds=600, max_queue_per_deployment=1000, max_body_bytes=1000)


def test_clusters_come_before_the_routes_that_use_them_and_go_a_table_after(tmp_path, written) -> None:
    envoy = files(tmp_path)
    assert envoy.apply(snapshot("dep_a", "dep_b"))
    assert [name for name, _ in written] == [CDS_FILE, RDS_FILE]
    written.clear()
    assert envoy.apply(snapshot("dep_a"))
    # dep_b stays while Envoy may still hold routes that name it (it may read a later file).
    assert written == [(CDS_FILE, ["dep_a", "dep_b"]), (RDS_FILE, ["dep_a", "dep_a", "dep_a", "dep_a", "router"])]
    written.clear()
    assert envoy.apply(snapshot("dep_a", "dep_c"))
    assert written[0] == (CDS_FILE, ["dep_a", "dep_c"])  # no route has named dep_b since the last table
    assert json.loads((tmp_path / RDS_FILE).read_text())["resources"][0]["name"] == "rest"


def test_an_unchanged_table_writes_nothing(tmp_path, written) -> None:
    envoy = files(tmp_path)
    assert envoy.apply(snapshot("dep_a"))
    written.clear()
    assert not envoy.apply(snapshot("dep_a"))
    assert written == []


def test_without_the_gateways_base_the_error_names_the_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / BASE_FILE} is missing: the gateway writes it"):
        read_base(tmp_path)

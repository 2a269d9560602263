"""The router as Envoy's control plane (data_path "envoy"): each route table as the files Envoy watches.

Envoy reads `cds.json` (the deployments' clusters) and `rds.json` (the REST listener's routes: the
table's in front of the gateway's own, `rest_routes.json`) from one folder, re-reading a file when
another is renamed onto it (kingpost.gateway_direct). Envoy handles those renames in the order
written, but reads each file as it is when it gets to it, so a later write may be what it reads.
Hence: clusters first, then routes; and the clusters file always holds the previous table's
clusters as well as this one's. Whatever Envoy has read, its routes name only clusters it has: a
new cluster is there before a route names it, and a removed one stays until the table after the
one whose routes stopped naming it. A request already on a removed cluster finishes there (Envoy
drains a removed cluster's connections, it does not cut them).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from kingpost.gateway_direct import (CDS_FILE, CLUSTER_TYPE, RDS_FILE, ROUTE_CONFIGURATION_TYPE, discovery, read_base,
                                     replace_file)
from kingpost_router.routes import RouteSnapshot
from kingpost_router.xds import envoy_resources, with_routes

log = logging.getLogger(__name__)


class XdsFiles:
    def __init__(self, xds_dir: str | Path, *, request_timeout_seconds: float, max_queue_per_deployment: int,
                 max_body_bytes: int, router_cluster: str = "router") -> None:
        self._dir = Path(xds_dir)
        self._options = dict(router_cluster=router_cluster, request_timeout_seconds=request_timeout_seconds,
                             max_queue_per_deployment=max_queue_per_deployment, max_body_bytes=max_body_bytes)
        self._base: dict | None = None
        self._clusters: dict[str, dict] = {}  # name → the cluster, the last table's
        self._kept: set[str] = set()  # in the clusters file only for the table before
        self._routes: dict = {}
        self._version = 0
        # Versions name this router's writes (a restarted router's start with a new prefix).
        self._epoch = time.time_ns() // 1_000_000
        # Seconds the last write took (the push's share of snapshot → Envoy serving it).
        self.last_write_seconds = 0.0

    def apply(self, snapshot: RouteSnapshot) -> bool:
        """Write what changed for `snapshot`; False when nothing did (Envoy is not disturbed)."""
        started = time.perf_counter()
        if self._base is None:
            self._base = read_base(self._dir)
        resources = envoy_resources(snapshot, **self._options)
        clusters = {c["name"]: c for c in resources.clusters}
        routes = with_routes(self._base, resources)
        if clusters == self._clusters and routes == self._routes:
            return False
        # Kept one table longer: the routes Envoy may still hold name them.
        kept = {name: cluster for name, cluster in self._clusters.items() if name not in clusters}
        if clusters != self._clusters or set(kept) != self._kept:
            self._write_clusters({**kept, **clusters})
            self._kept = set(kept)
        if routes != self._routes:
            self._version += 1
            replace_file(self._dir / RDS_FILE, json.dumps(
                discovery([routes], ROUTE_CONFIGURATION_TYPE, f"{self._epoch}.{self._version}")))
            self._routes = routes
        self._clusters = clusters
        self.last_write_seconds = time.perf_counter() - started
        log.info("envoy: routes of table %d written (%d clusters, %d routes) in %.1f ms", snapshot.version,
                 len(clusters), len(resources.routes), self.last_write_seconds * 1000)
        return True

    def _write_clusters(self, clusters: dict[str, dict]) -> None:
        self._version += 1
        replace_file(self._dir / CDS_FILE, json.dumps(
            discovery((clusters[name] for name in sorted(clusters)), CLUSTER_TYPE, f"{self._epoch}.{self._version}")))

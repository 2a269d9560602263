"""The direct data path (`data_path = "envoy"`): Envoy sends predict and sync straight to replicas.

The router is then Envoy's control plane: on every route table it writes the REST listener's routes
(RDS) and the deployments' clusters (CDS) as files in one folder, `xds_dir`, which Envoy watches
(`path_config_source`; each file is replaced by a rename, the one change Envoy reacts to).
kingpost_router.xds makes the resources, kingpost_router.xds_files writes them.

This module turns the bootstrap kingpost.gateway renders into the direct path's:
- the REST listener's routes come by RDS from `rds.json`; its own routes (the OpenAPI document,
  websockets, the management API, the fallback to the router) are written once, here, as the
  base (`rest_routes.json`) the router puts the table's routes in front of, and as the first
  `rds.json`, so that the REST API works before the router's first write;
- clusters come by CDS from `cds.json` (empty at first);
- the transcoder matches routes on the incoming path (`/models/.../predict`), so that the route
  the table chose (and the headers it adds) is the one that serves the request;
- the body limit (Envoy's buffer filter, 413), off unless a route turns it on (kingpost_router.xds
  does, on direct routes), after the listener's key check inside Envoy (the `kingpost.api_key`
  Lua filter, kingpost_router.envoy_keys), so a refused key costs no body.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

DATA_PATHS = ("router", "envoy")
CDS_FILE = "cds.json"
RDS_FILE = "rds.json"
BASE_FILE = "rest_routes.json"
CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ROUTE_CONFIGURATION_TYPE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
BODY_LIMIT = "kingpost.body_limit"

Json = dict[str, Any]


def check_data_path(data_path: str) -> str:
    if data_path not in DATA_PATHS:
        raise ValueError(f"data path {data_path!r} is not one of {', '.join(DATA_PATHS)}")
    return data_path


def direct(config: Json, xds_dir: str | Path, *, max_body_bytes: int) -> Json:
    """Change `config` (a rendered bootstrap) in place to the direct path's; returns the REST
    listener's own RouteConfiguration (the base of every rds.json)."""
    xds_dir = Path(xds_dir)
    [rest] = [listener for listener in config["static_resources"]["listeners"] if listener["name"] == "rest"]
    manager = rest["filter_chains"][0]["filters"][0]["typed_config"]
    base = manager.pop("route_config")
    manager["rds"] = {"route_config_name": base["name"], "config_source": _watched(xds_dir / RDS_FILE)}
    config["dynamic_resources"] = {"cds_config": _watched(xds_dir / CDS_FILE)}
    config.setdefault("node", {"id": "kingpost", "cluster": "kingpost"})  # dynamic resources need one
    # Route-level headers (x-baseten-request-id to the runner) are not to be removed by the
    # virtual host's removals of what a client must not forge.
    base["most_specific_header_mutations_wins"] = True
    [host] = base["virtual_hosts"]
    *own, not_found = host["routes"]
    assert not_found["match"] == {"prefix": "/"}, "the template's last REST route is its 404"
    to_host = {"header": {"key": "x-kingpost-host", "value": "%REQ(:authority)%"},
               "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
    # Matched on the incoming path now: the management API by its prefix, inference by the rest
    # (the transcoder still answers 404 for a path that is no method).
    host["routes"] = [*own,
                      {"match": {"prefix": "/v1/"}, "route": {"cluster": "scheduler", "timeout": "0s"}},
                      {"match": {"prefix": "/"}, "route": {"cluster": "router", "timeout": "0s", "idle_timeout": "0s"},
                       "request_headers_to_add": [to_host]}]
    filters = manager["http_filters"]
    at = next(i for i, f in enumerate(filters) if f["name"].endswith("grpc_json_transcoder"))
    filters[at]["typed_config"]["match_incoming_request_route"] = True
    # Just before the transcoder, so after the key check (the api_key Lua filter, headers only).
    filters[at:at] = [
        {"name": BODY_LIMIT, "disabled": True, "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
            "max_request_bytes": max_body_bytes}},
    ]
    return base


def initial_files(xds_dir: str | Path, base: Json) -> dict[Path, str]:
    """What Envoy reads at its start: the base routes (also kept for the router) and no cluster."""
    xds_dir = Path(xds_dir)
    return {xds_dir / BASE_FILE: json.dumps(base, indent=1),
            xds_dir / RDS_FILE: json.dumps(discovery([base], ROUTE_CONFIGURATION_TYPE, 0)),
            xds_dir / CDS_FILE: json.dumps(discovery([], CLUSTER_TYPE, 0))}


def discovery(resources: Iterable[Json], type_url: str, version: int | str) -> Json:
    """A DiscoveryResponse: the shape of a file Envoy watches (or of one ADS push)."""
    return {"version_info": str(version), "type_url": type_url,
            "resources": [{"@type": type_url, **resource} for resource in resources]}


def replace_file(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path` and rename it into place: Envoy reacts to the
    rename (a move is atomic), never to a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_base(xds_dir: str | Path) -> Json:
    """The REST listener's own routes, as the gateway wrote them."""
    path = Path(xds_dir) / BASE_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing: the gateway writes it (kingpost up, or "
                                f"python -m kingpost.gateway --data-path envoy)") from None


def _watched(path: Path) -> Json:
    # The file itself, not `watched_directory`: each file's rename is then its own event, in the
    # order written (clusters before the routes that use them).
    return {"path_config_source": {"path": str(path)}, "resource_api_version": "V3"}

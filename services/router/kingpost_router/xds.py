"""The route snapshot as Envoy resources: the router's routing decisions as data Envoy carries out.

    resources = envoy_resources(snapshot, router_cluster="router")
    resources.clusters       # one per deployment with ready replicas: its replicas as endpoints
    resources.routes         # one per predict path and model-{id} host the table can serve
    route_configuration(resources, after=[...])   # a RouteConfiguration; as_discovery(...) for xDS

Plain dicts in Envoy's v3 JSON shape, the same for static resources, files Envoy watches or ADS.
The first step of moving the hot path into Envoy (docs/architecture.md, "The hot path in Envoy");
nothing serves these yet. What each router behaviour becomes:

- A deployment with ready replicas is a cluster named by its id (stats: `cluster.<id>.*`):
  `LEAST_REQUEST` over two random choices (the router's power of two choices), HTTP/2 to the runner.
- `predict_concurrency` as a hard per-replica limit: Envoy's per-host circuit breaker supports
  `max_connections` only, so each runner gets one HTTP/2 connection (`per_host_thresholds`) carrying
  at most `predict_concurrency` streams (`max_concurrent_streams`); more requests wait in the
  cluster's pending queue, bounded by `max_pending_requests` (the router's queue bound), beyond
  which Envoy answers 503 with the flag UO (which the listener is to map to 429). Under the
  back-pressure policy `reject` the bound is one per replica, not 0: a request also waits there
  while its replica's connection is being made, and 0 would refuse the first request to a runner.
- Retries only where nothing reached a model: connect failure, refused stream, reset before the
  request was sent; once, on another replica.
- A deployment with no ready replica (scaled to zero, waking up, building, failed, inactive) is
  served by the router, which holds, pokes, or answers the error: its routes go to the router
  cluster with `x-kingpost-deployment` naming the deployment chosen here (so that a canary split
  is drawn once, by Envoy) and `x-kingpost-host` carrying the Host.
- Environments and canaries are `weighted_clusters` with the table's weights.
- Requests the table cannot route (an unknown model, environment or deployment) match no route
  here: the listener sends them on to the router, whose answer names what is missing.

Requests to a runner cluster arrive as the transcoder makes them,
`/kingpost.v1.InferenceService/Predict` with a PredictRequest: the runner must serve that method
before this is wired in (issue 20).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kingpost_router.routes import (DEPLOYMENT_KEY, DEVELOPMENT, HOST_KEY, PRODUCTION, Deployment, Model,
                                   RouteSnapshot)

CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ROUTE_CONFIGURATION_TYPE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
_HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_LEAST_REQUEST = "type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest"
_PREVIOUS_HOSTS = "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
# Envoy's defaults (1,024 requests or connections per cluster, 3 concurrent retries) would cap a
# deployment's long streams and retries; the real limits are per replica, below.
_UNLIMITED = 100_000
# Only where the request never reached a model: connect failure, HTTP/2 REFUSED_STREAM, and a
# reset before the request was sent.
RETRY_ON = "connect-failure,refused-stream,reset-before-request"

Json = dict[str, Any]


@dataclass(frozen=True)
class EnvoyResources:
    clusters: list[Json]
    routes: list[Json]


def envoy_resources(snapshot: RouteSnapshot, *, router_cluster: str = "router",
                    request_timeout_seconds: float = 600.0,
                    max_queue_per_deployment: int = 1000) -> EnvoyResources:
    """Clusters for the deployments that have ready replicas, and a route per predict path of
    every model (by id and by name, under `/models/{model}` and on `model-{model}.` hosts)."""
    served = {d.deployment_id for d in snapshot.by_deployment.values() if _direct(d)}
    clusters = [cluster(snapshot.by_deployment[did], max_queue_per_deployment) for did in sorted(served)]
    routes: list[Json] = []
    for by_name in (False, True):  # ids first: an id wins over a model named like one
        for model in sorted(snapshot.by_id.values(), key=lambda m: m.model_id):
            key = model.name if by_name else model.model_id
            if not key or (by_name and snapshot.by_id.get(key) is not None):
                continue
            routes.extend(_model_routes(model, key, router_cluster, request_timeout_seconds))
    return EnvoyResources(clusters, routes)


def cluster(deployment: Deployment, max_queue: int) -> Json:
    """The deployment's ready replicas as one cluster (see the module docstring for the limits)."""
    endpoints = [(_split_address(r.address), r.replica_id) for r in deployment.replicas]
    limit = deployment.predict_concurrency
    http2: Json = {"max_concurrent_streams": limit} if limit > 0 else {}
    # Under `reject`, one request per replica may still wait: the first requests wait while their
    # connection is made, and Envoy cannot tell that wait from a wait for a busy replica.
    pending = len(endpoints) if deployment.reject_on_full else max_queue
    breakers: Json = {"thresholds": [{
        "max_connections": _UNLIMITED, "max_requests": _UNLIMITED, "max_retries": _UNLIMITED,
        "max_pending_requests": pending}]}
    if limit > 0:
        breakers["per_host_thresholds"] = [{"max_connections": 1}]
    return {
        "name": deployment.deployment_id,
        # STATIC takes IP literals only; a host name is resolved (and re-resolved) by Envoy.
        "type": "STATIC" if all(_is_ip(host) for (host, _), _ in endpoints) else "STRICT_DNS",
        "connect_timeout": "1s",
        "load_balancing_policy": {"policies": [{"typed_extension_config": {
            "name": "envoy.load_balancing_policies.least_request",
            "typed_config": {"@type": _LEAST_REQUEST, "choice_count": 2}}}]},
        "typed_extension_protocol_options": {_HTTP_OPTIONS: {
            "@type": f"type.googleapis.com/{_HTTP_OPTIONS}",
            "explicit_http_config": {"http2_protocol_options": http2}}},
        "circuit_breakers": breakers,
        # A runner that refuses a connection (it crashed; its agent restarts it) is left out at
        # once, as the router marks it unreachable, and tried again after a second (doubling while
        # it keeps refusing). Only connection failures count: a model's own 5xx ejects nothing.
        "outlier_detection": {
            "split_external_local_origin_errors": True, "consecutive_local_origin_failure": 1,
            "enforcing_consecutive_local_origin_failure": 100, "enforcing_consecutive_5xx": 0,
            "enforcing_success_rate": 0, "enforcing_local_origin_success_rate": 0,
            "interval": "1s", "base_ejection_time": "1s", "max_ejection_time": "30s",
            "max_ejection_percent": 100},
        "load_assignment": {"cluster_name": deployment.deployment_id, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}},
             "metadata": {"filter_metadata": {"kingpost": {"replica_id": replica_id}}}}
            for (host, port), replica_id in endpoints]}]},
    }


def route_configuration(resources: EnvoyResources, *, name: str = "kingpost",
                        after: Sequence[Json] = ()) -> Json:
    """One virtual host for every domain: the table's routes, then `after` (the listener's own:
    management API, the fallback to the router)."""
    return {"name": name, "virtual_hosts": [{"name": name, "domains": ["*"],
                                              "routes": [*resources.routes, *after]}]}


def as_discovery(resources: Iterable[Json], type_url: str, version: int | str) -> Json:
    """A DiscoveryResponse (the shape of a file Envoy watches, or of one ADS push)."""
    return {"version_info": str(version), "type_url": type_url,
            "resources": [{"@type": type_url, **resource} for resource in resources]}


# -- routes ----------------------------------------------------------------------------------

def _model_routes(model: Model, key: str, router: str, timeout: float) -> Iterator[Json]:
    """Routes for one model under one key (its id or its name), by path and by host."""
    targets: list[tuple[str, list[tuple[str, int]]]] = []
    if model.development_deployment_id in model.deployments:
        targets.append((f"/{DEVELOPMENT}", [(model.development_deployment_id, 1)]))
    production = model.environments.get(PRODUCTION)
    if production is not None and production.split:
        targets.append((f"/{PRODUCTION}", list(production.split)))
    for env in sorted(model.environments.values(), key=lambda e: e.name):
        if env.split:
            targets.append((f"/environments/{env.name}", list(env.split)))
    for did in sorted(model.deployments):
        targets.append((f"/deployment/{did}", [(did, 1)]))
    host = {"name": ":authority", "string_match": {"prefix": f"model-{key}."}}
    for prefix, split in targets:
        action = _action(model, split, router, timeout)
        if action is None:
            continue
        yield {"match": {"path": f"/models/{key}{prefix}/predict"}, **action}
        yield {"match": {"path": f"{prefix}/predict", "headers": [host]}, **action}


def _action(model: Model, split: list[tuple[str, int]], router: str, timeout: float) -> Json | None:
    """Where a target goes: its deployment's cluster, the router for one with no ready replica,
    or weighted clusters for a split; None when it names no known deployment (the router answers)."""
    # As the router's weighted_choice: all weights 0 means the first.
    positive = [(did, weight) for did, weight in split if weight > 0] or [(split[0][0], 1)]
    if any(did not in model.deployments for did, _ in positive):
        return None
    weighted = [(model.deployments[did], weight) for did, weight in positive]
    # The router bounds its requests itself (holding at zero included), and more kindly.
    limit = _duration(timeout) if all(_direct(d) for d, _ in weighted) else "0s"
    if len(weighted) == 1:
        deployment = weighted[0][0]
        if _direct(deployment):
            return {"route": _with_retry({"cluster": deployment.deployment_id, "timeout": limit})}
        return {"route": _with_retry({"cluster": router, "timeout": limit}),
                "request_headers_to_add": _to_router(deployment)}
    clusters = [{"name": d.deployment_id, "weight": weight} if _direct(d) else
                {"name": router, "weight": weight, "request_headers_to_add": _to_router(d)}
                for d, weight in weighted]
    return {"route": _with_retry({"weighted_clusters": {"clusters": clusters}, "timeout": limit})}


def _with_retry(action: Json) -> Json:
    return {**action, "retry_policy": {
        "retry_on": RETRY_ON, "num_retries": 1, "host_selection_retry_max_attempts": 5,
        "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts",
                                  "typed_config": {"@type": _PREVIOUS_HOSTS}}]}}


def _to_router(deployment: Deployment) -> list[Json]:
    """The deployment Envoy chose, and the Host (host-addressed routes name the model only there);
    overwritten, so that a client cannot choose for it."""
    return [{"header": {"key": DEPLOYMENT_KEY, "value": deployment.deployment_id},
             "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
            {"header": {"key": HOST_KEY, "value": "%REQ(:authority)%"},
             "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]


def _direct(deployment: Deployment) -> bool:
    """Envoy sends its requests straight to its replicas (else the router serves it)."""
    return deployment.active and bool(deployment.replicas)


def _split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"replica address {address!r} is not 'host:port'")
    return host, int(port)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _duration(seconds: float) -> str:
    """600.0 → "600s", 0.25 → "0.25s" (protobuf JSON Duration)."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"

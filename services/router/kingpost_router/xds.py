"""The route snapshot as Envoy resources: the router's routing decisions as data Envoy carries out.

    resources = envoy_resources(snapshot, router_cluster="router")
    resources.clusters       # one per deployment Envoy serves directly: its replicas' HTTP data planes
    resources.routes         # one per predict and sync path and model-{id} host the table can serve
    with_routes(base, resources)   # the listener's own RouteConfiguration with these routes first

Plain dicts in Envoy's v3 JSON shape. The router writes them on every route table when its
`data_path` is "envoy" (docs/architecture.md, "The hot path in Envoy"). What each router
behaviour becomes:

- A deployment whose ready replicas all serve HTTP (`Replica.http_address`) is a cluster named by
  its id (xds_cluster.py: least request, `predict_concurrency` per replica, the queue bound).
- Its routes go straight there: `{prefix}/predict` is rewritten to `/predict` and
  `{prefix}/sync/{path}` to `/sync/{path}` (query kept), the body and headers as sent but the
  caller's `authorization`, plus `x-baseten-request-id`. The transcoder and the Lua filter are off
  there (the runner answers plain HTTP, errors already as {"error": ...}); the body is limited
  (413), the key checked inside Envoy before the body (`key_check`: envoy_keys.py's Lua check
  against the table's digests, no hop) and the request bounded by the router's deadline.
- Retries only where nothing reached a model: connect failure, refused stream, reset before the
  request was sent; once, on another replica.
- A deployment with no ready replica (scaled to zero, waking up, building, failed, inactive), or
  whose replicas serve no HTTP (Triton), is served by the router through the transcoder, as
  before: its routes go to the router cluster with `x-kingpost-deployment` naming the deployment
  chosen here (so that a canary split is drawn once, by Envoy) and `x-kingpost-host` the Host.
- Environments and canaries are `weighted_clusters` with the table's weights. A split with a
  share Envoy cannot serve directly goes to the router whole, which draws it (Envoy cannot turn
  the transcoder on for one share of a route and off for another).
- Requests the table cannot route (an unknown model, environment or deployment) match no route
  here: the listener's own routes send them on to the router, whose answer names what is missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from kingpost.gateway_direct import BODY_LIMIT
from kingpost_router.envoy_keys import route_key_fields
from kingpost_router.routes import DEPLOYMENT_KEY, DEVELOPMENT, HOST_KEY, PRODUCTION, Deployment, Model, RouteSnapshot
from kingpost_router.xds_cluster import cluster, direct

_FILTER_CONFIG = "type.googleapis.com/envoy.config.route.v3.FilterConfig"
_BODY_LIMIT_PER_ROUTE = "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute"
_PREVIOUS_HOSTS = "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
# Only where the request never reached a model: connect failure, HTTP/2 REFUSED_STREAM, and a
# reset before the request was sent.
RETRY_ON = "connect-failure,refused-stream,reset-before-request"
# The REST listener's filters a direct route turns off (the gRPC ones); KEY_CHECK and BODY_LIMIT,
# off by default (kingpost.gateway_direct), it turns on.
TRANSCODER = "envoy.filters.http.grpc_json_transcoder"
LUA = "envoy.filters.http.lua"
BIG_BODY_KEY_CHECK = "envoy.filters.http.ext_authz"
REQUEST_ID = "x-baseten-request-id"

Json = dict[str, Any]


@dataclass(frozen=True)
class EnvoyResources:
    clusters: list[Json]
    routes: list[Json]


def envoy_resources(snapshot: RouteSnapshot, *, router_cluster: str = "router",
                    request_timeout_seconds: float = 600.0, max_queue_per_deployment: int = 1000,
                    max_body_bytes: int = 100 * 1024 * 1024) -> EnvoyResources:
    """Clusters for the deployments Envoy serves directly, and a route per predict and sync path of
    every model (by id and by name, under `/models/{model}` and on `model-{model}.` hosts)."""
    served = {d.deployment_id for d in snapshot.by_deployment.values() if direct(d)}
    clusters = [cluster(snapshot.by_deployment[did], max_queue_per_deployment) for did in sorted(served)]
    limits = _Limits(router_cluster, request_timeout_seconds, max_body_bytes, frozenset(served))
    models = sorted(snapshot.by_id.values(), key=lambda m: m.model_id)
    actions = {model.model_id: list(_model_actions(model, limits, key_check(snapshot, model))) for model in models}
    routes: list[Json] = []
    for by_name in (False, True):  # ids first: an id wins over a model named like one
        for model in models:
            key = model.name if by_name else model.model_id
            if not key or (by_name and snapshot.by_id.get(key) is not None):
                continue
            host = [{"name": ":authority", "string_match": {"prefix": f"model-{key}."}}]
            for match, path, action in actions[model.model_id]:
                routes.append({"match": {match: f"/models/{key}{path}"}, **action})
                routes.append({"match": {match: path, "headers": host}, **action})
    return EnvoyResources(clusters, routes)


def key_check(snapshot: RouteSnapshot, model: Model) -> Json:
    """The fields that check the caller's key on a direct route to `model`, inside Envoy
    (envoy_keys.py: the `kingpost.api_key` Lua filter against the table's digests; no hop, and the
    key before the body). The router's ext_authz check (KEY_CHECK, authz.py) stays in the listener,
    off, for a deployment that wants the router to decide."""
    return route_key_fields(snapshot, model)


def route_configuration(resources: EnvoyResources, *, name: str = "kingpost",
                        after: Iterable[Json] = ()) -> Json:
    """One virtual host for every domain: the table's routes, then `after` (the listener's own:
    management API, the fallback to the router)."""
    return {"name": name, "virtual_hosts": [{"name": name, "domains": ["*"],
                                              "routes": [*resources.routes, *after]}]}


def with_routes(base: Json, resources: EnvoyResources) -> Json:
    """`base` (the listener's own RouteConfiguration, one virtual host) with the table's routes
    ahead of its own."""
    [host] = base["virtual_hosts"]
    return {**base, "virtual_hosts": [{**host, "routes": [*resources.routes, *host["routes"]]}]}


# -- routes ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Limits:
    router: str  # the router's cluster
    timeout: float  # a direct request's deadline, seconds
    max_body: int  # bytes
    served: frozenset[str]  # the deployments Envoy serves directly (xds_cluster.direct)


def _model_actions(model: Model, limits: _Limits, keys: Json) -> Iterator[tuple[str, str, Json]]:
    """(match kind, path under the model's prefix, action) of each of the model's routes; the
    same under its id and its name, by path and by host."""
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
    for prefix, split in targets:
        weighted = _weighted(model, split)
        if weighted is None:
            continue
        for path, rewrite, match in ((f"{prefix}/predict", "/predict", "path"),
                                     (f"{prefix}/sync/", "/sync/", "prefix")):
            yield match, path, _action(model, weighted, limits, rewrite, keys)


def _weighted(model: Model, split: list[tuple[str, int]]) -> list[tuple[Deployment, int]] | None:
    """A target's deployments with positive weights; None when it names one the model lacks."""
    # As the router's weighted_choice: all weights 0 means the first.
    positive = [(did, weight) for did, weight in split if weight > 0] or [(split[0][0], 1)]
    if any(did not in model.deployments for did, _ in positive):
        return None
    return [(model.deployments[did], weight) for did, weight in positive]


def _action(model: Model, weighted: list[tuple[Deployment, int]], limits: _Limits, rewrite: str,
            keys: Json) -> Json:
    """Where a target goes: straight to its deployments' clusters, or to the router (the activator)."""
    router = limits.router
    if all(d.deployment_id in limits.served for d, _ in weighted):
        return _direct(weighted, limits, rewrite, keys)
    # The router bounds its requests itself (holding at zero included), and more kindly.
    if len(weighted) == 1:
        return {"route": _with_retry({"cluster": router, "timeout": "0s", "idle_timeout": "0s"}),
                "request_headers_to_add": _to_router(weighted[0][0])}
    if any(d.deployment_id in limits.served for d, _ in weighted):  # a mixed split: the router draws it
        return {"route": _with_retry({"cluster": router, "timeout": "0s", "idle_timeout": "0s"}),
                "request_headers_to_add": [_host_header()]}
    clusters = [{"name": router, "weight": weight, "request_headers_to_add": _to_router(d)}
                for d, weight in weighted]
    return {"route": _with_retry({"weighted_clusters": {"clusters": clusters}, "timeout": "0s",
                                  "idle_timeout": "0s"})}


def _direct(weighted: list[tuple[Deployment, int]], limits: _Limits, rewrite: str, keys: Json) -> Json:
    """A route Envoy serves itself: the runner's own path, its answer as it comes."""
    if len(weighted) == 1:
        to: Json = {"cluster": weighted[0][0].deployment_id}
    else:
        to = {"weighted_clusters": {"clusters": [{"name": d.deployment_id, "weight": weight}
                                                 for d, weight in weighted]}}
    return {
        # The deadline covers the whole answer, a stream included; no idle timeout below it.
        "route": _with_retry({**to, "prefix_rewrite": rewrite, "timeout": _duration(limits.timeout),
                              "idle_timeout": "0s"}),
        "request_headers_to_add": [{"header": {"key": REQUEST_ID, "value": "%REQ(x-request-id)%"},
                                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}],
        "request_headers_to_remove": ["authorization"],
        "typed_per_filter_config": {
            TRANSCODER: {"@type": _FILTER_CONFIG, "disabled": True},
            LUA: {"@type": _FILTER_CONFIG, "disabled": True},
            BODY_LIMIT: {"@type": _FILTER_CONFIG, "config": {
                "@type": _BODY_LIMIT_PER_ROUTE, "buffer": {"max_request_bytes": limits.max_body}}},
            **keys["typed_per_filter_config"]},
        "metadata": keys["metadata"],
    }


def _with_retry(action: Json) -> Json:
    return {**action, "retry_policy": {
        "retry_on": RETRY_ON, "num_retries": 1, "host_selection_retry_max_attempts": 5,
        "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts",
                                  "typed_config": {"@type": _PREVIOUS_HOSTS}}]}}


def _host_header() -> Json:
    return {"header": {"key": HOST_KEY, "value": "%REQ(:authority)%"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}


def _to_router(deployment: Deployment) -> list[Json]:
    """The deployment Envoy chose, and the Host (host-addressed routes name the model only there);
    overwritten, so that a client cannot choose for it."""
    return [{"header": {"key": DEPLOYMENT_KEY, "value": deployment.deployment_id},
             "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}, _host_header()]


def _duration(seconds: float) -> str:
    """600.0 → "600s", 0.25 → "0.25s" (protobuf JSON Duration)."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"

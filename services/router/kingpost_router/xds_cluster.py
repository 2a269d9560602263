"""One deployment's ready replicas as an Envoy cluster: their HTTP/1.1 data planes as endpoints.

Pure: a `Deployment` in, a dict in Envoy's v3 JSON shape out (xds.py builds the rest).

- Named by the deployment's id (stats: `cluster.<id>.*`); `LEAST_REQUEST` over two random choices
  (the router's power of two choices); plain HTTP/1.1 to each runner's `http_address`.
- `predict_concurrency` as a hard per-replica limit: HTTP/1.1 carries one request per connection,
  so the per-host circuit breaker's `max_connections` is the replica's limit. More requests wait in
  the cluster's pending queue, bounded by `max_pending_requests` (the router's queue bound); beyond
  it Envoy answers 503 with the flag UO, which the REST listener turns into a 429 whose message is
  the router's for the same refusal, `limit_error` in the cluster's `kingpost` metadata
  (local_reply_config in the gateway's template).
- Under the back-pressure policy `reject` a request over the limit is refused at once, not queued:
  the limit is the cluster's `max_requests` (`predict_concurrency` x replicas), which Envoy checks
  as it gives a request a connection, and each replica may have one connection more than its limit,
  so an extra request gets a connection and is refused (503 UO, the same 429) instead of waiting
  for one to free. The pending queue cannot be the bound here: a request also waits there while
  its connection is made, so 0 would refuse every request that needs a new connection (the first
  one to a runner included); one per replica is that wait.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from kingpost_router.routes import Deployment

Json = dict[str, Any]

_HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_LEAST_REQUEST = "type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest"
# Envoy's defaults (1,024 requests or connections per cluster, 3 concurrent retries) would cap a
# deployment's long streams and retries; the real limits are per replica, below.
UNLIMITED = 100_000


def direct(deployment: Deployment) -> bool:
    """Envoy sends its requests straight to its replicas (else the router serves it): it is active
    and every ready replica serves HTTP (a Triton runner serves none: the router serves it)."""
    return deployment.active and bool(deployment.replicas) and all(_valid(r.http_address) for r in deployment.replicas)


def cluster(deployment: Deployment, max_queue: int) -> Json:
    """The deployment's ready replicas as one cluster (see the module docstring for the limits)."""
    endpoints = [(split_address(r.http_address), r.replica_id) for r in deployment.replicas]
    limit = deployment.predict_concurrency
    reject = deployment.reject_on_full and limit > 0
    breakers: Json = {"thresholds": [{
        "max_connections": UNLIMITED, "max_requests": limit * len(endpoints) if reject else UNLIMITED,
        "max_retries": UNLIMITED, "max_pending_requests": len(endpoints) if reject else max_queue}]}
    if limit > 0:
        breakers["per_host_thresholds"] = [{"max_connections": limit + 1 if reject else limit}]
    did = deployment.deployment_id
    limit_error = (  # the router's words (slots.py) for the same refusal
        f"deployment '{did}' is at its limit: every replica runs {limit} requests at once "
        f"(predict_concurrency) and its back-pressure policy is 'reject'" if reject else
        f"deployment '{did}' is at its limit: {max_queue} requests already wait for a replica "
        f"(queue limit {max_queue})")
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
            "explicit_http_config": {"http_protocol_options": {}}}},
        "circuit_breakers": breakers,
        "metadata": {"filter_metadata": {"kingpost": {"limit_error": limit_error}}},
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


def split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"replica address {address!r} is not 'host:port'")
    return host, int(port)


def _valid(address: str) -> bool:
    """An address Envoy can take ("" when the runner serves no HTTP; a bad one is the router's to serve)."""
    try:
        split_address(address)
    except ValueError:
        return False
    return True


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True

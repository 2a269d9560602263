"""The route table as the router holds it, and the one decision made on it: which deployment.

A `RouteSnapshot` is built once per table the scheduler sends and never changed afterwards, so
the hot path reads it without locks: a request that started on the old snapshot finishes on it.

    resolve(snapshot, "my-model", target="production", environment="", deployment_id="", host="")
        → the production environment's deployment (a weighted choice during a canary)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from kingpost import autoscaling_settings, deployment_status
from kingpost.errors import InvalidArgument, NotFound, Unavailable
from kingpost.v1 import scheduler_pb2

DEVELOPMENT = "development"
PRODUCTION = "production"
HOST_KEY = "x-kingpost-host"
# The deployment Envoy already chose (its routes to the router, xds.py), so that a canary split is
# drawn once; honoured only as a deployment of the model the request names.
DEPLOYMENT_KEY = "x-kingpost-deployment"
# A routable deployment in one of these states with no ready replica holds requests until one is
# ready (it is deploying, scaled to zero or waking up); any other state without replicas (BUILDING,
# FAILED) answers 503 at once. DEPLOYING holds too: a client that saw ACTIVE from the scheduler may
# reach this router a moment before the table that says so, and must not get a 503 for it.
HOLD_STATUSES = frozenset({deployment_status.ACTIVE, deployment_status.DEPLOYING,
                           deployment_status.SCALED_TO_ZERO, deployment_status.WAKING_UP})


@dataclass(frozen=True, slots=True)
class Replica:
    replica_id: str
    address: str
    # The runner's HTTP/1.1 data plane, which Envoy calls directly ("" when it serves none).
    http_address: str = ""


@dataclass(frozen=True, slots=True)
class Deployment:
    deployment_id: str
    model_id: str
    model_name: str
    # False once deactivated: it answers 404, as a deleted one does.
    active: bool
    # Its status name (kingpost.deployment_status), and why it is not serving ("" while it serves).
    status: str
    status_reason: str
    # Requests one replica takes at once; 0 means no limit.
    predict_concurrency: int
    # Ready replicas only; empty while building, deploying or scaled to zero.
    replicas: tuple[Replica, ...]
    # 429 at once when every replica is full, instead of waiting in the queue (backpressure_policy
    # "reject").
    reject_on_full: bool = False
    # Seconds to hold requests while no replica is ready; 0 = the router's default.
    cold_start_timeout_seconds: float = 0.0
    # Deployments to wake with this one (a chain entrypoint's dependencies).
    wake_with: tuple[str, ...] = ()

    @property
    def holds(self) -> bool:
        """True when requests wait for a replica rather than answer 503 (scaled to zero, waking up)."""
        return self.active and self.status in HOLD_STATUSES

    def why_not_serving(self) -> str:
        """"status: SCALED_TO_ZERO: the next request wakes it", for a caller's error message."""
        status = self.status or "no ready replica"
        return f"status: {status}: {self.status_reason}" if self.status_reason else f"status: {status}"


@dataclass(frozen=True, slots=True)
class Environment:
    name: str
    # (deployment_id, weight); weights sum to 100, one entry outside a canary.
    split: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Model:
    model_id: str
    name: str
    development_deployment_id: str
    environments: Mapping[str, Environment]
    deployments: Mapping[str, Deployment]


@dataclass(frozen=True, slots=True)
class RouteSnapshot:
    version: int
    by_id: Mapping[str, Model]
    by_name: Mapping[str, Model]
    api_key_sha256: frozenset[str]
    # Every deployment of every model, by id.
    by_deployment: Mapping[str, Deployment]
    # What signs async results' webhooks, newest first.
    webhook_secrets: tuple[str, ...] = ()
    # Invoke-only keys (Baseten's WORKSPACE_INVOKE), by digest: the model ids each may call (empty:
    # every model). The other keys of `api_key_sha256` manage and invoke everything.
    invoke_only: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def empty(cls) -> RouteSnapshot:
        return cls(0, MappingProxyType({}), MappingProxyType({}), frozenset(), MappingProxyType({}))

    @classmethod
    def from_table(cls, table: scheduler_pb2.RouteTable) -> RouteSnapshot:
        by_id: dict[str, Model] = {}
        by_name: dict[str, Model] = {}
        by_deployment: dict[str, Deployment] = {}
        for m in table.models:
            deployments = {
                d.deployment_id: Deployment(
                    deployment_id=d.deployment_id,
                    model_id=m.model_id,
                    model_name=m.name,
                    active=d.active,
                    status=deployment_status.name(d.status),
                    status_reason=d.status_reason,
                    predict_concurrency=max(0, d.predict_concurrency),
                    replicas=tuple(Replica(r.replica_id, r.address, r.http_address) for r in d.replicas),
                    reject_on_full=d.backpressure_policy == autoscaling_settings.REJECT,
                    cold_start_timeout_seconds=max(0.0, d.cold_start_timeout_seconds),
                    wake_with=tuple(d.wake_with),
                )
                for d in m.deployments
            }
            by_deployment.update(deployments)
            environments = {
                e.name: Environment(e.name, tuple((w.deployment_id, w.weight) for w in e.deployments))
                for e in m.environments
            }
            model = Model(
                model_id=m.model_id,
                name=m.name,
                development_deployment_id=m.development_deployment_id,
                environments=MappingProxyType(environments),
                deployments=MappingProxyType(deployments),
            )
            by_id[m.model_id] = model
            if m.chain_id:  # a chain's entrypoint: /chains/{chain_id}/... resolves to it (ids have prefixes)
                by_id[m.chain_id] = model
            if m.name:
                by_name[m.name] = model
        return cls(table.version, MappingProxyType(by_id), MappingProxyType(by_name),
                   frozenset(table.api_key_sha256), MappingProxyType(by_deployment),
                   tuple(table.webhook_secrets),
                   MappingProxyType({digest: frozenset(scope.model_ids)
                                     for digest, scope in table.invoke_only_keys.items()}))

    def addresses(self) -> frozenset[str]:
        """Every replica address in the table: the runners the router keeps a channel to."""
        return frozenset(
            r.address for m in self.by_id.values() for d in m.deployments.values() for r in d.replicas
        )

    def deployments(self) -> list[Deployment]:
        return list(self.by_deployment.values())


def model_from_host(host: str) -> str:
    """`model-abc123.example.com:8080` → "abc123", as Baseten's hosts name models."""
    label = host.split(".", 1)[0].split(":", 1)[0]
    if label.startswith("model-") and len(label) > len("model-"):
        return label[len("model-"):]
    if label.startswith("chain-") and len(label) > len("chain-"):
        return label[len("chain-"):]
    if not host:
        raise InvalidArgument(
            "the request names no model: call /models/{model_id}/... or use a host model-{model_id}.<domain>"
        )
    raise NotFound(f"host '{host}' names no model: expected model-{{model_id}}.<domain>")


def resolve(
    snapshot: RouteSnapshot,
    model_id_or_name: str,
    target: str,
    environment: str,
    deployment_id: str,
    host: str = "",
    *,
    rng: Callable[[], float] = random.random,
) -> Deployment:
    """The deployment a request goes to, or the error the caller sees. It has ready replicas,
    or none while it `holds` (scaled to zero, waking up): the caller waits for one.

    Exactly one of `target` ("development" / "production"), `environment` or `deployment_id`
    names the deployment; none at all means production, as on Baseten.
    """
    key = model_id_or_name or model_from_host(host)
    model = snapshot.by_id.get(key) or snapshot.by_name.get(key)
    if model is None:
        raise NotFound(f"model '{key}' not found")

    if deployment_id:
        deployment = model.deployments.get(deployment_id)
        if deployment is None:
            raise NotFound(f"deployment '{deployment_id}' not found for model '{key}'")
    elif environment or target == PRODUCTION or not target:
        name = environment or PRODUCTION
        env = model.environments.get(name)
        if env is None or not env.split:
            if name == PRODUCTION:
                raise NotFound(f"model '{key}' has no production deployment: promote one first")
            raise NotFound(f"environment '{name}' not found for model '{key}'")
        chosen = weighted_choice(env.split, rng)
        deployment = model.deployments.get(chosen)
        if deployment is None:
            raise NotFound(f"environment '{name}' of model '{key}' points at no known deployment")
    elif target == DEVELOPMENT:
        deployment = model.deployments.get(model.development_deployment_id)
        if deployment is None:
            raise NotFound(f"model '{key}' has no development deployment")
    else:
        raise InvalidArgument(f"target '{target}' is not one of 'development', 'production'")

    if not deployment.active:
        reason = f" ({deployment.status_reason})" if deployment.status_reason else ""
        raise NotFound(f"deployment '{deployment.deployment_id}' of model '{key}' is inactive{reason}")
    if not deployment.replicas and not deployment.holds:
        raise Unavailable(f"deployment '{deployment.deployment_id}' of model '{key}' is not ready yet "
                          f"({deployment.why_not_serving()})")
    return deployment


def weighted_choice(split: tuple[tuple[str, int], ...], rng: Callable[[], float]) -> str:
    """One deployment id, with probability weight/total; a lone entry needs no draw."""
    if len(split) == 1:
        return split[0][0]
    total = sum(max(0, w) for _, w in split)
    if total <= 0:
        return split[0][0]
    point = rng() * total
    for deployment_id, weight in split:
        point -= max(0, weight)
        if point < 0:
            return deployment_id
    return split[-1][0]  # rng() * total rounding up to total

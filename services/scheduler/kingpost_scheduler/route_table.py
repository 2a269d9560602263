"""The route table: a snapshot of desired and actual state → the plain data the data plane needs.

Routers answer from this alone: which models exist, their development deployment, environments
and their traffic split, each deployment's active flag, status and why it is not serving,
predict_concurrency, READY replica addresses and autoscaling settings (the router honours the
back-pressure policy and the cold-start timeout), and the digests of valid API keys. Equal
snapshots give equal tables, so the shell can tell "nothing changed" by comparing tables.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from kingpost.autoscaling_settings import AutoscalingSettings
from kingpost_scheduler import canary, lifecycle
from kingpost_scheduler.facts import READY, Replica


@dataclass(frozen=True)
class ModelRow:
    id: str
    name: str
    # The chain whose entrypoint this model is ("" for none): run_remote on the chain reaches it.
    chain_id: str = ""


@dataclass(frozen=True)
class DeploymentRow:
    id: str
    model_id: str
    is_development: bool
    active: bool
    predict_concurrency: int
    status: str
    # Its autoscaling settings and the count the autoscaler last asked for, for the autoscaler.
    autoscaling: AutoscalingSettings = AutoscalingSettings()
    desired_replicas: int = 1
    # A FAILED deployment's stored reason.
    status_reason: str = ""


@dataclass(frozen=True)
class EnvironmentRow:
    model_id: str
    name: str
    deployment_id: str
    # A canary promotion in progress: its candidate and stage (0..canary.STAGES).
    candidate_id: str = ""
    canary_stage: int = 0


@dataclass(frozen=True)
class ReplicaRoute:
    replica_id: str
    address: str
    http_address: str = ""  # its HTTP data plane, which Envoy calls straight ("" when it serves none)


@dataclass(frozen=True)
class DeploymentRoute:
    deployment_id: str
    active: bool
    predict_concurrency: int
    replicas: tuple[ReplicaRoute, ...]
    status: str
    autoscaling: AutoscalingSettings = AutoscalingSettings()
    desired_replicas: int = 1
    # Why it is not serving ("" while it serves): lifecycle.not_serving_reason.
    status_reason: str = ""
    # Deployments woken with this one (a chain entrypoint's dependencies).
    wake_with: tuple[str, ...] = ()


@dataclass(frozen=True)
class EnvironmentRoute:
    name: str
    # (deployment id, weight); weights sum to 100.
    deployments: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class ModelRoute:
    model_id: str
    name: str
    development_deployment_id: str
    environments: tuple[EnvironmentRoute, ...]
    deployments: tuple[DeploymentRoute, ...]
    chain_id: str = ""


@dataclass(frozen=True)
class RouteTable:
    models: tuple[ModelRoute, ...] = ()
    api_key_sha256: tuple[str, ...] = ()
    webhook_secrets: tuple[str, ...] = ()  # newest first
    # (digest, model ids) of each invoke-only key, sorted; the other keys manage and invoke everything.
    invoke_only_keys: tuple[tuple[str, tuple[str, ...]], ...] = ()


def build_route_table(
    models: Sequence[ModelRow],
    deployments: Sequence[DeploymentRow],
    environments: Sequence[EnvironmentRow],
    replicas: Iterable[Replica],
    api_key_sha256: Iterable[str],
    wake_with: Mapping[str, Sequence[str]] | None = None,
    webhook_secrets: Iterable[str] = (),
    invoke_only_keys: Mapping[str, Iterable[str]] | None = None,
) -> RouteTable:
    """`deployments` are the live (not deleted) ones; replicas of any state may be passed.
    `wake_with`: deployment id → deployments woken with it (a chain version's dependencies)."""
    wake_with = wake_with or {}
    ready: dict[str, list[ReplicaRoute]] = defaultdict(list)
    for r in replicas:
        if r.state == READY and r.address:
            ready[r.deployment_id].append(ReplicaRoute(r.id, r.address, r.http_address))
    by_model: dict[str, list[DeploymentRow]] = defaultdict(list)
    for d in deployments:
        by_model[d.model_id].append(d)
    envs: dict[str, list[EnvironmentRow]] = defaultdict(list)
    known = {d.id for d in deployments}
    for e in environments:
        if e.deployment_id in known:
            envs[e.model_id].append(e)

    routes = []
    for m in sorted(models, key=lambda m: m.id):
        own = sorted(by_model.get(m.id, []), key=lambda d: d.id)
        development = next((d.id for d in own if d.is_development), "")
        routes.append(ModelRoute(
            model_id=m.id,
            name=m.name,
            development_deployment_id=development,
            environments=tuple(
                EnvironmentRoute(e.name, canary.split(
                    e.deployment_id, e.candidate_id if e.candidate_id in known else "", e.canary_stage))
                for e in sorted(envs.get(m.id, []), key=lambda e: e.name)
            ),
            deployments=tuple(
                DeploymentRoute(
                    deployment_id=d.id,
                    active=d.active,
                    predict_concurrency=d.predict_concurrency,
                    replicas=tuple(sorted(ready.get(d.id, []), key=lambda r: r.replica_id)),
                    status=d.status,
                    autoscaling=d.autoscaling,
                    desired_replicas=d.desired_replicas,
                    status_reason=lifecycle.not_serving_reason(d.status, d.status_reason),
                    wake_with=tuple(sorted(w for w in wake_with.get(d.id, ()) if w in known and w != d.id)),
                )
                for d in own
            ),
            chain_id=m.chain_id,
        ))
    return RouteTable(models=tuple(routes), api_key_sha256=tuple(sorted(set(api_key_sha256))),
                      webhook_secrets=tuple(webhook_secrets),
                      invoke_only_keys=tuple(sorted((d, tuple(sorted(ids)))
                                                    for d, ids in (invoke_only_keys or {}).items())))

"""Rows ↔ the pure core: the facts each decision reads from a row, and each decision written back.

The decision modules take frozen facts (`lifecycle.DeploymentFacts`, `facts.Replica`, ...) and
return decisions; the shells read rows (store.py), turn them into facts here, and apply what was
decided to the rows here too, so no handler or loop spells out a row's fields itself.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from kingpost import autoscaling_settings
from kingpost.autoscaling_settings import AutoscalingSettings
from kingpost_scheduler import canary, healing, lifecycle, promotion, promotion_steps, resources
from kingpost_scheduler.clients import BuildInfo
from kingpost_scheduler.deployment_defaults import NewDeployment
from kingpost_scheduler.facts import Node, Replica
from kingpost_scheduler.liveness import NodeReport
from kingpost_scheduler.placement import Demand
from kingpost_scheduler.tables import DeploymentRecord, EnvironmentRecord, NodeRecord, ReplicaRecord

# --- deployments --------------------------------------------------------------------------------


def deployment_facts(d: DeploymentRecord) -> lifecycle.DeploymentFacts:
    return lifecycle.DeploymentFacts(
        id=d.id, name=d.name, status=d.status, status_reason=d.status_reason,
        artifact_digest=d.artifact_digest, active=d.active, deleted=d.deleted,
        is_development=d.is_development, min_replica=d.min_replica, max_replica=d.max_replica,
        desired_replicas=d.desired_replicas, environment=d.environment, has_served=bool(d.has_served),
    )


def autoscaling_of(d: DeploymentRecord) -> AutoscalingSettings:
    return AutoscalingSettings(**{name: getattr(d, name) for name in autoscaling_settings.FIELDS})


def set_autoscaling(d: DeploymentRecord, settings: AutoscalingSettings) -> None:
    for name in autoscaling_settings.FIELDS:
        setattr(d, name, getattr(settings, name))


def new_deployment(deployment_id: str, model_id: str, new: NewDeployment, now: datetime) -> DeploymentRecord:
    return DeploymentRecord(
        id=deployment_id, model_id=model_id, name=new.name, is_development=new.is_development, environment="",
        status=new.status, status_reason="", build_id=new.build_id, artifact_digest=new.artifact_digest,
        predict_concurrency=new.predict_concurrency, **autoscaling_settings.as_dict(new.autoscaling),
        desired_replicas=new.desired_replicas, active=True, deleted=False, created_at=now, has_served=False,
    )


def apply_build(d: DeploymentRecord, info: BuildInfo) -> None:
    """What the build's state means for a deployment waiting on it (lifecycle.after_build)."""
    outcome = lifecycle.after_build(deployment_facts(d), info.state, info.artifact_digest, info.message)
    d.status, d.status_reason, d.artifact_digest = outcome.status, outcome.reason, outcome.artifact_digest
    if info.predict_concurrency > 0:
        d.predict_concurrency = info.predict_concurrency
    if info.cpu or info.memory or info.accelerator:  # the builder parsed the Truss's resources
        need = resources.demand(info.cpu, info.memory, info.accelerator)
        d.cpu_millis, d.memory_bytes = need.cpu_millis, need.memory_bytes
        d.accelerator = info.accelerator


def demand_of(d: DeploymentRecord) -> Demand:
    """What each replica of `d` needs of its node."""
    kind, count = resources.accelerator(d.accelerator or "")
    default = Demand()
    return Demand(cpu_millis=d.cpu_millis if d.cpu_millis is not None else default.cpu_millis,
                  memory_bytes=d.memory_bytes if d.memory_bytes is not None else default.memory_bytes,
                  gpu_type=kind, gpu_count=count)


# --- environments -------------------------------------------------------------------------------


def environment_facts(env: EnvironmentRecord) -> promotion.EnvironmentFacts:
    return promotion.EnvironmentFacts(env.name, env.deployment_id or "", env.candidate_deployment_id)


def environment_autoscaling(env: EnvironmentRecord) -> AutoscalingSettings:
    """The settings each deployment promoted into `env` takes."""
    return autoscaling_settings.from_dict(env.settings)


def set_environment_autoscaling(env: EnvironmentRecord, settings: AutoscalingSettings) -> None:
    # A new dict: SQLAlchemy sees a JSON column change only when it is assigned.
    env.settings = {**(env.settings or {}), **autoscaling_settings.as_dict(settings)}


def promotion_settings_of(env: EnvironmentRecord) -> canary.PromotionSettings:
    stored = (env.settings or {}).get("promotion_settings") or {}
    return canary.patch_promotion_settings(canary.PromotionSettings(), stored)


def set_promotion_settings(env: EnvironmentRecord, settings: canary.PromotionSettings) -> None:
    env.settings = {**(env.settings or {}), "promotion_settings": dataclasses.asdict(settings)}


def in_progress(env: EnvironmentRecord) -> promotion_steps.InProgress:
    return promotion_steps.InProgress(
        model_id=env.model_id, environment=env.name, current=env.deployment_id or "",
        candidate=env.candidate_deployment_id, canary_duration_seconds=env.canary_duration_seconds or 0,
        canary_started_at=env.canary_started_at, canary_stage=env.canary_stage or 0)


def begin_promotion(env: EnvironmentRecord, candidate: DeploymentRecord,
                    plan: promotion.PromotionPlan) -> None:
    """The candidate takes the environment's autoscaling settings and starts (or wakes)."""
    set_autoscaling(candidate, environment_autoscaling(env))
    candidate.demoted_at = None
    candidate.desired_replicas = plan.desired_replicas
    env.candidate_deployment_id, env.promotion_failure = candidate.id, ""
    env.canary_duration_seconds = plan.canary_duration_seconds


def end_promotion(env: EnvironmentRecord, failure: str) -> None:
    """It was cancelled or cannot succeed: no candidate, and the reason to show."""
    env.candidate_deployment_id, env.promotion_failure = "", failure
    end_canary(env)


def swap(env: EnvironmentRecord, candidate: DeploymentRecord, previous: DeploymentRecord | None,
         now: datetime) -> None:
    """The candidate becomes `env`'s current deployment; `previous` (when given) is demoted."""
    end_canary(env)
    if previous is not None:
        previous.environment, previous.demoted_at = "", now
    env.deployment_id, env.candidate_deployment_id, env.promotion_failure = candidate.id, "", ""
    candidate.environment, candidate.demoted_at = env.name, None


def end_canary(env: EnvironmentRecord) -> None:
    env.canary_duration_seconds, env.canary_started_at, env.canary_stage = 0, None, 0


# --- replicas and nodes -------------------------------------------------------------------------


def replica_facts(r: ReplicaRecord) -> Replica:
    return Replica(id=r.id, deployment_id=r.deployment_id, node_id=r.node_id, state=r.state,
                   since=r.updated_at, address=r.address, http_address=r.http_address or "", message=r.message,
                   gpus=tuple(int(i) for i in r.gpus or ()), restarts=r.restarts or 0,
                   crash_looping=bool(r.crash_looping))


def apply_replica_change(r: ReplicaRecord, change: healing.Change, now: datetime) -> None:
    """A report's change (healing.after_report) written to the row; `forget` is the caller's."""
    if change.state and change.state != r.state:
        r.state, r.updated_at = change.state, now
    for name in ("address", "http_address", "message", "restarts", "crash_looping"):
        value = getattr(change, name)
        if value is not None:
            setattr(r, name, value)


def node_facts(n: NodeRecord) -> Node:
    return report_facts(node_report(n), n.last_seen, draining=n.draining)


def report_facts(r: NodeReport, last_seen: datetime, *, draining: bool = False) -> Node:
    return Node(id=r.id, address=r.address, last_seen=last_seen, cpu_count=r.cpu_count,
                memory_bytes=r.memory_bytes, gpus=tuple(name for name, _ in r.gpus), name=r.name,
                draining=draining)


def node_report(n: NodeRecord) -> NodeReport:
    gpus = tuple((str(g.get("name", "")), int(g.get("memory_bytes", 0))) for g in n.gpus or ())
    return NodeReport(id=n.id, address=n.address, cpu_count=n.cpu_count, memory_bytes=n.memory_bytes,
                      gpus=gpus, name=n.name or "", labels=tuple(sorted((n.labels or {}).items())))


def node_columns(report: NodeReport) -> dict[str, Any]:
    return {"address": report.address, "cpu_count": report.cpu_count, "memory_bytes": report.memory_bytes,
            "gpus": [{"name": name, "memory_bytes": memory} for name, memory in report.gpus],
            "name": report.name, "labels": dict(report.labels)}

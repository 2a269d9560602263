"""Rows and route tables → the API's messages: every proto the scheduler answers with is made here.

Plain functions over what the handler read (no queries): a handler reads in its transaction, then
converts. A deployment's `status_reason` says why it is not serving in every status, as the route
table does (lifecycle.not_serving_reason).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from kingpost import autoscaling_settings, deployment_status, instance_types, management_shapes
from kingpost.errors import InvalidArgument
from kingpost.v1 import events_pb2, management_pb2, nodes_pb2, scheduler_pb2
from kingpost_scheduler import canary, healing, lifecycle, records, resources
from kingpost_scheduler.route_table import RouteTable
from kingpost_scheduler.tables import (
    ApiKeyRecord,
    WebhookSecretRecord,
    DeploymentRecord,
    EnvironmentRecord,
    ModelRecord,
    NodeRecord,
    ReplicaRecord,
)


def timestamp(dt: datetime | None) -> Timestamp:
    ts = Timestamp()
    if dt is not None:
        ts.FromDatetime(dt)
    return ts


def deployment(d: DeploymentRecord, ready_replicas: int,
               replicas: Sequence[ReplicaRecord] = ()) -> management_pb2.Deployment:
    """`replicas`: its replicas, shown with their restarts and how their runner last ended."""
    return management_pb2.Deployment(
        id=d.id, name=d.name, model_id=d.model_id, created_at=timestamp(d.created_at),
        is_production=d.environment == lifecycle.PRODUCTION, is_development=d.is_development,
        status=d.status, status_reason=lifecycle.not_serving_reason(d.status, d.status_reason),
        active_replica_count=ready_replicas,
        autoscaling_settings=management_pb2.AutoscalingSettings(
            **autoscaling_settings.as_dict(records.autoscaling_of(d))),
        environment=d.environment, build_id=d.build_id, predict_concurrency=d.predict_concurrency,
        instance_type_name=instance_type_name(d),
        request_backpressure_settings=management_shapes.backpressure_settings(d.backpressure_policy),
        resources=management_pb2.DeploymentResources(
            cpu=(d.cpu_millis or 0) / 1000, memory_bytes=d.memory_bytes or 0, accelerator=d.accelerator or "",
            instance_type=instance_type_name(d)),
        replicas=[replica(r, bool(d.has_served)) for r in replicas],
    )


def fitted_type(d: DeploymentRecord | None) -> instance_types.InstanceType | None:
    """The smallest catalog type that meets the deployment's resources; None where none does (a
    deployment pushed before the catalog was checked) or for no deployment."""
    if d is None:
        return None
    kind, count = resources.accelerator(d.accelerator or "")
    request = instance_types.Request(cpu_millis=d.cpu_millis or 1000, memory_bytes=d.memory_bytes or 2 * instance_types.GIB,
                                     gpu_type=kind, gpu_count=count)
    try:
        return instance_types.smallest_fit(request)
    except InvalidArgument:
        return None


def instance_type_name(d: DeploymentRecord | None) -> str:
    t = fitted_type(d)
    return t.name if t is not None else ""


def instance_type(t: instance_types.InstanceType) -> nodes_pb2.InstanceType:
    """kingpost's fields and Baseten's (InstanceTypeV1) side by side."""
    mib = instance_types.GIB // 2**20
    return nodes_pb2.InstanceType(
        name=t.name, vcpus=t.vcpus, memory_bytes=t.memory_gib * instance_types.GIB, gpu_type=t.gpu_type,
        gpu_count=t.gpu_count, vram_bytes=t.vram_gib * instance_types.GIB, usd_per_minute=t.usd_per_minute,
        id=t.name, memory_limit_mib=t.memory_gib * mib, millicpu_limit=t.vcpus * 1000,
        gpu_memory_limit_mib=t.vram_gib * mib // t.gpu_count if t.gpu_count else 0)


def replica(r: ReplicaRecord, has_served: bool) -> management_pb2.DeploymentReplica:
    facts = records.replica_facts(r)
    return management_pb2.DeploymentReplica(
        id=r.id, node_id=r.node_id, state=r.state, restarts=r.restarts or 0,
        crash_looping=healing.crash_looping(facts, has_served), last_exit=r.message)


def model(m: ModelRecord, deployments: Sequence[DeploymentRecord],
          environments: Sequence[EnvironmentRecord]) -> management_pb2.Model:
    """`deployments`: the model's live ones; `environments`: its environments."""
    current = {e.name: e.deployment_id for e in environments}
    production = next((d for d in deployments if d.id == current.get(lifecycle.PRODUCTION)), None)
    return management_pb2.Model(
        id=m.id, name=m.name, created_at=timestamp(m.created_at), deployments_count=len(deployments),
        production_deployment_id=current.get(lifecycle.PRODUCTION) or "",
        development_deployment_id=next((d.id for d in deployments if d.is_development), ""),
        instance_type_name=instance_type_name(production), team_name=management_shapes.TEAM_NAME,
    )


def environment(env: EnvironmentRecord, current: DeploymentRecord | None,
                current_ready: int) -> management_pb2.Environment:
    """`current`: its current deployment, None for none (then no traffic and no canary are shown).
    Its instance type: the one its current deployment's resources fit, else the catalog's smallest."""
    env_autoscaling = records.environment_autoscaling(env)
    out = management_pb2.Environment(
        name=env.name, model_id=env.model_id, created_at=timestamp(env.created_at),
        autoscaling_settings=management_pb2.AutoscalingSettings(**autoscaling_settings.as_dict(env_autoscaling)),
        promoting_deployment_id=env.candidate_deployment_id, promotion_failure=env.promotion_failure,
        instance_type=instance_type(fitted_type(current) or instance_types.CATALOG[0]),
        request_backpressure_settings=management_shapes.backpressure_settings(
            env_autoscaling.backpressure_policy),
        current_deployment=management_shapes.deployment_value(
            None if current is None else deployment(current, current_ready)),
    )
    out.promotion_settings.CopyFrom(management_pb2.PromotionSettings(
        **dataclasses.asdict(records.promotion_settings_of(env))))
    if current is None:
        return out
    stage = (env.canary_stage or 0) if env.canary_duration_seconds else 0
    for deployment_id, weight in canary.split(current.id, env.candidate_deployment_id, stage):
        out.traffic[deployment_id] = weight
    if env.canary_duration_seconds and env.candidate_deployment_id:
        out.current_canary.CopyFrom(management_pb2.Canary(
            deployment_id=env.candidate_deployment_id, stage=stage, stages=canary.STAGES,
            candidate_weight=100 * stage // canary.STAGES,
            ramp_up_duration_seconds=env.canary_duration_seconds))
        if env.canary_started_at is not None:
            out.current_canary.started_at.CopyFrom(timestamp(env.canary_started_at))
    return out


def baseten_log(line: events_pb2.LogLine) -> management_pb2.Log:
    """A log line as Baseten's Log."""
    return management_pb2.Log(timestamp=str(line.at.seconds * 10**9 + line.at.nanos), message=line.text,
                              replica=line.replica_id, level=line.level)


def webhook_secret(w: WebhookSecretRecord) -> management_pb2.WebhookSecret:
    return management_pb2.WebhookSecret(id=w.id, secret=w.secret, created_at=timestamp(w.created_at))


def api_key(k: ApiKeyRecord) -> management_pb2.ApiKey:
    return management_pb2.ApiKey(prefix=k.prefix, name=k.name, created_at=timestamp(k.created_at),
                                 type=k.type, model_ids=list(k.model_ids or ()),
                                 team_name=management_shapes.TEAM_NAME)


def node_status(n: NodeRecord, replica_ids: Sequence[str], last_seen: datetime) -> management_pb2.NodeStatus:
    return management_pb2.NodeStatus(
        node_id=n.id, address=n.address, cpu_count=n.cpu_count, memory_bytes=n.memory_bytes,
        gpus=[events_pb2.Gpu(name=str(g.get("name", "")), memory_bytes=int(g.get("memory_bytes", 0)))
              for g in n.gpus],
        replica_ids=list(replica_ids), last_seen=timestamp(last_seen))


def route_table(version: int, table: RouteTable) -> scheduler_pb2.RouteTable:
    return scheduler_pb2.RouteTable(
        version=version,
        api_key_sha256=list(table.api_key_sha256),
        invoke_only_keys={digest: scheduler_pb2.InvokeScope(model_ids=ids) for digest, ids in table.invoke_only_keys},
        webhook_secrets=list(table.webhook_secrets),
        models=[
            scheduler_pb2.ModelRoute(
                model_id=m.model_id, name=m.name, development_deployment_id=m.development_deployment_id,
                chain_id=m.chain_id,
                environments=[
                    scheduler_pb2.EnvironmentRoute(name=e.name, deployments=[
                        scheduler_pb2.WeightedDeployment(deployment_id=d, weight=w) for d, w in e.deployments
                    ])
                    for e in m.environments
                ],
                deployments=[
                    scheduler_pb2.DeploymentRoute(
                        deployment_id=d.deployment_id, active=d.active,
                        predict_concurrency=d.predict_concurrency,
                        status=deployment_status.value(d.status), status_reason=d.status_reason,
                        backpressure_policy=d.autoscaling.backpressure_policy,
                        cold_start_timeout_seconds=d.autoscaling.cold_start_timeout_seconds,
                        autoscaling=scheduler_pb2.DeploymentAutoscaling(
                            min_replica=d.autoscaling.min_replica, max_replica=d.autoscaling.max_replica,
                            autoscaling_window=d.autoscaling.autoscaling_window,
                            scale_down_delay=d.autoscaling.scale_down_delay,
                            concurrency_target=d.autoscaling.concurrency_target,
                            target_utilization_percentage=d.autoscaling.target_utilization_percentage,
                            desired_replicas=d.desired_replicas),
                        replicas=[scheduler_pb2.ReplicaRoute(replica_id=r.replica_id, address=r.address,
                                                             http_address=r.http_address)
                                  for r in d.replicas],
                        wake_with=list(d.wake_with),
                    )
                    for d in m.deployments
                ],
            )
            for m in table.models
        ],
    )

"""Data access: functions that take a session, read or change rows, and flush — never commit.

The caller owns the transaction (`async with sessions.begin()`), so one RPC or one event is one
transaction, whatever it touches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kingpost import key_scopes
from kingpost.errors import NotFound
from kingpost_scheduler import lifecycle
from kingpost_scheduler.facts import READY, Replica
from kingpost_scheduler.liveness import NodeReport
from kingpost_scheduler.records import autoscaling_of, node_columns, replica_facts
from kingpost_scheduler.route_table import DeploymentRow, EnvironmentRow, ModelRow
from kingpost_scheduler.tables import (
    ApiKeyRecord,
    ChainDeploymentRecord,
    ChainRecord,
    DeploymentRecord,
    EnvironmentRecord,
    ModelRecord,
    NodeRecord,
    ReplicaRecord,
    WebhookSecretRecord,
)

# --- models -----------------------------------------------------------------------------------


async def find_model(session: AsyncSession, ref: str) -> ModelRecord:
    """A model by id or name."""
    found = (await session.scalars(
        select(ModelRecord).where(or_(ModelRecord.id == ref, ModelRecord.name == ref),
                                  ModelRecord.deleted.is_(False))
    )).first()
    if found is None:
        raise NotFound(f"model {ref!r} not found")
    return found


async def model_by_name(session: AsyncSession, name: str) -> ModelRecord | None:
    return (await session.scalars(
        select(ModelRecord).where(ModelRecord.name == name, ModelRecord.deleted.is_(False)))).first()


async def add_model(session: AsyncSession, model_id: str, name: str, now: datetime) -> ModelRecord:
    model = ModelRecord(id=model_id, name=name, created_at=now, deleted=False)
    session.add(model)
    await session.flush()
    # Every model has a production environment from the start; its endpoint answers once a
    # deployment is promoted into it.
    session.add(EnvironmentRecord(model_id=model_id, name=lifecycle.PRODUCTION, deployment_id=None,
                                  candidate_deployment_id="", promotion_failure="", settings={}, created_at=now))
    await session.flush()
    return model


async def delete_model(session: AsyncSession, model: ModelRecord) -> None:
    """Its deployments are deleted (their replicas stop), its environments go, its name is free
    at once; the row itself goes with `purge_deleted_models` once no replica is left."""
    for d in await model_deployments(session, model.id):
        d.deleted, d.active, d.environment = True, False, ""
    await session.execute(delete(EnvironmentRecord).where(EnvironmentRecord.model_id == model.id))
    model.deleted = True
    model.name = f"deleted/{model.id}"  # '/' is in no valid name: the old name is free
    await session.flush()


async def purge_deleted_models(session: AsyncSession) -> None:
    busy = select(DeploymentRecord.model_id).join(
        ReplicaRecord, ReplicaRecord.deployment_id == DeploymentRecord.id)
    await session.execute(delete(ModelRecord).where(ModelRecord.deleted.is_(True), ModelRecord.id.not_in(busy)))


async def list_models(session: AsyncSession) -> Sequence[ModelRecord]:
    return (await session.scalars(select(ModelRecord).where(ModelRecord.deleted.is_(False))
                                  .order_by(ModelRecord.created_at, ModelRecord.id))).all()


async def count_models(session: AsyncSession) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(ModelRecord).where(ModelRecord.deleted.is_(False))) or 0)


# --- deployments ------------------------------------------------------------------------------


async def model_deployments(
    session: AsyncSession, model_id: str, *, include_deleted: bool = False
) -> Sequence[DeploymentRecord]:
    query = select(DeploymentRecord).where(DeploymentRecord.model_id == model_id)
    if not include_deleted:
        query = query.where(DeploymentRecord.deleted.is_(False))
    return (await session.scalars(query.order_by(DeploymentRecord.created_at, DeploymentRecord.id))).all()


async def live_deployments(session: AsyncSession) -> Sequence[DeploymentRecord]:
    return (await session.scalars(
        select(DeploymentRecord).where(DeploymentRecord.deleted.is_(False)).order_by(DeploymentRecord.id)
    )).all()


async def deployments_for_build(session: AsyncSession, build_id: str) -> Sequence[DeploymentRecord]:
    return (await session.scalars(
        select(DeploymentRecord).where(DeploymentRecord.build_id == build_id,
                                       DeploymentRecord.deleted.is_(False))
    )).all()


async def find_deployment(session: AsyncSession, model: ModelRecord, ref: str) -> DeploymentRecord:
    """By id or name; "development" and "production" name the model's current ones."""
    if ref == lifecycle.PRODUCTION:
        env = await session.get(EnvironmentRecord, (model.id, lifecycle.PRODUCTION))
        found = await session.get(DeploymentRecord, env.deployment_id) if env and env.deployment_id else None
    else:
        found = (await session.scalars(
            select(DeploymentRecord).where(
                DeploymentRecord.model_id == model.id,
                DeploymentRecord.deleted.is_(False),
                or_(DeploymentRecord.id == ref, DeploymentRecord.name == ref),
            )
        )).first()
    if found is None or found.deleted:
        raise NotFound(f"deployment {ref!r} of model {model.name!r} not found")
    return found


async def get_deployment(session: AsyncSession, deployment_id: str) -> DeploymentRecord:
    found = await session.get(DeploymentRecord, deployment_id)
    if found is None or found.deleted:
        raise NotFound(f"deployment {deployment_id!r} not found")
    return found


async def add_deployment(session: AsyncSession, deployment: DeploymentRecord) -> DeploymentRecord:
    session.add(deployment)
    await session.flush()
    return deployment


async def delete_deployment(session: AsyncSession, deployment: DeploymentRecord) -> None:
    """Deleted deployments keep their row (their name stays taken) but serve nothing and want no replicas."""
    deployment.deleted = True
    deployment.active = False
    deployment.environment = ""
    for env in await environments(session, deployment.model_id):
        if env.deployment_id == deployment.id:
            env.deployment_id = None
        if env.candidate_deployment_id == deployment.id:
            env.candidate_deployment_id = ""
            env.promotion_failure = f"deployment {deployment.id} was deleted during its promotion"
    await session.flush()


async def environments(session: AsyncSession, model_id: str | None = None) -> Sequence[EnvironmentRecord]:
    query = select(EnvironmentRecord)
    if model_id is not None:
        query = query.where(EnvironmentRecord.model_id == model_id)
    return (await session.scalars(query)).all()


async def get_environment(session: AsyncSession, model: ModelRecord, name: str) -> EnvironmentRecord:
    env = await session.get(EnvironmentRecord, (model.id, name))
    if env is None and name == lifecycle.PRODUCTION:  # a model made before environments had rows
        env = EnvironmentRecord(model_id=model.id, name=name, deployment_id=None, candidate_deployment_id="",
                                promotion_failure="", settings={}, created_at=model.created_at)
        session.add(env)
        await session.flush()
    if env is None:
        raise NotFound(f"environment {name!r} of model {model.name!r} not found")
    return env


async def add_environment(
    session: AsyncSession, model: ModelRecord, name: str, settings: dict[str, Any], now: datetime
) -> EnvironmentRecord:
    env = EnvironmentRecord(model_id=model.id, name=name, deployment_id=None, candidate_deployment_id="",
                            promotion_failure="", settings=settings, created_at=now)
    session.add(env)
    await session.flush()
    return env


async def delete_environment(session: AsyncSession, env: EnvironmentRecord) -> None:
    if env.deployment_id:
        current = await session.get(DeploymentRecord, env.deployment_id)
        if current is not None and current.environment == env.name:
            current.environment = ""
    await session.delete(env)
    await session.flush()


# --- replicas and nodes -----------------------------------------------------------------------


async def all_replicas(session: AsyncSession) -> Sequence[ReplicaRecord]:
    return (await session.scalars(select(ReplicaRecord).order_by(ReplicaRecord.id))).all()


async def ready_counts(session: AsyncSession) -> dict[str, int]:
    """Deployment id → its READY replicas."""
    counts: dict[str, int] = {}
    for r in await all_replicas(session):
        if r.state == READY:
            counts[r.deployment_id] = counts.get(r.deployment_id, 0) + 1
    return counts


async def replicas_of(session: AsyncSession, deployment_id: str) -> Sequence[ReplicaRecord]:
    return (await session.scalars(select(ReplicaRecord).where(ReplicaRecord.deployment_id == deployment_id)
                                  .order_by(ReplicaRecord.created_at, ReplicaRecord.id))).all()


async def get_replica(session: AsyncSession, replica_id: str) -> ReplicaRecord | None:
    return await session.get(ReplicaRecord, replica_id)


async def replicas_on_node(session: AsyncSession, node_id: str) -> Sequence[ReplicaRecord]:
    return (await session.scalars(select(ReplicaRecord).where(ReplicaRecord.node_id == node_id))).all()


async def add_replica(
    session: AsyncSession, replica_id: str, deployment_id: str, node_id: str, state: str, now: datetime,
    *, gpus: Iterable[int] = (),
) -> ReplicaRecord:
    replica = ReplicaRecord(id=replica_id, deployment_id=deployment_id, node_id=node_id, state=state,
                            address="", http_address="", message="", created_at=now, updated_at=now, gpus=list(gpus),
                            restarts=0, crash_looping=False)
    session.add(replica)
    await session.flush()
    return replica


async def set_replica_state(
    session: AsyncSession, replica: ReplicaRecord, state: str, now: datetime, *, address: str | None = None,
    message: str | None = None,
) -> None:
    if replica.state != state:
        replica.updated_at = now
    replica.state = state
    if address is not None:
        replica.address = address
    if message is not None:
        replica.message = message
    await session.flush()


async def delete_replicas(session: AsyncSession, replica_ids: Iterable[str]) -> None:
    ids = list(replica_ids)
    if ids:
        await session.execute(delete(ReplicaRecord).where(ReplicaRecord.id.in_(ids)))
        await session.flush()


async def all_nodes(session: AsyncSession) -> Sequence[NodeRecord]:
    return (await session.scalars(select(NodeRecord).order_by(NodeRecord.id))).all()


async def upsert_node(session: AsyncSession, report: NodeReport, now: datetime) -> NodeRecord:
    node = await session.get(NodeRecord, report.id)
    if node is None:
        node = NodeRecord(id=report.id, last_seen=now, **node_columns(report))
        session.add(node)
    else:
        for name, value in node_columns(report).items():
            setattr(node, name, value)
        node.last_seen = now
    await session.flush()
    return node


async def set_last_seen(session: AsyncSession, last_seen: Mapping[str, datetime]) -> None:
    """Many stored nodes' last heartbeat times, in one statement."""
    if last_seen:
        await session.execute(update(NodeRecord), [{"id": n, "last_seen": at} for n, at in last_seen.items()])


# --- api keys ---------------------------------------------------------------------------------


async def add_api_key(
    session: AsyncSession, *, prefix: str, name: str, sha256: str, now: datetime,
    key_type: str = key_scopes.MANAGE_ALL, model_ids: Sequence[str] = (),
) -> ApiKeyRecord:
    key = ApiKeyRecord(prefix=prefix, name=name, sha256=sha256, created_at=now, revoked=False,
                       type=key_type, model_ids=list(model_ids))
    session.add(key)
    await session.flush()
    return key


async def api_key_by_digest(session: AsyncSession, sha256: str) -> ApiKeyRecord | None:
    return (await session.scalars(select(ApiKeyRecord).where(ApiKeyRecord.sha256 == sha256))).first()


async def list_api_keys(session: AsyncSession) -> Sequence[ApiKeyRecord]:
    return (await session.scalars(
        select(ApiKeyRecord).where(ApiKeyRecord.revoked.is_(False)).order_by(ApiKeyRecord.created_at)
    )).all()


async def revoke_api_key(session: AsyncSession, prefix: str) -> None:
    key = await session.get(ApiKeyRecord, prefix)
    if key is None or key.revoked:
        raise NotFound(f"API key {prefix!r} not found")
    key.revoked = True
    await session.flush()


# --- webhook secrets -------------------------------------------------------------------------


async def add_webhook_secret(session: AsyncSession, *, id: str, secret: str, now: datetime) -> WebhookSecretRecord:
    record = WebhookSecretRecord(id=id, secret=secret, created_at=now)
    session.add(record)
    await session.flush()
    return record


async def list_webhook_secrets(session: AsyncSession) -> Sequence[WebhookSecretRecord]:
    """Newest first: the order their signatures appear in X-BASETEN-SIGNATURE."""
    return (await session.scalars(
        select(WebhookSecretRecord).order_by(WebhookSecretRecord.created_at.desc(), WebhookSecretRecord.id)
    )).all()


async def delete_webhook_secret(session: AsyncSession, id: str) -> None:
    record = await session.get(WebhookSecretRecord, id)
    if record is None:
        raise NotFound(f"webhook secret {id!r} not found")
    await session.delete(record)
    await session.flush()


# --- the route table's inputs -----------------------------------------------------------------


async def route_inputs(
    session: AsyncSession,
) -> tuple[list[ModelRow], list[DeploymentRow], list[EnvironmentRow], list[Replica], list[str],
           dict[str, list[str]], list[str], dict[str, list[str]]]:
    chain_of = {c.entrypoint_model_id: c.id for c in (await session.execute(select(ChainRecord))).scalars()}
    models = [ModelRow(m.id, m.name, chain_of.get(m.id, "")) for m in await list_models(session)]
    deployments = [
        DeploymentRow(d.id, d.model_id, d.is_development, d.active, d.predict_concurrency, d.status,
                      autoscaling=autoscaling_of(d), desired_replicas=d.desired_replicas,
                      status_reason=d.status_reason)
        for d in await live_deployments(session)
    ]
    envs = [EnvironmentRow(e.model_id, e.name, e.deployment_id, e.candidate_deployment_id,
                           e.canary_stage or 0)
            for e in await environments(session) if e.deployment_id]
    replicas = [replica_facts(r) for r in await all_replicas(session)]
    keys = await list_api_keys(session)
    invoke_only = {k.sha256: list(k.model_ids or ()) for k in keys if k.type == key_scopes.INVOKE}
    # A chain version's entrypoint wakes its dependencies with it.
    wake_with = {v.id: [c["deployment_id"] for c in v.chainlets if not c.get("is_entrypoint")]
                 for v in (await session.execute(select(ChainDeploymentRecord))).scalars()}
    secrets = [w.secret for w in await list_webhook_secrets(session)]
    return models, deployments, envs, replicas, [k.sha256 for k in keys], wake_with, secrets, invoke_only


"""What every ManagementService handler shares: the services it uses, and the reads behind the
answers that several of them give (a model, a deployment, an environment)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from kingpost.bus import Bus
from kingpost.v1 import management_pb2
from kingpost_scheduler import convert, store
from kingpost_scheduler.clients import BuildLookup
from kingpost_scheduler.control import Control
from kingpost_scheduler.facts import READY
from kingpost_scheduler.secret_box import SecretBox
from kingpost_scheduler.tables import DeploymentRecord, EnvironmentRecord, ModelRecord


class Handlers:
    control: Control
    builds: BuildLookup
    bus: Bus | None
    # The highest max_replica a deployment may ask for (SchedulerSettings.max_replica_cap).
    max_replica_cap: int
    # The services' /metrics endpoints ("service=host:port[/path]"), for GetMetricsTargets.
    metrics_targets: tuple[str, ...]
    # Seals secret values at rest (SchedulerSettings.secrets_key / secrets_key_file).
    secret_box: SecretBox


async def describe_model(session: AsyncSession, m: ModelRecord) -> management_pb2.Model:
    return convert.model(m, await store.model_deployments(session, m.id),
                         await store.environments(session, m.id))


async def describe_deployment(session: AsyncSession, d: DeploymentRecord) -> management_pb2.Deployment:
    replicas = await store.replicas_of(session, d.id)
    return convert.deployment(d, sum(r.state == READY for r in replicas), replicas)


async def describe_environment(session: AsyncSession, env: EnvironmentRecord) -> management_pb2.Environment:
    current = await session.get(DeploymentRecord, env.deployment_id) if env.deployment_id else None
    ready = (await store.ready_counts(session)).get(current.id, 0) if current is not None else 0
    return convert.environment(env, current, ready)

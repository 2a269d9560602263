"""The gRPC faces: ManagementService (public, API keys) and SchedulerService (internal).

Thin: each method validates, runs one transaction through `Control`, and turns rows into protos.
Errors are kingpost.errors, ended by `kingpost.grpc_status.abort_on_error`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncSession

from kingpost import autoscaling_settings, deployment_status
from kingpost.auth import key_digest, key_prefix, new_key
from kingpost.bus import Bus
from kingpost.bus.subjects import build_log_subject, replica_logs_of
from kingpost.errors import Conflict, InvalidArgument, KingpostError, NotFound, Unavailable
from kingpost.grpc_status import abort_on_error
from kingpost.ids import is_id, new_id
from kingpost.v1 import (
    agent_pb2,
    events_pb2,
    management_pb2,
    management_pb2_grpc,
    scheduler_pb2,
    scheduler_pb2_grpc,
)
from kingpost_scheduler import canary, facts, lifecycle, metrics, promotion, store
from kingpost_scheduler.clients import BuildInfo, BuildLookup
from kingpost_scheduler.control import Control, apply_build, end_canary
from kingpost_scheduler.route_table import RouteTable
from kingpost_scheduler.tables import DeploymentRecord, EnvironmentRecord, ModelRecord

log = logging.getLogger(__name__)

DEFAULT_LOG_LIMIT = 1000


def _timestamp(dt: datetime | None) -> Timestamp:
    ts = Timestamp()
    if dt is not None:
        ts.FromDatetime(dt)
    return ts


def deployment_proto(d: DeploymentRecord, ready_replicas: int) -> management_pb2.Deployment:
    return management_pb2.Deployment(
        id=d.id, name=d.name, model_id=d.model_id, created_at=_timestamp(d.created_at),
        is_production=d.environment == lifecycle.PRODUCTION, is_development=d.is_development,
        status=d.status, status_reason=d.status_reason, active_replica_count=ready_replicas,
        autoscaling_settings=management_pb2.AutoscalingSettings(
            **autoscaling_settings.as_dict(store.autoscaling_of(d))),
        environment=d.environment, build_id=d.build_id, predict_concurrency=d.predict_concurrency,
    )


async def _ready_counts(session: AsyncSession) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in await store.all_replicas(session):
        if r.state == facts.READY:
            counts[r.deployment_id] = counts.get(r.deployment_id, 0) + 1
    return counts


async def _model_proto(session: AsyncSession, m: ModelRecord) -> management_pb2.Model:
    deployments = await store.model_deployments(session, m.id)
    envs = {e.name: e.deployment_id for e in await store.environments(session, m.id)}
    return management_pb2.Model(
        id=m.id, name=m.name, created_at=_timestamp(m.created_at), deployments_count=len(deployments),
        production_deployment_id=envs.get(lifecycle.PRODUCTION) or "",
        development_deployment_id=next((d.id for d in deployments if d.is_development), ""),
    )


def route_table_proto(version: int, table: RouteTable) -> scheduler_pb2.RouteTable:
    return scheduler_pb2.RouteTable(
        version=version,
        api_key_sha256=list(table.api_key_sha256),
        models=[
            scheduler_pb2.ModelRoute(
                model_id=m.model_id, name=m.name, development_deployment_id=m.development_deployment_id,
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
                        replicas=[scheduler_pb2.ReplicaRoute(replica_id=r.replica_id, address=r.address)
                                  for r in d.replicas],
                    )
                    for d in m.deployments
                ],
            )
            for m in table.models
        ],
    )


class ManagementServicer(management_pb2_grpc.ManagementServiceServicer):
    def __init__(self, control: Control, builds: BuildLookup, bus: Bus | None = None) -> None:
        self.control = control
        # The highest max_replica a deployment may ask for (SchedulerSettings.max_replica_cap).
        self.max_replica_cap = autoscaling_settings.DEFAULT_MAX_REPLICA_CAP
        self.builds = builds
        self.bus = bus

    @abort_on_error
    async def ListModels(self, request: management_pb2.ListModelsRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> list[management_pb2.Model]:
            return [await _model_proto(session, m) for m in await store.list_models(session)]

        return management_pb2.ListModelsResponse(models=await self.control.read("listing models", run))

    @abort_on_error
    async def GetModel(self, request: management_pb2.GetModelRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> management_pb2.Model:
            return await _model_proto(session, await store.find_model(session, request.model_id))

        return management_pb2.GetModelResponse(model=await self.control.read("reading a model", run))

    @abort_on_error
    async def CreateDeployment(self, request: management_pb2.CreateDeploymentRequest, context: Any) -> Any:
        name = lifecycle.validate_model_name(request.model_name)
        if not request.build_id:
            raise InvalidArgument("build_id is required: upload the Truss first (BuildService.UploadSource)")
        build = await self.builds.get_build(request.build_id)
        now = self.control.clock()

        async def create(session: AsyncSession) -> tuple[str, str]:
            model = await store.model_by_name(session, name)
            if model is None:
                model = await store.add_model(session, new_id("mdl"), name, now)
            existing = await store.model_deployments(session, model.id, include_deleted=True)
            push = lifecycle.plan_push(
                [store.deployment_facts(d) for d in existing], publish=request.publish,
                environment=request.environment, deployment_name=request.deployment_name)
            for d in existing:
                if d.id in push.replaces:
                    await store.delete_deployment(session, d)
            deployment = await store.add_deployment(session, DeploymentRecord(
                id=new_id("dep"), model_id=model.id, name=push.name, is_development=push.is_development,
                environment="", status=lifecycle.BUILDING, status_reason="", build_id=request.build_id,
                artifact_digest="", predict_concurrency=1,
                **autoscaling_settings.as_dict(autoscaling_settings.DEFAULTS),
                desired_replicas=1, active=True, deleted=False, created_at=now,
            ))
            if push.environment:
                # Deploying straight into an environment is a promotion of the new deployment.
                try:
                    env = await store.get_environment(session, model, push.environment)
                except NotFound:
                    raise NotFound(f"model {name!r} has no environment {push.environment!r}: create it first "
                                   f"(`kingpost environments create` or POST /v1/models/{{model_id}}/environments)"
                                   ) from None
                if env.candidate_deployment_id:
                    raise Conflict(f"a promotion to {env.name} is in progress (deployment "
                                   f"{env.candidate_deployment_id}): wait for it to finish")
                _begin_promotion(env, deployment)
            apply_build(deployment, _newest(build, self.control.known_build(request.build_id)))
            return model.id, deployment.id

        model_id, deployment_id = await self.control.write(f"deploying build {request.build_id}", create)
        log.info("model %s: deployment %s of build %s", name, deployment_id, request.build_id)

        async def describe(session: AsyncSession) -> management_pb2.CreateDeploymentResponse:
            model = await store.find_model(session, model_id)
            deployment = await store.get_deployment(session, deployment_id)
            ready = (await _ready_counts(session)).get(deployment_id, 0)
            return management_pb2.CreateDeploymentResponse(
                model=await _model_proto(session, model), deployment=deployment_proto(deployment, ready))

        return await self.control.read("reading the new deployment", describe)

    @abort_on_error
    async def ListDeployments(self, request: management_pb2.ListDeploymentsRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> list[management_pb2.Deployment]:
            model = await store.find_model(session, request.model_id)
            ready = await _ready_counts(session)
            deployments = await store.model_deployments(session, model.id)
            return [deployment_proto(d, ready.get(d.id, 0)) for d in deployments]

        deployments = await self.control.read("listing deployments", run)
        return management_pb2.ListDeploymentsResponse(deployments=deployments)

    @abort_on_error
    async def GetDeployment(self, request: management_pb2.GetDeploymentRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> management_pb2.Deployment:
            model = await store.find_model(session, request.model_id)
            d = await store.find_deployment(session, model, request.deployment_id)
            return deployment_proto(d, (await _ready_counts(session)).get(d.id, 0))

        deployment = await self.control.read("reading a deployment", run)
        return management_pb2.GetDeploymentResponse(deployment=deployment)

    @abort_on_error
    async def GetLogs(self, request: management_pb2.GetLogsRequest, context: Any) -> Any:
        if self.bus is None:
            raise Unavailable("logs are kept in NATS, and this scheduler has no NATS connection")
        if request.build_only and request.replica_only:
            raise InvalidArgument("build_only and replica_only exclude each other")
        if request.build_id and not is_id(request.build_id, "bld"):  # it becomes part of a NATS subject
            raise InvalidArgument(f"{request.build_id!r} is not a build id (bld_ and letters or digits)")

        async def targets(session: AsyncSession) -> Sequence[DeploymentRecord]:
            if not request.model_id:  # every model's
                return await store.live_deployments(session)
            model = await store.find_model(session, request.model_id)
            if request.deployment_id:
                return [await store.find_deployment(session, model, request.deployment_id)]
            return await store.model_deployments(session, model.id)

        # A build's own logs need no model: a push that failed to build has none yet.
        only_build = bool(request.build_id) and not request.model_id
        deployments = [] if only_build else await self.control.read("finding logs", targets)
        limit = request.limit if request.limit > 0 else DEFAULT_LOG_LIMIT
        subjects: list[str] = []
        for d in deployments:
            if not request.replica_only and (not request.build_id or request.build_id == d.build_id):
                subjects.append(build_log_subject(d.build_id))
            if not request.build_only and not request.build_id:
                subjects.append(replica_logs_of(d.id))
        if request.build_id and not request.replica_only:
            subjects.append(build_log_subject(request.build_id))
        lines: list[events_pb2.LogLine] = []
        for subject in dict.fromkeys(subjects):
            lines.extend(await self.bus.read_stream(subject, events_pb2.LogLine, limit=limit))
        lines.sort(key=lambda line: (line.at.seconds, line.at.nanos))
        return management_pb2.GetLogsResponse(lines=lines[-limit:])

    @abort_on_error
    async def CreateApiKey(self, request: management_pb2.CreateApiKeyRequest, context: Any) -> Any:
        key = new_key()
        now = self.control.clock()

        async def create(session: AsyncSession) -> management_pb2.ApiKey:
            record = await store.add_api_key(session, prefix=key_prefix(key), name=request.name or "key",
                                             sha256=key_digest(key), now=now)
            return management_pb2.ApiKey(prefix=record.prefix, name=record.name,
                                         created_at=_timestamp(record.created_at))

        api_key = await self.control.write("creating an API key", create)
        return management_pb2.CreateApiKeyResponse(api_key=api_key, key=key)

    @abort_on_error
    async def ListApiKeys(self, request: management_pb2.ListApiKeysRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> list[management_pb2.ApiKey]:
            return [management_pb2.ApiKey(prefix=k.prefix, name=k.name, created_at=_timestamp(k.created_at))
                    for k in await store.list_api_keys(session)]

        return management_pb2.ListApiKeysResponse(api_keys=await self.control.read("listing API keys", run))

    @abort_on_error
    async def RevokeApiKey(self, request: management_pb2.RevokeApiKeyRequest, context: Any) -> Any:
        await self.control.write("revoking an API key", lambda s: store.revoke_api_key(s, request.prefix))
        return management_pb2.RevokeApiKeyResponse()

    @abort_on_error
    async def GetStatus(self, request: management_pb2.GetStatusRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> management_pb2.GetStatusResponse:
            replicas = await store.all_replicas(session)
            nodes = []
            for n in await store.all_nodes(session):
                nodes.append(management_pb2.NodeStatus(
                    node_id=n.id, address=n.address, cpu_count=n.cpu_count, memory_bytes=n.memory_bytes,
                    gpus=[events_pb2.Gpu(name=str(g.get("name", "")),
                                         memory_bytes=int(g.get("memory_bytes", 0))) for g in n.gpus],
                    replica_ids=[r.id for r in replicas if r.node_id == n.id],
                    last_seen=_timestamp(n.last_seen),
                ))
            deployments = await store.live_deployments(session)
            return management_pb2.GetStatusResponse(
                nodes=nodes, models=await store.count_models(session),
                active_deployments=sum(1 for d in deployments if d.status == lifecycle.ACTIVE))

        return await self.control.read("reading the status", run)

    # --- the lifecycle: models, deployments, environments, promotion --------------------------

    @abort_on_error
    async def DeleteModel(self, request: management_pb2.DeleteModelRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> None:
            await store.delete_model(session, await store.find_model(session, request.model_id))

        await self.control.write(f"deleting model {request.model_id}", run)
        return management_pb2.DeleteModelResponse(success=True)

    async def _deployment_action(self, action: str, model_ref: str, ref: str) -> None:
        async def run(session: AsyncSession) -> None:
            model = await store.find_model(session, model_ref)
            d = await store.find_deployment(session, model, ref)
            serves = next((e.name for e in await store.environments(session, model.id)
                           if e.deployment_id == d.id), "")
            promotion.check(action, store.deployment_facts(d), serves=serves)
            if action == promotion.ACTIVATE:
                d.active, d.demoted_at = True, None
                d.desired_replicas = max(1, d.min_replica)  # compute again, scaled to zero or not
            elif action == promotion.DEACTIVATE:
                d.active = False
            elif action == promotion.DELETE:
                await store.delete_deployment(session, d)
            await session.flush()

        await self.control.write(f"{action} deployment {ref}", run)

    @abort_on_error
    async def ActivateDeployment(self, request: management_pb2.ActivateDeploymentRequest, context: Any) -> Any:
        await self._deployment_action(promotion.ACTIVATE, request.model_id, request.deployment_id)
        return management_pb2.ActivateDeploymentResponse(success=True)

    @abort_on_error
    async def DeactivateDeployment(
        self, request: management_pb2.DeactivateDeploymentRequest, context: Any
    ) -> Any:
        await self._deployment_action(promotion.DEACTIVATE, request.model_id, request.deployment_id)
        return management_pb2.DeactivateDeploymentResponse(success=True)

    @abort_on_error
    async def DeleteDeployment(self, request: management_pb2.DeleteDeploymentRequest, context: Any) -> Any:
        await self._deployment_action(promotion.DELETE, request.model_id, request.deployment_id)
        return management_pb2.DeleteDeploymentResponse(success=True)

    @abort_on_error
    async def UpdateDeployment(self, request: management_pb2.UpdateDeploymentRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> str:
            model = await store.find_model(session, request.model_id)
            d = await store.find_deployment(session, model, request.deployment_id)
            existing = await store.model_deployments(session, model.id, include_deleted=True)
            d.name = lifecycle.check_rename(store.deployment_facts(d), request.name,
                                            [x.name for x in existing if x.id != d.id])
            await session.flush()
            return d.id

        deployment_id = await self.control.write(f"renaming deployment {request.deployment_id}", run, wake=False)

        async def describe(session: AsyncSession) -> management_pb2.Deployment:
            d = await store.get_deployment(session, deployment_id)
            return deployment_proto(d, (await _ready_counts(session)).get(d.id, 0))

        return management_pb2.UpdateDeploymentResponse(
            deployment=await self.control.read("reading the renamed deployment", describe))

    @abort_on_error
    async def PromoteDeployment(self, request: management_pb2.PromoteDeploymentRequest, context: Any) -> Any:
        env_name = request.env_name or lifecycle.PRODUCTION
        if not request.deployment_id:
            raise InvalidArgument("deployment_id is required: the deployment to promote (id or name)")
        now = self.control.clock()
        requested = request.ramp_up_duration_seconds if request.HasField("ramp_up_duration_seconds") else None

        async def run(session: AsyncSession) -> str:
            model = await store.find_model(session, request.model_id)
            env = await store.get_environment(session, model, env_name)
            duration = canary.duration_for(_promotion_settings(env), requested)
            d = await store.find_deployment(session, model, request.deployment_id)
            envs = await store.environments(session, model.id)
            promotion.start_promotion(
                promotion.EnvironmentFacts(env.name, env.deployment_id or "", env.candidate_deployment_id),
                store.deployment_facts(d))
            serving = {e.deployment_id: e.name for e in envs if e.deployment_id}
            if promotion.needs_copy(store.deployment_facts(d), env.name, serving):
                existing = await store.model_deployments(session, model.id, include_deleted=True)
                candidate = await store.add_deployment(session, DeploymentRecord(
                    id=new_id("dep"), model_id=model.id,
                    name=lifecycle.next_deployment_name(x.name for x in existing), is_development=False,
                    environment="", status=lifecycle.DEPLOYING if d.artifact_digest else lifecycle.BUILDING,
                    status_reason="", build_id=d.build_id, artifact_digest=d.artifact_digest,
                    predict_concurrency=d.predict_concurrency,
                    **autoscaling_settings.as_dict(autoscaling_settings.DEFAULTS),
                    desired_replicas=1, active=True, deleted=False, created_at=now,
                ))
            else:
                candidate = d
                # Its replicas were loaded without the environment's name: replace them.
                for r in await store.all_replicas(session):
                    if r.deployment_id == d.id and r.state != facts.STOPPING:
                        await store.set_replica_state(session, r, facts.STOPPING, now)
            _begin_promotion(env, candidate)
            if duration and env.deployment_id and (
                    current := await session.get(DeploymentRecord, env.deployment_id)) is not None:
                # A canary waits for the current deployment's minimum of ready replicas: start them.
                env.canary_duration_seconds = duration
                candidate.desired_replicas = max(candidate.desired_replicas, current.min_replica)
            return candidate.id

        candidate_id = await self.control.write(f"promoting {request.deployment_id} to {env_name}", run)
        log.info("model %s: promoting %s to %s", request.model_id, candidate_id, env_name)

        async def describe(session: AsyncSession) -> management_pb2.Deployment:
            d = await store.get_deployment(session, candidate_id)
            return deployment_proto(d, (await _ready_counts(session)).get(d.id, 0))

        deployment = await self.control.read("reading the promoted deployment", describe)
        return management_pb2.PromoteDeploymentResponse(deployment=deployment)

    async def _environment(self, model_ref: str, name: str) -> management_pb2.Environment:
        async def run(session: AsyncSession) -> management_pb2.Environment:
            model = await store.find_model(session, model_ref)
            return await _environment_proto(session, await store.get_environment(session, model, name))

        return await self.control.read("reading an environment", run)

    @abort_on_error
    async def ListEnvironments(self, request: management_pb2.ListEnvironmentsRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> list[management_pb2.Environment]:
            model = await store.find_model(session, request.model_id)
            await store.get_environment(session, model, lifecycle.PRODUCTION)
            envs = sorted(await store.environments(session, model.id),
                          key=lambda e: (e.name != lifecycle.PRODUCTION, e.name))
            return [await _environment_proto(session, e) for e in envs]

        # A write: a model made before environments had rows gets its production row here.
        return management_pb2.ListEnvironmentsResponse(
            environments=await self.control.write("listing environments", run, wake=False))

    @abort_on_error
    async def CreateEnvironment(self, request: management_pb2.CreateEnvironmentRequest, context: Any) -> Any:
        settings = autoscaling_settings.updated(
            autoscaling_settings.DEFAULTS, _patch(request.autoscaling_settings), self.max_replica_cap)
        now = self.control.clock()

        async def run(session: AsyncSession) -> None:
            model = await store.find_model(session, request.model_id)
            existing = {e.name for e in await store.environments(session, model.id)}
            promotion.check_create_environment(request.name, existing)
            env = await store.add_environment(session, model, request.name,
                                              autoscaling_settings.as_dict(settings), now)
            if request.HasField("promotion_settings"):
                _set_promotion_settings(env, _patch_promotion(_promotion_settings(env), request.promotion_settings))

        await self.control.write(f"creating environment {request.name}", run, wake=False)
        return management_pb2.CreateEnvironmentResponse(
            environment=await self._environment(request.model_id, request.name))

    @abort_on_error
    async def GetEnvironment(self, request: management_pb2.GetEnvironmentRequest, context: Any) -> Any:
        return management_pb2.GetEnvironmentResponse(
            environment=await self._environment(request.model_id, request.env_name))

    @abort_on_error
    async def UpdateEnvironment(self, request: management_pb2.UpdateEnvironmentRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> None:
            model = await store.find_model(session, request.model_id)
            env = await store.get_environment(session, model, request.env_name)
            settings = autoscaling_settings.updated(
                _env_settings(env), _patch(request.autoscaling_settings), self.max_replica_cap)
            promotion_settings = _patch_promotion(_promotion_settings(env), request.promotion_settings)
            env.settings = {**(env.settings or {}), **autoscaling_settings.as_dict(settings)}
            _set_promotion_settings(env, promotion_settings)
            # The environment's deployment takes its settings at once.
            for ref in (env.deployment_id, env.candidate_deployment_id):
                if ref and (d := await session.get(DeploymentRecord, ref)) is not None:
                    _apply_settings(d, settings)
            await session.flush()

        await self.control.write(f"updating environment {request.env_name}", run)
        return management_pb2.UpdateEnvironmentResponse(
            environment=await self._environment(request.model_id, request.env_name))

    @abort_on_error
    async def CancelPromotion(self, request: management_pb2.CancelPromotionRequest, context: Any) -> Any:
        env_name = request.env_name or lifecycle.PRODUCTION
        now = self.control.clock()

        async def run(session: AsyncSession) -> str:
            model = await store.find_model(session, request.model_id)
            env = await store.get_environment(session, model, env_name)
            if not env.candidate_deployment_id:
                raise Conflict(f"no promotion to {env_name} is in progress")
            candidate_id = env.candidate_deployment_id
            candidate = await session.get(DeploymentRecord, candidate_id)
            if candidate is not None and candidate.id != env.deployment_id and not candidate.environment:
                # Its in-flight requests finish (the drain), then it scales to zero like a demoted one.
                candidate.demoted_at = now
            env.candidate_deployment_id, env.promotion_failure = "", "the promotion was cancelled"
            end_canary(env)
            await session.flush()
            return candidate_id

        candidate_id = await self.control.write(f"cancelling the promotion to {env_name}", run)
        log.info("model %s: promotion of %s to %s cancelled", request.model_id, candidate_id, env_name)
        return management_pb2.CancelPromotionResponse(
            environment=await self._environment(request.model_id, env_name))

    @abort_on_error
    async def DeleteEnvironment(self, request: management_pb2.DeleteEnvironmentRequest, context: Any) -> Any:
        promotion.check_delete_environment(request.env_name)

        async def run(session: AsyncSession) -> None:
            model = await store.find_model(session, request.model_id)
            await store.delete_environment(session, await store.get_environment(session, model, request.env_name))

        await self.control.write(f"deleting environment {request.env_name}", run)
        return management_pb2.DeleteEnvironmentResponse(success=True)


    @abort_on_error
    async def UpdateAutoscalingSettings(
        self, request: management_pb2.UpdateAutoscalingSettingsRequest, context: Any
    ) -> Any:
        changes = {name: getattr(request, name) for name in autoscaling_settings.FIELDS
                   if request.HasField(name)}

        async def run(session: AsyncSession) -> autoscaling_settings.PatchResult:
            model = await store.find_model(session, request.model_id)
            d = await store.find_deployment(session, model, request.deployment_id)
            result = autoscaling_settings.apply_patch(
                store.autoscaling_of(d), changes, is_development=d.is_development,
                max_replica_cap=self.max_replica_cap)
            if result.status == autoscaling_settings.ACCEPTED:
                store.set_autoscaling(d, result.settings)
                # Keep the autoscaler's count inside the new bounds at once.
                d.desired_replicas = lifecycle.clamp_scale(d.desired_replicas, d.min_replica, d.max_replica)
                await session.flush()
            return result

        result = await self.control.write(f"updating autoscaling of {request.deployment_id}", run)
        return management_pb2.UpdateAutoscalingSettingsResponse(status=result.status, message=result.message)

    @abort_on_error
    async def PatchDevelopment(self, request: management_pb2.PatchDevelopmentRequest, context: Any) -> Any:
        """Live reload: hand the files to the agents running the development deployment's replicas."""

        async def targets(session: AsyncSession) -> tuple[str, list[tuple[str, str]]]:
            model = await store.find_model(session, request.model_id)
            dev = next((d for d in await store.model_deployments(session, model.id) if d.is_development), None)
            if dev is None:
                raise NotFound(f"model {model.name!r} has no development deployment: `kingpost push` first")
            nodes = {n.id: n.address for n in await store.all_nodes(session)}
            return dev.id, [(r.id, nodes[r.node_id]) for r in await store.all_replicas(session)
                            if r.deployment_id == dev.id and r.state == facts.READY and r.node_id in nodes]

        deployment_id, replicas = await self.control.read("finding the development replicas", targets)
        if not replicas:
            raise Unavailable(f"development deployment {deployment_id} has no running replica to reload "
                              "(scaled to zero or still starting): push instead, or wake it with a request")
        patch = getattr(self.control.agents, "patch_replica", None)
        if patch is None:
            raise Unavailable("this scheduler's agent client cannot patch replicas")
        reply = management_pb2.PatchDevelopmentResponse(deployment_id=deployment_id)
        for replica_id, address in replicas:
            try:
                result = await patch(address, agent_pb2.PatchReplicaRequest(
                    replica_id=replica_id, files=dict(request.files), deleted=list(request.deleted)))
            except KingpostError as e:
                reply.errors.append(f"{replica_id}: {e.message}")
                continue
            if result.error:
                reply.errors.append(f"{replica_id}: {result.error}")
            else:
                reply.reloaded += 1
                reply.load_seconds = max(reply.load_seconds, result.load_seconds)
        return reply


class SchedulerServicer(scheduler_pb2_grpc.SchedulerServiceServicer):
    def __init__(self, control: Control) -> None:
        self.control = control

    async def WatchRoutes(self, request: scheduler_pb2.WatchRoutesRequest, context: Any) -> Any:
        log.info("route watcher %r connected", request.watcher)
        metrics.ROUTE_WATCHERS.inc()
        try:
            async for version, table in self.control.routes.watch():
                yield scheduler_pb2.WatchRoutesResponse(table=route_table_proto(version, table))
        finally:
            metrics.ROUTE_WATCHERS.dec()

    @abort_on_error
    async def ScaleDeployment(self, request: scheduler_pb2.ScaleDeploymentRequest, context: Any) -> Any:
        if request.replicas < 0:
            raise InvalidArgument(f"replicas = {request.replicas}: must be 0 or more")

        async def scale(session: AsyncSession) -> int:
            d = await store.get_deployment(session, request.deployment_id)
            if d.is_development:  # Baseten's fixed development constraints: 0..1
                d.desired_replicas = lifecycle.clamp_scale(request.replicas, 0, 1)
            else:
                d.desired_replicas = lifecycle.clamp_scale(request.replicas, d.min_replica, d.max_replica)
            await session.flush()
            return d.desired_replicas

        replicas = await self.control.write(f"scaling {request.deployment_id}", scale)
        return scheduler_pb2.ScaleDeploymentResponse(replicas=replicas)

    @abort_on_error
    async def DeactivateIdleDeployment(
        self, request: scheduler_pb2.DeactivateIdleDeploymentRequest, context: Any
    ) -> Any:
        async def deactivate(session: AsyncSession) -> bool:
            d = await store.get_deployment(session, request.deployment_id)
            if not d.active or d.status != lifecycle.SCALED_TO_ZERO:
                return False
            d.active = False
            await session.flush()
            log.info("deployment %s deactivated: no traffic for %.1f days (activate it to serve again)",
                     d.id, request.idle_seconds / 86400)
            return True

        done = await self.control.write(f"deactivating idle {request.deployment_id}", deactivate)
        return scheduler_pb2.DeactivateIdleDeploymentResponse(deactivated=done)


def _patch(p: management_pb2.EnvironmentAutoscalingPatch) -> dict[str, int | str]:
    return {f: getattr(p, f) for f in autoscaling_settings.FIELDS if p.HasField(f)}


def _env_settings(env: EnvironmentRecord) -> autoscaling_settings.AutoscalingSettings:
    return autoscaling_settings.from_dict(env.settings)


def _apply_settings(d: DeploymentRecord, settings: autoscaling_settings.AutoscalingSettings) -> None:
    store.set_autoscaling(d, settings)


def _begin_promotion(env: EnvironmentRecord, candidate: DeploymentRecord) -> None:
    """The candidate takes the environment's autoscaling settings and starts (or wakes)."""
    _apply_settings(candidate, _env_settings(env))
    candidate.demoted_at = None
    # Ready replicas first (Baseten waits for them), even when scaled to zero until now.
    candidate.desired_replicas = max(1, candidate.min_replica)
    env.candidate_deployment_id, env.promotion_failure = candidate.id, ""


async def _environment_proto(session: AsyncSession, env: EnvironmentRecord) -> management_pb2.Environment:
    settings = _env_settings(env)
    out = management_pb2.Environment(
        name=env.name, model_id=env.model_id, created_at=_timestamp(env.created_at),
        autoscaling_settings=management_pb2.AutoscalingSettings(**autoscaling_settings.as_dict(settings)),
        promoting_deployment_id=env.candidate_deployment_id, promotion_failure=env.promotion_failure,
    )
    promo = _promotion_settings(env)
    out.promotion_settings.CopyFrom(management_pb2.PromotionSettings(
        ramp_up_while_promoting=promo.ramp_up_while_promoting,
        ramp_up_duration_seconds=promo.ramp_up_duration_seconds))
    if env.deployment_id and (d := await session.get(DeploymentRecord, env.deployment_id)) is not None:
        out.current_deployment.CopyFrom(deployment_proto(d, (await _ready_counts(session)).get(d.id, 0)))
        stage = (env.canary_stage or 0) if env.canary_duration_seconds else 0
        for deployment_id, weight in canary.split(d.id, env.candidate_deployment_id, stage):
            out.traffic[deployment_id] = weight
        if env.canary_duration_seconds and env.candidate_deployment_id:
            out.current_canary.CopyFrom(management_pb2.Canary(
                deployment_id=env.candidate_deployment_id, stage=stage, stages=canary.STAGES,
                candidate_weight=100 * stage // canary.STAGES,
                ramp_up_duration_seconds=env.canary_duration_seconds))
            if env.canary_started_at is not None:
                out.current_canary.started_at.CopyFrom(_timestamp(env.canary_started_at))
    return out


def _promotion_settings(env: EnvironmentRecord) -> canary.PromotionSettings:
    stored = (env.settings or {}).get("promotion_settings") or {}
    return canary.PromotionSettings(
        ramp_up_while_promoting=bool(stored.get(canary.RAMP_UP_WHILE_PROMOTING, False)),
        ramp_up_duration_seconds=int(stored.get(canary.RAMP_UP_DURATION_SECONDS, canary.DEFAULT_DURATION)))


def _patch_promotion(current: canary.PromotionSettings,
                     p: management_pb2.PromotionSettings) -> canary.PromotionSettings:
    changes = {f: getattr(p, f) for f in (canary.RAMP_UP_WHILE_PROMOTING, canary.RAMP_UP_DURATION_SECONDS)
               if p.HasField(f)}
    return canary.patch_promotion_settings(current, changes)


def _set_promotion_settings(env: EnvironmentRecord, settings: canary.PromotionSettings) -> None:
    # A new dict: SQLAlchemy sees a JSON column change only when it is assigned.
    env.settings = {**(env.settings or {}), "promotion_settings": {
        canary.RAMP_UP_WHILE_PROMOTING: settings.ramp_up_while_promoting,
        canary.RAMP_UP_DURATION_SECONDS: settings.ramp_up_duration_seconds}}


def _newest(looked_up: BuildInfo, from_event: BuildInfo | None) -> BuildInfo:
    """GetBuild's answer, unless a BuildEvent already told us the build finished."""
    if from_event is not None and from_event.finished and not looked_up.finished:
        return BuildInfo(looked_up.build_id, from_event.state, from_event.artifact_digest, from_event.message,
                         looked_up.predict_concurrency)
    return looked_up



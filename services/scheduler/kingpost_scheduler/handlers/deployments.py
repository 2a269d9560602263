"""ManagementService: models and their deployments — push, list, get, rename, activate, deactivate,
delete, and a deployment's autoscaling settings."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kingpost import autoscaling_settings
from kingpost.errors import InvalidArgument, NotFound
from kingpost.grpc_status import abort_on_error
from kingpost.ids import new_id
from kingpost.v1 import management_pb2
from kingpost_scheduler import convert, deployment_defaults, facts, lifecycle, promotion, records, replica_secrets, store
from kingpost_scheduler.handlers.base import Handlers, describe_deployment, describe_model
from kingpost_scheduler.facts import READY
from kingpost_scheduler.tables import (
    DeploymentRecord,
    EnvironmentRecord,
    ModelRecord,
    ReplicaRecord,
)

log = logging.getLogger(__name__)


class ModelsAndDeployments(Handlers):
    @abort_on_error
    async def ListModels(self, request: management_pb2.ListModelsRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> list[management_pb2.Model]:
            return [await describe_model(session, m) for m in await store.list_models(session)]

        return management_pb2.ListModelsResponse(models=await self.control.read("listing models", run))

    @abort_on_error
    async def GetModel(self, request: management_pb2.GetModelRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> management_pb2.Model:
            return await describe_model(session, await store.find_model(session, request.model_id))

        return await self.control.read("reading a model", run)

    @abort_on_error
    async def DeleteModel(self, request: management_pb2.DeleteModelRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> str:
            model = await store.find_model(session, request.model_id)
            await store.delete_model(session, model)
            return model.id

        model_id = await self.control.write(f"deleting model {request.model_id}", run)
        return management_pb2.DeleteModelResponse(success=True, id=model_id, deleted=True)

    @abort_on_error
    async def CreateDeployment(self, request: management_pb2.CreateDeploymentRequest, context: Any) -> Any:
        name = lifecycle.validate_model_name(request.model_name)
        if not request.build_id:
            raise InvalidArgument("build_id is required: upload the Truss first (BuildService.UploadSource)")
        looked_up = await self.builds.get_build(request.build_id)
        now = self.control.clock()

        async def create(session: AsyncSession) -> tuple[ModelRecord, DeploymentRecord]:
            if absent := replica_secrets.missing(looked_up.required_secrets,
                                                 await replica_secrets.stored_names(session)):
                raise replica_secrets.missing_error(absent)  # before anything is made
            model = await store.model_by_name(session, name) \
                or await store.add_model(session, new_id("mdl"), name, now)
            existing = await store.model_deployments(session, model.id, include_deleted=True)
            push = lifecycle.plan_push(
                [records.deployment_facts(d) for d in existing], publish=request.publish,
                environment=request.environment, deployment_name=request.deployment_name)
            for d in existing:
                if d.id in push.replaces:
                    await store.delete_deployment(session, d)
            deployment = await store.add_deployment(session, records.new_deployment(
                new_id("dep"), model.id, deployment_defaults.pushed(push, request.build_id), now))
            if push.environment:
                # Deploying straight into an environment is a promotion of the new deployment.
                env = await _environment_to_deploy_into(session, model, push.environment)
                plan = promotion.deploy_into(records.environment_facts(env),
                                             min_replica=records.environment_autoscaling(env).min_replica)
                records.begin_promotion(env, deployment, plan)
            records.apply_build(deployment, self.control.events.newest(looked_up))
            return model, deployment

        async def reply(session: AsyncSession, created: tuple[ModelRecord, DeploymentRecord]
                        ) -> management_pb2.CreateDeploymentResponse:
            model, deployment = created
            return management_pb2.CreateDeploymentResponse(
                model=await describe_model(session, model),
                deployment=await describe_deployment(session, deployment))

        response = await self.control.write(f"deploying build {request.build_id}", create, reply)
        log.info("model %s: deployment %s of build %s", name, response.deployment.id, request.build_id)
        return response

    @abort_on_error
    async def ListDeployments(self, request: management_pb2.ListDeploymentsRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> list[management_pb2.Deployment]:
            model = await store.find_model(session, request.model_id)
            replicas: dict[str, list[ReplicaRecord]] = defaultdict(list)
            for r in await store.all_replicas(session):
                replicas[r.deployment_id].append(r)
            return [convert.deployment(d, sum(r.state == READY for r in replicas[d.id]),
                                       sorted(replicas[d.id], key=lambda r: (r.created_at, r.id)))
                    for d in await store.model_deployments(session, model.id)]

        deployments = await self.control.read("listing deployments", run)
        return management_pb2.ListDeploymentsResponse(deployments=deployments)

    @abort_on_error
    async def GetDeployment(self, request: management_pb2.GetDeploymentRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> management_pb2.Deployment:
            model = await store.find_model(session, request.model_id)
            d = await store.find_deployment(session, model, request.deployment_id)
            return await describe_deployment(session, d)

        deployment = await self.control.read("reading a deployment", run)
        return deployment

    @abort_on_error
    async def UpdateDeployment(self, request: management_pb2.UpdateDeploymentRequest, context: Any) -> Any:
        async def rename(session: AsyncSession) -> DeploymentRecord:
            model = await store.find_model(session, request.model_id)
            d = await store.find_deployment(session, model, request.deployment_id)
            existing = await store.model_deployments(session, model.id, include_deleted=True)
            d.name = lifecycle.check_rename(records.deployment_facts(d), request.name,
                                            [x.name for x in existing if x.id != d.id])
            await session.flush()
            return d

        renamed = await self.control.write(f"renaming deployment {request.deployment_id}", rename,
                                           describe_deployment)
        return renamed

    @abort_on_error
    async def ActivateDeployment(
        self, request: management_pb2.ActivateDeploymentRequest, context: Any
    ) -> Any:
        _, no_op = await self._deployment_action(promotion.ACTIVATE, request.model_id, request.deployment_id)
        return management_pb2.ActivateDeploymentResponse(success=True, no_op=no_op)

    @abort_on_error
    async def DeactivateDeployment(
        self, request: management_pb2.DeactivateDeploymentRequest, context: Any
    ) -> Any:
        _, no_op = await self._deployment_action(promotion.DEACTIVATE, request.model_id, request.deployment_id)
        return management_pb2.DeactivateDeploymentResponse(success=True, no_op=no_op)

    @abort_on_error
    async def DeleteDeployment(self, request: management_pb2.DeleteDeploymentRequest, context: Any) -> Any:
        d, _ = await self._deployment_action(promotion.DELETE, request.model_id, request.deployment_id)
        return management_pb2.DeleteDeploymentResponse(success=True, id=d.id, deleted=True, model_id=d.model_id)

    async def _deployment_action(self, action: str, model_ref: str, ref: str,
                                 env_name: str = "") -> tuple[DeploymentRecord, bool]:
        """Do `action` to the deployment `ref` names (or, with `env_name`, that environment's current
        one); the deployment, and whether it already was as asked (Baseten's `no_op`)."""
        async def run(session: AsyncSession) -> tuple[DeploymentRecord, bool]:
            model = await store.find_model(session, model_ref)
            if env_name:
                env = await store.get_environment(session, model, env_name)
                if not env.deployment_id:
                    raise NotFound(f"environment {env_name!r} of model {model.name!r} has no deployment yet: "
                                   "promote one to it first")
                d = await store.get_deployment(session, env.deployment_id)
            else:
                d = await store.find_deployment(session, model, ref)
            no_op = d.active if action == promotion.ACTIVATE else (
                not d.active if action == promotion.DEACTIVATE else False)
            serves = next((e.name for e in await store.environments(session, model.id)
                           if e.deployment_id == d.id), "")
            promotion.check(action, records.deployment_facts(d), serves=serves)
            if action == promotion.ACTIVATE:
                # Wanted again, scaled to zero or not: it serves once a replica is ready. A FAILED
                # one tries its model again, as new.
                status = lifecycle.activated(records.deployment_facts(d))
                d.status, d.status_reason = status.status, status.reason
                d.active, d.demoted_at = True, None
                d.desired_replicas = deployment_defaults.about_to_serve(d.min_replica)
            elif action == promotion.DEACTIVATE:
                d.active = False
            elif action == promotion.DELETE:
                await store.delete_deployment(session, d)
            await session.flush()
            return d, no_op

        return await self.control.write(f"{action} deployment {ref or env_name}", run)

    @abort_on_error
    async def RetryDeployment(self, request: management_pb2.RetryDeploymentRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> tuple[DeploymentRecord, str]:
            model = await store.find_model(session, request.model_id)
            d = await store.find_deployment(session, model, request.deployment_id)
            refusal = lifecycle.retry_refusal(records.deployment_facts(d))
            if not refusal:
                failed = [r.id for r in await store.all_replicas(session)
                          if r.deployment_id == d.id and r.state == facts.FAILED]
                await store.delete_replicas(session, failed)  # else the next pass fails it again
                d.status, d.status_reason, d.active = lifecycle.DEPLOYING, "", True
                d.desired_replicas = deployment_defaults.about_to_serve(d.min_replica)
                await session.flush()
            return d, refusal

        async def reply(session: AsyncSession, done: tuple[DeploymentRecord, str]
                        ) -> management_pb2.RetryDeploymentResponse:
            d, refusal = done
            return management_pb2.RetryDeploymentResponse(
                retried=not refusal, reason=refusal, deployment=await describe_deployment(session, d))

        return await self.control.write(f"retrying deployment {request.deployment_id}", run, reply)

    @abort_on_error
    async def ActivateEnvironment(self, request: management_pb2.ActivateEnvironmentRequest, context: Any) -> Any:
        _, no_op = await self._deployment_action(promotion.ACTIVATE, request.model_id, "", request.env_name)
        return management_pb2.ActivateDeploymentResponse(success=True, no_op=no_op)

    @abort_on_error
    async def DeactivateEnvironment(self, request: management_pb2.DeactivateEnvironmentRequest,
                                    context: Any) -> Any:
        _, no_op = await self._deployment_action(promotion.DEACTIVATE, request.model_id, "", request.env_name)
        return management_pb2.DeactivateDeploymentResponse(success=True, no_op=no_op)

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
                records.autoscaling_of(d), changes, is_development=d.is_development,
                max_replica_cap=self.max_replica_cap)
            if result.status == autoscaling_settings.ACCEPTED:
                records.set_autoscaling(d, result.settings)
                # Keep the autoscaler's count inside the new bounds at once.
                d.desired_replicas = lifecycle.clamp_scale(d.desired_replicas, d.min_replica, d.max_replica)
                await session.flush()
            return result

        result = await self.control.write(f"updating autoscaling of {request.deployment_id}", run)
        return management_pb2.UpdateAutoscalingSettingsResponse(status=result.status, message=result.message)


async def _environment_to_deploy_into(session: AsyncSession, model: ModelRecord,
                                      name: str) -> EnvironmentRecord:
    try:
        return await store.get_environment(session, model, name)
    except NotFound:
        raise NotFound(f"model {model.name!r} has no environment {name!r}: create it first "
                       f"(`kingpost environments create` or POST /v1/models/{{model_id}}/environments)"
                       ) from None

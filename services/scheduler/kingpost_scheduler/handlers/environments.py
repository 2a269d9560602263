"""ManagementService: a model's environments and promotions into them (plain or canary), and
cancelling one. How a promotion begins and ends is promotion.py's; its later steps, the reconcile
pass's (promotion_steps.py)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kingpost import autoscaling_settings
from kingpost.errors import InvalidArgument
from kingpost.grpc_status import abort_on_error
from kingpost.ids import new_id
from kingpost.v1 import management_pb2
from kingpost_scheduler import canary, deployment_defaults, facts, lifecycle, promotion, records, store
from kingpost_scheduler.handlers.base import Handlers, describe_deployment, describe_environment
from kingpost_scheduler.tables import DeploymentRecord, EnvironmentRecord

log = logging.getLogger(__name__)


class EnvironmentsAndPromotions(Handlers):
    @abort_on_error
    async def ListEnvironments(self, request: management_pb2.ListEnvironmentsRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> list[management_pb2.Environment]:
            model = await store.find_model(session, request.model_id)
            await store.get_environment(session, model, lifecycle.PRODUCTION)
            envs = sorted(await store.environments(session, model.id),
                          key=lambda e: (e.name != lifecycle.PRODUCTION, e.name))
            return [await describe_environment(session, e) for e in envs]

        # A write: a model made before environments had rows gets its production row here.
        return management_pb2.ListEnvironmentsResponse(
            environments=await self.control.write("listing environments", run))

    @abort_on_error
    async def CreateEnvironment(self, request: management_pb2.CreateEnvironmentRequest, context: Any) -> Any:
        settings = autoscaling_settings.updated(autoscaling_settings.DEFAULTS,
                                                _autoscaling_patch(request.autoscaling_settings),
                                                self.max_replica_cap)
        now = self.control.clock()

        async def run(session: AsyncSession) -> EnvironmentRecord:
            model = await store.find_model(session, request.model_id)
            existing = {e.name for e in await store.environments(session, model.id)}
            promotion.check_create_environment(request.name, existing)
            env = await store.add_environment(session, model, request.name,
                                              autoscaling_settings.as_dict(settings), now)
            if request.HasField("promotion_settings"):
                records.set_promotion_settings(
                    env, _patch_promotion(records.promotion_settings_of(env), request.promotion_settings))
            return env

        created = await self.control.write(f"creating environment {request.name}", run, describe_environment)
        return created

    @abort_on_error
    async def GetEnvironment(self, request: management_pb2.GetEnvironmentRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> management_pb2.Environment:
            model = await store.find_model(session, request.model_id)
            return await describe_environment(session,
                                              await store.get_environment(session, model, request.env_name))

        environment = await self.control.read("reading an environment", run)
        return environment

    @abort_on_error
    async def UpdateEnvironment(self, request: management_pb2.UpdateEnvironmentRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> tuple[EnvironmentRecord, bool]:
            model = await store.find_model(session, request.model_id)
            env = await store.get_environment(session, model, request.env_name)
            before = (records.environment_autoscaling(env), records.promotion_settings_of(env))
            settings = autoscaling_settings.updated(
                records.environment_autoscaling(env), _autoscaling_patch(request.autoscaling_settings),
                self.max_replica_cap)
            promotion_settings = _patch_promotion(records.promotion_settings_of(env),
                                                  request.promotion_settings)
            if (settings, promotion_settings) == before:
                return env, False
            records.set_environment_autoscaling(env, settings)
            records.set_promotion_settings(env, promotion_settings)
            # The environment's deployment takes its settings at once.
            for ref in (env.deployment_id, env.candidate_deployment_id):
                if ref and (d := await session.get(DeploymentRecord, ref)) is not None:
                    records.set_autoscaling(d, settings)
            await session.flush()
            return env, True

        async def reply(session: AsyncSession, done: tuple[EnvironmentRecord, bool]
                        ) -> management_pb2.UpdateEnvironmentResponse:
            env, changed = done
            return management_pb2.UpdateEnvironmentResponse(
                environment=await describe_environment(session, env), status="ACCEPTED" if changed else "UNCHANGED",
                message=f"environment {env.name} updated" if changed else f"environment {env.name}: nothing to change")

        return await self.control.write(f"updating environment {request.env_name}", run, reply)

    @abort_on_error
    async def DeleteEnvironment(self, request: management_pb2.DeleteEnvironmentRequest, context: Any) -> Any:
        promotion.check_delete_environment(request.env_name)

        async def run(session: AsyncSession) -> str:
            model = await store.find_model(session, request.model_id)
            env = await store.get_environment(session, model, request.env_name)
            await store.delete_environment(session, env)
            return model.id

        model_id = await self.control.write(f"deleting environment {request.env_name}", run)
        return management_pb2.DeleteEnvironmentResponse(success=True, name=request.env_name, model_id=model_id,
                                                        deleted=True)

    @abort_on_error
    async def PromoteDeployment(self, request: management_pb2.PromoteDeploymentRequest, context: Any) -> Any:
        env_name = request.env_name or lifecycle.PRODUCTION
        if not request.deployment_id:
            raise InvalidArgument("deployment_id is required: the deployment to promote (id or name)")
        now = self.control.clock()
        requested = request.ramp_up_duration_seconds if request.HasField("ramp_up_duration_seconds") else None

        async def run(session: AsyncSession) -> DeploymentRecord:
            model = await store.find_model(session, request.model_id)
            env = await store.get_environment(session, model, env_name)
            promotion_settings = records.promotion_settings_of(env)
            duration = canary.duration_for(promotion_settings, requested)
            d = await store.find_deployment(session, model, request.deployment_id)
            if env.deployment_id == d.id and not env.candidate_deployment_id:
                return d  # it serves there already (a push made it production, say): nothing to do
            serving = {e.deployment_id: e.name for e in await store.environments(session, model.id)
                       if e.deployment_id}
            current = await session.get(DeploymentRecord, env.deployment_id) if env.deployment_id else None
            plan = promotion.plan(
                records.environment_facts(env), records.deployment_facts(d), serving,
                min_replica=records.environment_autoscaling(env).min_replica, duration_seconds=duration,
                current_min_replica=current.min_replica if current is not None else None,
                redeploy=promotion_settings.redeploy_on_promotion)
            candidate = d
            if plan.copy:
                existing = await store.model_deployments(session, model.id, include_deleted=True)
                name = lifecycle.next_deployment_name(x.name for x in existing)
                copy = deployment_defaults.promoted_copy(name, d.build_id, d.artifact_digest,
                                                         d.predict_concurrency)
                candidate = await store.add_deployment(
                    session, records.new_deployment(new_id("dep"), model.id, copy, now))
            if plan.restart_replicas:
                for r in await store.all_replicas(session):
                    if r.deployment_id == candidate.id and r.state != facts.STOPPING:
                        await store.set_replica_state(session, r, facts.STOPPING, now)
            records.begin_promotion(env, candidate, plan)
            return candidate

        promoted = await self.control.write(f"promoting {request.deployment_id} to {env_name}", run,
                                            describe_deployment)
        log.info("model %s: promoting %s to %s", request.model_id, promoted.id, env_name)
        return promoted

    @abort_on_error
    async def CancelPromotion(self, request: management_pb2.CancelPromotionRequest, context: Any) -> Any:
        env_name = request.env_name or lifecycle.PRODUCTION
        now = self.control.clock()

        async def run(session: AsyncSession) -> tuple[EnvironmentRecord, str]:
            model = await store.find_model(session, request.model_id)
            env = await store.get_environment(session, model, env_name)
            candidate_id = env.candidate_deployment_id
            candidate = await session.get(DeploymentRecord, candidate_id) if candidate_id else None
            if promotion.cancel(records.environment_facts(env),
                                records.deployment_facts(candidate) if candidate is not None else None):
                assert candidate is not None
                candidate.demoted_at = now  # it drains, then scales to zero like a demoted one
            records.end_promotion(env, promotion.CANCELLED)
            await session.flush()
            return env, candidate_id

        async def reply(session: AsyncSession, done: tuple[EnvironmentRecord, str]
                        ) -> tuple[management_pb2.Environment, str]:
            return await describe_environment(session, done[0]), done[1]

        environment, candidate_id = await self.control.write(f"cancelling the promotion to {env_name}", run,
                                                             reply)
        log.info("model %s: promotion of %s to %s cancelled", request.model_id, candidate_id, env_name)
        return management_pb2.CancelPromotionResponse(
            status="CANCELED", message=f"promotion of {candidate_id} to {env_name} canceled; all traffic is back "
            "on the current deployment", environment=environment)


def _autoscaling_patch(p: management_pb2.EnvironmentAutoscalingPatch) -> dict[str, int | str]:
    return {f: getattr(p, f) for f in autoscaling_settings.FIELDS if p.HasField(f)}


def _patch_promotion(current: canary.PromotionSettings,
                     p: management_pb2.PromotionSettings) -> canary.PromotionSettings:
    changes = {f: getattr(p, f) for f in canary.FIELDS if p.HasField(f)}
    return canary.patch_promotion_settings(current, changes)

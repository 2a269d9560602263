"""The model lifecycle through the scheduler's management API, with real NATS and real databases:
published deployments, environments, promotion (the route-table swap, the drain), deactivate,
activate, delete. The stand-ins are test_scheduler.py's (a builder, a node)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from kingpost.errors import Conflict, InvalidArgument, NotFound
from kingpost.management_shapes import current_deployment
from kingpost.v1 import agent_pb2, events_pb2, management_pb2, scheduler_pb2
from kingpost_scheduler.settings import SchedulerSettings
from tests.integration.test_scheduler import (  # noqa: F401  (fixtures)
    DIGEST,
    Harness,
    Node,
    builder,
    bus,
    eventually,
    next_item,
    node,
    settings,
    start_scheduler,
    stop_scheduler,
)


@pytest.fixture
async def h(settings: SchedulerSettings, builder, bus) -> AsyncIterator[Harness]:  # noqa: F811
    quick = settings.model_copy(update={"demoted_drain_seconds": 0.3})
    harness, loop = await start_scheduler(quick, builder[0], bus, f"life-{uuid.uuid4().hex[:8]}")
    yield harness
    await stop_scheduler(harness, loop)


async def ready(h: Harness, node: Node, what: str) -> agent_pb2.StartReplicaRequest:  # noqa: F811
    """The next replica the node is asked to start, reported READY."""
    start = await next_item(node.agent.starts, f"StartReplica for {what}")
    await h.heartbeat(node)
    await h.replica_event(start, events_pb2.REPLICA_STATE_READY, address=f"127.0.0.1:{9000 + node.agent.start_count}")
    return start


async def publish(h: Harness, node: Node, model: str = "life", **kw: object  # noqa: F811
                  ) -> tuple[management_pb2.Deployment, agent_pb2.StartReplicaRequest]:
    build_id = h.builder.add(events_pb2.BUILD_STATE_SUCCEEDED, digest=DIGEST)
    await h.heartbeat(node)
    created = await h.call("CreateDeployment", management_pb2.CreateDeploymentRequest(
        model_name=model, build_id=build_id, publish=True, **kw))
    start = await ready(h, node, created.deployment.name)
    return created.deployment, start


async def environment(h: Harness, model: str, name: str) -> management_pb2.Environment:
    return (await h.call("GetEnvironment", management_pb2.GetEnvironmentRequest(
        model_id=model, env_name=name)))


async def serving(h: Harness, model: str, env: str, deployment_id: str) -> management_pb2.Environment:
    async def check() -> management_pb2.Environment | None:
        e = await environment(h, model, env)
        return e if (current_deployment(e) or management_pb2.Deployment()).id == deployment_id and not e.promoting_deployment_id else None

    return await eventually(check, f"{env} to serve {deployment_id}")


async def promote(h: Harness, model: str, env: str, ref: str) -> management_pb2.Deployment:
    return (await h.call("PromoteDeployment", management_pb2.PromoteDeploymentRequest(
        model_id=model, env_name=env, deployment_id=ref)))


async def test_publish_names_then_promote_twice_swaps_production_and_drains_the_old(
    h: Harness, node: Node  # noqa: F811
) -> None:
    d1, d1_first = await publish(h, node)
    d2, d2_first = await publish(h, node)
    d3, _ = await publish(h, node, deployment_name="canary-candidate")
    assert (d1.name, d2.name, d3.name) == ("deployment-1", "deployment-2", "canary-candidate")
    renamed = (await h.call("UpdateDeployment", management_pb2.UpdateDeploymentRequest(
        model_id="life", deployment_id=d3.id, name="blue")))
    assert (renamed.id, renamed.name) == (d3.id, "blue")  # cosmetic: the id stays
    with pytest.raises(Conflict, match="taken"):
        await h.call("UpdateDeployment", management_pb2.UpdateDeploymentRequest(
            model_id="life", deployment_id=d3.id, name="deployment-1"))

    prod = await environment(h, "life", "production")
    assert current_deployment(prod) is None
    assert prod.autoscaling_settings.max_replica == 1  # Baseten's defaults

    # Promotion in place: d1's replica loaded without an environment, so it is replaced.
    candidate = await promote(h, "life", "production", "deployment-1")
    assert candidate.id == d1.id
    assert await next_item(node.agent.stops, "the old replica of deployment-1 to stop") == d1_first.replica_id
    start = await ready(h, node, "deployment-1 in production")
    assert (start.deployment_id, start.environment) == (d1.id, "production")
    prod = await serving(h, "life", "production", d1.id)
    assert prod.traffic == {d1.id: 100}
    assert (await h.deployment("life", "production")).is_production

    # A second promotion while one runs: 409.
    await promote(h, "life", "production", "deployment-2")
    with pytest.raises(Conflict, match="in progress"):
        await promote(h, "life", "production", "blue")
    assert await next_item(node.agent.stops, "deployment-2's replica to be replaced") == d2_first.replica_id
    await ready(h, node, "deployment-2 in production")
    await serving(h, "life", "production", d2.id)

    # The route table carries the swap; the demoted deployment drains, then scales to zero.
    watch = h.routes.WatchRoutes(scheduler_pb2.WatchRoutesRequest(watcher="test"))
    while True:  # the table that follows the commit
        table = (await asyncio.wait_for(watch.read(), 20)).table
        (model,) = [m for m in table.models if m.name == "life"]
        (prod_route,) = [e for e in model.environments if e.name == "production"]
        if [(w.deployment_id, w.weight) for w in prod_route.deployments] == [(d2.id, 100)]:
            break
    assert {d.deployment_id for d in model.deployments} >= {d1.id, d2.id}
    watch.cancel()
    stopped = await next_item(node.agent.stops, "deployment-1's replica to stop after the drain")
    assert stopped == start.replica_id  # deployment-1's production replica, not deployment-2's

    async def scaled_to_zero() -> management_pb2.Deployment | None:
        d = await h.deployment("life", d1.id)
        return d if d.status == "SCALED_TO_ZERO" else None

    old = await eventually(scaled_to_zero, "deployment-1 to be SCALED_TO_ZERO")
    assert not old.is_production and old.environment == ""

    # Production's deployment cannot be deleted; the refusal says what to do.
    with pytest.raises(Conflict, match="promote another deployment to production first"):
        await h.call("DeleteDeployment", management_pb2.DeleteDeploymentRequest(
            model_id="life", deployment_id=d2.id))


async def test_development_promotes_as_a_new_published_deployment(h: Harness, node: Node) -> None:  # noqa: F811
    build_id = h.builder.add(events_pb2.BUILD_STATE_SUCCEEDED, digest=DIGEST)
    await h.heartbeat(node)
    dev = (await h.call("CreateDeployment", management_pb2.CreateDeploymentRequest(
        model_name="devmodel", build_id=build_id))).deployment
    await ready(h, node, "development")
    candidate = await promote(h, "devmodel", "", "development")  # Baseten's deployments/development/promote
    assert candidate.id != dev.id and candidate.name == "deployment-1" and not candidate.is_development
    await ready(h, node, "the promoted copy")
    await serving(h, "devmodel", "production", candidate.id)
    assert (await h.deployment("devmodel", "development")).id == dev.id  # development stays


async def test_redeploy_on_promotion_promotes_a_new_deployment_of_the_same_build(
    h: Harness, node: Node  # noqa: F811
) -> None:
    await publish(h, node, model="redeploy")  # deployment-1 serves production
    d2, _ = await publish(h, node, model="redeploy")  # deployment-2 serves nothing: no copy needed
    await h.call("CreateEnvironment", management_pb2.CreateEnvironmentRequest(
        model_id="redeploy", name="staging",
        promotion_settings=management_pb2.PromotionSettings(redeploy_on_promotion=True)))
    candidate = await promote(h, "redeploy", "staging", d2.id)
    assert candidate.id != d2.id and candidate.build_id == d2.build_id and not candidate.is_development
    await ready(h, node, "the redeployed copy")
    await serving(h, "redeploy", "staging", candidate.id)
    assert (await h.deployment("redeploy", d2.id)).environment == ""  # the one promoted stays as it was


async def test_environments_are_created_updated_and_deleted_never_production(
    h: Harness, node: Node  # noqa: F811
) -> None:
    d1, _ = await publish(h, node, model="envs")
    with pytest.raises(NotFound, match="no environment 'staging': create it first"):
        await h.call("CreateDeployment", management_pb2.CreateDeploymentRequest(
            model_name="envs", build_id=h.builder.add(events_pb2.BUILD_STATE_SUCCEEDED, digest=DIGEST),
            environment="staging"))
    with pytest.raises(Conflict, match="exists already"):
        await h.call("CreateEnvironment", management_pb2.CreateEnvironmentRequest(
            model_id="envs", name="production"))
    created = (await h.call("CreateEnvironment", management_pb2.CreateEnvironmentRequest(
        model_id="envs", name="staging",
        autoscaling_settings=management_pb2.EnvironmentAutoscalingPatch(
            max_replica=3, backpressure_policy="reject", cold_start_timeout_seconds=20))))
    assert created.autoscaling_settings.max_replica == 3 and created.autoscaling_settings.autoscaling_window == 60
    assert (created.autoscaling_settings.backpressure_policy,
            created.autoscaling_settings.cold_start_timeout_seconds) == ("reject", 20)
    with pytest.raises(Conflict, match="exists already"):
        await h.call("CreateEnvironment", management_pb2.CreateEnvironmentRequest(model_id="envs", name="staging"))
    listed = await h.call("ListEnvironments", management_pb2.ListEnvironmentsRequest(model_id="envs"))
    assert [e.name for e in listed.environments] == ["production", "staging"]

    await promote(h, "envs", "staging", d1.id)
    start = await ready(h, node, "deployment-1 in staging")
    assert start.environment == "staging"
    await serving(h, "envs", "staging", d1.id)
    d = await h.deployment("envs", d1.id)
    assert d.environment == "staging" and d.autoscaling_settings.max_replica == 3  # the env's settings
    inherited = d.autoscaling_settings  # the kingpost extensions too
    assert (inherited.backpressure_policy, inherited.cold_start_timeout_seconds) == ("reject", 20)
    with pytest.raises(InvalidArgument, match="cold_start_timeout_seconds = 0: must be 1 to 3600"):
        await h.call("UpdateEnvironment", management_pb2.UpdateEnvironmentRequest(
            model_id="envs", env_name="staging",
            autoscaling_settings=management_pb2.EnvironmentAutoscalingPatch(cold_start_timeout_seconds=0)))

    answer = await h.call("UpdateEnvironment", management_pb2.UpdateEnvironmentRequest(
        model_id="envs", env_name="staging",
        autoscaling_settings=management_pb2.EnvironmentAutoscalingPatch(min_replica=1)))
    assert answer.status == "ACCEPTED"  # Baseten's UpdateEnvironmentResponse: the environment inside
    updated = answer.environment
    assert (updated.autoscaling_settings.min_replica, updated.autoscaling_settings.max_replica) == (1, 3)
    assert updated.autoscaling_settings.backpressure_policy == "reject"  # kept: not in the patch
    assert (await h.deployment("envs", d1.id)).autoscaling_settings.min_replica == 1
    again = await h.call("UpdateEnvironment", management_pb2.UpdateEnvironmentRequest(
        model_id="envs", env_name="staging",
        autoscaling_settings=management_pb2.EnvironmentAutoscalingPatch(min_replica=1)))
    assert (again.status, again.environment) == ("UNCHANGED", updated)

    with pytest.raises(Conflict, match="production environment cannot be deleted"):
        await h.call("DeleteEnvironment", management_pb2.DeleteEnvironmentRequest(
            model_id="envs", env_name="production"))
    await h.call("DeleteEnvironment", management_pb2.DeleteEnvironmentRequest(model_id="envs", env_name="staging"))
    with pytest.raises(NotFound):
        await environment(h, "envs", "staging")
    assert (await h.deployment("envs", d1.id)).environment == ""  # the deployment stays


async def test_deactivate_activate_delete_and_delete_the_model(h: Harness, node: Node) -> None:  # noqa: F811
    d1, start = await publish(h, node, model="gone")
    await h.call("DeactivateDeployment", management_pb2.DeactivateDeploymentRequest(
        model_id="gone", deployment_id=d1.id))
    assert await next_item(node.agent.stops, "the deactivated deployment's replica to stop") == start.replica_id
    d = await h.deployment("gone", d1.id)
    assert (d.status, d.autoscaling_settings.max_replica) == ("INACTIVE", 1)  # configuration kept
    with pytest.raises(Conflict, match="activate it first"):
        await promote(h, "gone", "production", d1.id)

    await h.call("ActivateDeployment", management_pb2.ActivateDeploymentRequest(model_id="gone", deployment_id=d1.id))
    reactivated = await ready(h, node, "the activated deployment")

    async def active() -> bool:
        return (await h.deployment("gone", d1.id)).status == "ACTIVE"

    await eventually(active, "the deployment to be ACTIVE again")

    await h.call("DeleteDeployment", management_pb2.DeleteDeploymentRequest(model_id="gone", deployment_id=d1.id))
    with pytest.raises(NotFound):
        await h.deployment("gone", d1.id)
    stopped = await next_item(node.agent.stops, "the deleted deployment's replica to stop")
    assert stopped == reactivated.replica_id

    d2, _ = await publish(h, node, model="gone")
    assert d2.name == "deployment-2"  # a deleted name is never reused
    await h.call("DeleteModel", management_pb2.DeleteModelRequest(model_id="gone"))
    with pytest.raises(NotFound):
        await h.call("GetModel", management_pb2.GetModelRequest(model_id="gone"))
    again, _ = await publish(h, node, model="gone")  # the name is free at once
    assert again.name == "deployment-1" and again.model_id != d2.model_id

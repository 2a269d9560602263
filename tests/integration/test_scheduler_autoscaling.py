"""Autoscaling through the scheduler, with real NATS and real databases: the settings PATCH, the
settings in the route table for the autoscaler, and scale to zero and back (SCALED_TO_ZERO,
WAKING_UP, ACTIVE). The stand-ins are test_scheduler.py's (a builder, a node)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from kingpost import rpc
from kingpost.autoscaling_settings import AutoscalingSettings
from kingpost.errors import InvalidArgument
from kingpost.v1 import events_pb2, management_pb2, scheduler_pb2
from kingpost_scheduler import db, records, store
from tests.integration.test_scheduler import (  # noqa: F401  (fixtures)
    DIGEST,
    Harness,
    Node,
    builder,
    bus,
    eventually,
    harness,
    next_item,
    node,
    settings,
)


async def publish_ready(h: Harness, node: Node, model: str) -> tuple[management_pb2.CreateDeploymentResponse, str]:
    build_id = h.builder.add(events_pb2.BUILD_STATE_SUCCEEDED, digest=DIGEST)
    await h.heartbeat(node)
    created = await h.call("CreateDeployment", management_pb2.CreateDeploymentRequest(
        model_name=model, build_id=build_id, publish=True))
    start = await next_item(node.agent.starts, "StartReplica")
    await h.heartbeat(node)
    await h.replica_event(start, events_pb2.REPLICA_STATE_READY, address="127.0.0.1:9999")
    await eventually(lambda: _status(h, model, created.deployment.id, "ACTIVE"), "ACTIVE")
    return created, start.replica_id


async def _status(h: Harness, model: str, deployment: str, status: str) -> bool | None:
    return (await h.deployment(model, deployment)).status == status or None


def patch(model_id: str, deployment_id: str, **fields: object
          ) -> management_pb2.UpdateAutoscalingSettingsRequest:
    return management_pb2.UpdateAutoscalingSettingsRequest(model_id=model_id, deployment_id=deployment_id, **fields)


async def test_patch_changes_only_the_given_fields_and_refuses_out_of_range(harness: Harness, node: Node) -> None:
    created, _ = await publish_ready(harness, node, "tuned")
    m, d = created.model.id, created.deployment.id
    reply = await harness.call("UpdateAutoscalingSettings", patch(m, d, max_replica=4, scale_down_delay=5))
    assert reply.status == "ACCEPTED" and "max_replica = 4" in reply.message
    got = (await harness.deployment(m, d)).autoscaling_settings
    assert (got.min_replica, got.max_replica, got.autoscaling_window, got.scale_down_delay,
            got.concurrency_target, got.target_utilization_percentage) == (0, 4, 60, 5, 1, 70)
    again = await harness.call("UpdateAutoscalingSettings", patch(m, d, max_replica=4))
    assert again.status == "UNCHANGED"

    with pytest.raises(InvalidArgument, match=r"autoscaling_window = 5: must be 10 to 3600"):
        await harness.call("UpdateAutoscalingSettings", patch(m, d, autoscaling_window=5))
    with pytest.raises(InvalidArgument, match=r"max_replica = 11: must be 1 to 10"):
        await harness.call("UpdateAutoscalingSettings", patch(m, d, max_replica=11))
    with pytest.raises(InvalidArgument, match=r"min_replica = 5: must not exceed max_replica = 4"):
        await harness.call("UpdateAutoscalingSettings", patch(m, d, min_replica=5))
    with pytest.raises(InvalidArgument, match="target_utilization_percentage = 0"):
        await harness.call("UpdateAutoscalingSettings", patch(m, d, target_utilization_percentage=0))
    with pytest.raises(InvalidArgument, match="backpressure_policy = 'drop': must be one of 'queue' or"):
        await harness.call("UpdateAutoscalingSettings", patch(m, d, backpressure_policy="drop"))


async def test_development_deployments_refuse_changes(harness: Harness) -> None:
    build_id = harness.builder.add(events_pb2.BUILD_STATE_BUILDING)
    created = await harness.call("CreateDeployment", management_pb2.CreateDeploymentRequest(
        model_name="dev", build_id=build_id))
    with pytest.raises(InvalidArgument, match="development deployment has fixed autoscaling settings"):
        await harness.call("UpdateAutoscalingSettings",
                           patch(created.model.id, created.deployment.id, max_replica=3))
    unchanged = await harness.call("UpdateAutoscalingSettings",
                                   patch(created.model.id, created.deployment.id, max_replica=1))
    assert unchanged.status == "UNCHANGED"
    # kingpost's extensions are not Baseten's fixed constraints: they change.
    extended = await harness.call("UpdateAutoscalingSettings", patch(
        created.model.id, created.deployment.id, cold_start_timeout_seconds=30))
    assert extended.status == "ACCEPTED"
    got = (await harness.deployment("dev", created.deployment.id)).autoscaling_settings
    assert (got.max_replica, got.cold_start_timeout_seconds, got.backpressure_policy) == (1, 30, "queue")


async def test_settings_reach_the_route_table_and_zero_and_back(harness: Harness, node: Node) -> None:
    watch = harness.routes.WatchRoutes(scheduler_pb2.WatchRoutesRequest(watcher="test"))
    created, replica_id = await publish_ready(harness, node, "sleepy")
    m, d = created.model.id, created.deployment.id
    await harness.call("UpdateAutoscalingSettings", patch(
        m, d, max_replica=3, scale_down_delay=7, backpressure_policy="reject", cold_start_timeout_seconds=5))

    async def route() -> scheduler_pb2.DeploymentRoute:
        while True:
            reply = await asyncio.wait_for(watch.read(), 20)
            for model in reply.table.models:
                for r in model.deployments:
                    if r.deployment_id == d:
                        return r

    r = await route()
    while r.autoscaling.max_replica != 3:
        r = await route()
    assert (r.autoscaling.scale_down_delay, r.autoscaling.desired_replicas) == (7, 1)
    # The router's part: the back-pressure policy and the cold-start timeout; serving, so no reason.
    assert (r.backpressure_policy, r.cold_start_timeout_seconds, r.status_reason) == ("reject", 5, "")
    assert r.status == scheduler_pb2.DEPLOYMENT_STATUS_ACTIVE

    reply = await rpc.call(harness.routes.ScaleDeployment, scheduler_pb2.ScaleDeploymentRequest(
        deployment_id=d, replicas=0))
    assert reply.replicas == 0
    assert await next_item(node.agent.stops, "StopReplica") == replica_id
    await harness.heartbeat(node)
    await eventually(lambda: _status(harness, "sleepy", d, "SCALED_TO_ZERO"), "SCALED_TO_ZERO")
    r = await route()
    while r.status != scheduler_pb2.DEPLOYMENT_STATUS_SCALED_TO_ZERO:
        r = await route()
    assert r.active and not r.replicas  # still routable: the router holds requests and pokes
    assert r.status_reason == "no replica runs; the next request wakes it"

    cold_starts = REGISTRY.get_sample_value("kingpost_scheduler_cold_start_seconds_count", {"phase": "total"})
    await rpc.call(harness.routes.ScaleDeployment, scheduler_pb2.ScaleDeploymentRequest(
        deployment_id=d, replicas=1))
    start = await next_item(node.agent.starts, "StartReplica")
    await harness.heartbeat(node)
    await eventually(lambda: _status(harness, "sleepy", d, "WAKING_UP"), "WAKING_UP")
    await harness.replica_event(start, events_pb2.REPLICA_STATE_READY, address="127.0.0.1:9998")
    await eventually(lambda: _status(harness, "sleepy", d, "ACTIVE"), "ACTIVE again")
    # The cold start is exported (and logged with its phases).
    assert REGISTRY.get_sample_value("kingpost_scheduler_cold_start_seconds_count", {"phase": "total"}) == (
        cold_starts + 1)
    watch.cancel()


async def test_min_replica_one_keeps_a_replica_whatever_the_autoscaler_asks(harness: Harness, node: Node) -> None:
    created, _ = await publish_ready(harness, node, "steady")
    await harness.call("UpdateAutoscalingSettings",
                       patch(created.model.id, created.deployment.id, min_replica=1, max_replica=2))
    reply = await rpc.call(harness.routes.ScaleDeployment, scheduler_pb2.ScaleDeploymentRequest(
        deployment_id=created.deployment.id, replicas=0))
    assert reply.replicas == 1


async def test_only_a_deployment_scaled_to_zero_is_deactivated_for_idleness(harness: Harness, node: Node) -> None:
    created, replica_id = await publish_ready(harness, node, "idle")
    d = created.deployment.id
    busy = await rpc.call(harness.routes.DeactivateIdleDeployment,
                          scheduler_pb2.DeactivateIdleDeploymentRequest(deployment_id=d, idle_seconds=1))
    assert not busy.deactivated and (await harness.deployment("idle", d)).status == "ACTIVE"
    await rpc.call(harness.routes.ScaleDeployment, scheduler_pb2.ScaleDeploymentRequest(deployment_id=d, replicas=0))
    assert await next_item(node.agent.stops, "StopReplica") == replica_id
    await harness.heartbeat(node)
    await eventually(lambda: _status(harness, "idle", d, "SCALED_TO_ZERO"), "SCALED_TO_ZERO")
    idle = await rpc.call(harness.routes.DeactivateIdleDeployment,
                          scheduler_pb2.DeactivateIdleDeploymentRequest(deployment_id=d, idle_seconds=14 * 86400))
    assert idle.deactivated
    assert (await harness.deployment("idle", d)).status == "INACTIVE"


async def test_deployments_from_before_the_extensions_get_their_defaults(database_url: str) -> None:
    """Migration 0004 on a database with a deployment in it: the router's behaviour is unchanged."""
    engine = db.make_engine(database_url)
    try:
        await db.upgrade(engine, "0003")
        now = datetime.now(UTC)
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO models (id, name, created_at, deleted) "
                                    "VALUES ('mdl_old', 'old', :now, false)"), {"now": now})
            await conn.execute(text(
                "INSERT INTO deployments (id, model_id, name, is_development, environment, status, "
                "status_reason, build_id, artifact_digest, predict_concurrency, min_replica, max_replica, "
                "autoscaling_window, scale_down_delay, concurrency_target, target_utilization_percentage, "
                "desired_replicas, active, deleted, created_at) VALUES ('dep_old', 'mdl_old', "
                "'deployment-1', false, '', 'ACTIVE', '', 'bld', 'sha256:ab', 1, 0, 3, 60, 900, 1, 70, 1, "
                "true, false, :now)"),
                {"now": now})
        await db.upgrade(engine)
        async with db.session_factory(engine)() as session:
            old = await store.get_deployment(session, "dep_old")
            assert records.autoscaling_of(old) == AutoscalingSettings(
                max_replica=3, backpressure_policy="queue", cold_start_timeout_seconds=300)
    finally:
        await engine.dispose()

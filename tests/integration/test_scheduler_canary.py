"""Canary promotions through the scheduler's management API, real NATS and databases, on a fake
clock: no traffic moves until the candidate is ready, then 10 stages over the window (each in the
route table), then the swap; a cancelled canary sends all traffic back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from kingpost import rpc
from kingpost.errors import Conflict
from kingpost.management_shapes import current_deployment
from kingpost.v1 import events_pb2, management_pb2, management_pb2_grpc, scheduler_pb2, scheduler_pb2_grpc
from kingpost_scheduler import app
from kingpost_scheduler.settings import SchedulerSettings
from tests.integration.test_scheduler import (  # noqa: F401  (fixtures)
    Harness,
    Node,
    builder,
    bus,
    eventually,
    next_item,
    node,
    serve,
    settings,
    stop_scheduler,
)
from tests.integration.test_scheduler_lifecycle import environment, promote, publish, ready, serving


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def clocked(settings: SchedulerSettings, builder, bus  # noqa: F811
                  ) -> AsyncIterator[tuple[Harness, FakeClock]]:
    clock = FakeClock()
    scheduler = await app.create(settings.model_copy(update={"demoted_drain_seconds": 0.3}),
                                 durable_prefix=f"canary-{uuid.uuid4().hex[:8]}", clock=clock)
    server, address = await serve(scheduler.register, [scheduler.interceptor])
    channel = rpc.channel(address)
    loop = asyncio.create_task(scheduler.control.run())
    h = Harness(scheduler, server, address, channel, management_pb2_grpc.ManagementServiceStub(channel),
                scheduler_pb2_grpc.SchedulerServiceStub(channel), bus, builder[0])
    yield h, clock
    await stop_scheduler(h, loop)


async def at_stage(h: Harness, stage: int, traffic: dict[str, int]) -> management_pb2.Environment:
    async def check() -> management_pb2.Environment | None:
        e = await environment(h, "can", "production")
        return e if e.current_canary.stage == stage and dict(e.traffic) == traffic else None

    return await eventually(check, f"stage {stage} with traffic {traffic}")


async def production_split(watch, want: list[tuple[str, int]]) -> None:  # type: ignore[no-untyped-def]
    while True:
        table = (await asyncio.wait_for(watch.read(), 20)).table
        model = next((m for m in table.models if m.name == "can"), None)
        env = next((e for e in model.environments if e.name == "production"), None) if model else None
        if env is not None and [(w.deployment_id, w.weight) for w in env.deployments] == want:
            return


async def test_a_canary_waits_for_readiness_moves_in_ten_stages_then_swaps(
    clocked: tuple[Harness, FakeClock], node: Node  # noqa: F811
) -> None:
    h, clock = clocked
    d1, d1_first = await publish(h, node, model="can")
    await promote(h, "can", "production", d1.id)
    assert await next_item(node.agent.stops, "deployment-1's replica to be replaced") == d1_first.replica_id
    await ready(h, node, "deployment-1 in production")
    await serving(h, "can", "production", d1.id)

    updated = (await h.call("UpdateEnvironment", management_pb2.UpdateEnvironmentRequest(
        model_id="can", env_name="production", promotion_settings=management_pb2.PromotionSettings(
            ramp_up_while_promoting=True, ramp_up_duration_seconds=10)))).environment
    assert (updated.promotion_settings.ramp_up_while_promoting,
            updated.promotion_settings.ramp_up_duration_seconds) == (True, 10)

    d2, d2_first = await publish(h, node, model="can")
    await promote(h, "can", "production", d2.id)
    assert await next_item(node.agent.stops, "deployment-2's replica to be replaced") == d2_first.replica_id
    start = await next_item(node.agent.starts, "deployment-2's replica in production")
    # Not ready yet: past its whole window (not past the node timeout), no traffic moves.
    clock.now += timedelta(seconds=12)
    await h.heartbeat(node)
    await h.reconcile_now()
    waiting = await environment(h, "can", "production")
    assert (waiting.current_canary.deployment_id, waiting.current_canary.stage) == (d2.id, 0)
    assert not waiting.current_canary.HasField("started_at")
    assert dict(waiting.traffic) == {d1.id: 100}

    watch = h.routes.WatchRoutes(scheduler_pb2.WatchRoutesRequest(watcher="test"))
    await h.replica_event(start, events_pb2.REPLICA_STATE_READY, address="127.0.0.1:9100")
    first = await at_stage(h, 1, {d1.id: 90, d2.id: 10})
    assert first.current_canary.HasField("started_at") and first.current_canary.candidate_weight == 10
    await production_split(watch, [(d1.id, 90), (d2.id, 10)])
    for stage in range(2, 11):
        clock.now += timedelta(seconds=1)
        await h.heartbeat(node)
        want = {d1.id: 100 - 10 * stage, d2.id: 10 * stage} if stage < 10 else {d2.id: 100}
        await at_stage(h, stage, want)
        await production_split(watch, list(want.items()))
    assert (await environment(h, "can", "production")).promoting_deployment_id == d2.id
    clock.now += timedelta(seconds=1)
    await h.heartbeat(node)
    done = await serving(h, "can", "production", d2.id)
    assert dict(done.traffic) == {d2.id: 100} and not done.HasField("current_canary")
    watch.cancel()


async def test_a_cancelled_canary_sends_all_traffic_back(
    clocked: tuple[Harness, FakeClock], node: Node  # noqa: F811
) -> None:
    h, clock = clocked
    d1, d1_first = await publish(h, node, model="can")
    await promote(h, "can", "production", d1.id)
    assert await next_item(node.agent.stops, "deployment-1's replica to be replaced") == d1_first.replica_id
    await ready(h, node, "deployment-1 in production")
    await serving(h, "can", "production", d1.id)

    d2, d2_first = await publish(h, node, model="can")
    await h.call("PromoteDeployment", management_pb2.PromoteDeploymentRequest(
        model_id="can", env_name="production", deployment_id=d2.id, ramp_up_duration_seconds=10))
    assert await next_item(node.agent.stops, "deployment-2's replica to be replaced") == d2_first.replica_id
    candidate = await ready(h, node, "deployment-2 in production")
    await at_stage(h, 1, {d1.id: 90, d2.id: 10})
    clock.now += timedelta(seconds=3)
    await h.heartbeat(node)
    await at_stage(h, 4, {d1.id: 60, d2.id: 40})

    answer = await h.call("CancelPromotion", management_pb2.CancelPromotionRequest(
        model_id="can", env_name="production"))
    assert (answer.status, answer.message) == (  # Baseten's CancelPromotionResponse
        "CANCELED", f"promotion of {d2.id} to production canceled; all traffic is back on the current deployment")
    cancelled = answer.environment
    assert dict(cancelled.traffic) == {d1.id: 100}
    assert current_deployment(cancelled).id == d1.id and not cancelled.promoting_deployment_id
    assert not cancelled.HasField("current_canary") and "cancelled" in cancelled.promotion_failure
    with pytest.raises(Conflict, match="no promotion"):
        await h.call("CancelPromotion", management_pb2.CancelPromotionRequest(
            model_id="can", env_name="production"))
    # The candidate drains and scales to zero, like a demoted deployment.
    clock.now += timedelta(seconds=1)
    await h.heartbeat(node)
    stopped = await next_item(node.agent.stops, "the cancelled candidate's replica to stop")
    assert stopped == candidate.replica_id

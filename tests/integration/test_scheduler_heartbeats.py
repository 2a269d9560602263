"""Heartbeats through the scheduler, real NATS and databases, on a fake clock: a heartbeat that changes
nothing writes nothing (no reconcile pass, no route-table build, no new version); one that omits a
replica, or a node that goes quiet, moves replicas; last-seen times are stored in batches.
The stand-ins are test_scheduler.py's (a builder, a node)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from kingpost.v1 import agent_pb2_grpc, events_pb2, management_pb2, scheduler_pb2
from kingpost_scheduler import store
from tests.integration.test_scheduler import (  # noqa: F401  (fixtures)
    AgentDouble,
    Harness,
    Node,
    builder,
    bus,
    deploy_to_ready,
    eventually,
    next_item,
    node,
    serve,
    settings,
)
from tests.integration.test_scheduler_canary import FakeClock, clocked  # noqa: F401  (fixture)


def counted(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def work_done() -> tuple[float, float]:
    """Reconcile passes and route-table builds so far (this process's)."""
    return (counted("kingpost_scheduler_reconcile_seconds_count"),
            counted("kingpost_scheduler_route_table_builds_total"))


async def heard_at(h: Harness, node_id: str, at: datetime) -> bool:
    """The scheduler has handled `node_id`'s heartbeat sent at `at` (the fake clock's time then)."""
    status = await h.call("GetStatus", management_pb2.GetStatusRequest())
    return any(n.node_id == node_id and n.last_seen.ToDatetime().replace(tzinfo=at.tzinfo) == at
               for n in status.nodes)


async def beat_at(h: Harness, node: Node, clock: FakeClock, seconds: float) -> None:  # noqa: F811
    """Move the clock, heartbeat, and wait until the scheduler has handled that heartbeat."""
    clock.now += timedelta(seconds=seconds)
    at = clock.now
    await h.heartbeat(node)
    await eventually(lambda: heard_at(h, node.node_id, at), f"{node.node_id}'s heartbeat at {at}")


@pytest.fixture
async def other_node() -> AsyncIterator[Node]:
    agent = AgentDouble()
    server, address = await serve(lambda s: agent_pb2_grpc.add_AgentServiceServicer_to_server(agent, s))
    yield Node("node_b", address, agent, server)
    await server.stop(None)


async def serving_replicas(watch, deployment_id: str, want: list[str]) -> int:  # type: ignore[no-untyped-def]
    """The version of the first table from `watch` in which the deployment's replicas are `want`."""
    while True:
        table = (await watch.read()).table
        routes = [d for m in table.models for d in m.deployments if d.deployment_id == deployment_id]
        if routes and [r.replica_id for r in routes[0].replicas] == want:
            return int(table.version)


async def test_a_heartbeat_that_changes_nothing_writes_nothing_and_keeps_the_route_table(
    clocked: tuple[Harness, FakeClock], node: Node  # noqa: F811
) -> None:
    h, clock = clocked
    control = h.scheduler.control
    created, start = await deploy_to_ready(h, node)
    watch = h.routes.WatchRoutes(scheduler_pb2.WatchRoutesRequest(watcher="test"))
    await h.replica_event(start, events_pb2.REPLICA_STATE_READY, address="127.0.0.1:9999")
    version = await serving_replicas(watch, created.deployment.id, [start.replica_id])
    await control.dispatcher.finish()  # StartReplica's acknowledgement is recorded
    await beat_at(h, node, clock, 1)
    before = work_done()

    for _ in range(5):
        await beat_at(h, node, clock, 1)  # the same replicas, node and resources: "still here"
    assert work_done() == before  # no reconcile pass, no route-table build
    assert control.routes.version == version

    # One that omits the replica (the node lost it, past the grace) is a change: it is replaced.
    node.agent.running.clear()
    await beat_at(h, node, clock, 4)
    replacement = await next_item(node.agent.starts, "StartReplica of the replacement")
    assert replacement.deployment_id == created.deployment.id and replacement.replica_id != start.replica_id
    assert await serving_replicas(watch, created.deployment.id, []) > version
    passes, builds = work_done()
    assert passes > before[0] and builds > before[1]
    watch.cancel()


async def test_a_node_that_goes_quiet_loses_its_replicas_to_a_live_node(
    clocked: tuple[Harness, FakeClock], node: Node, other_node: Node  # noqa: F811
) -> None:
    h, clock = clocked
    created, start = await deploy_to_ready(h, node)
    await h.replica_event(start, events_pb2.REPLICA_STATE_READY, address="127.0.0.1:9999")

    async def serving() -> bool:
        return (await h.deployment("echo")).active_replica_count == 1

    await eventually(serving, "the replica on node_a to serve")
    await beat_at(h, other_node, clock, 0)  # node_b joins; node_a's replica stays where it is
    status = await h.call("GetStatus", management_pb2.GetStatusRequest())
    assert {n.node_id: list(n.replica_ids) for n in status.nodes} == {"node_a": [start.replica_id], "node_b": []}

    await beat_at(h, other_node, clock, 16)  # node_a silent for longer than the node timeout (15 s)
    moved = await next_item(other_node.agent.starts, "StartReplica on the live node")
    assert moved.deployment_id == created.deployment.id and moved.replica_id != start.replica_id
    assert node.agent.stops.empty()  # a lost node is not told anything
    status = await h.call("GetStatus", management_pb2.GetStatusRequest())
    assert {n.node_id: list(n.replica_ids) for n in status.nodes} == {
        "node_a": [], "node_b": [moved.replica_id]}


async def test_last_seen_times_are_stored_in_batches_not_per_heartbeat(
    clocked: tuple[Harness, FakeClock], node: Node  # noqa: F811
) -> None:
    h, clock = clocked
    control = h.scheduler.control

    async def stored() -> datetime:
        (n,) = await control.read("listing nodes", store.all_nodes)
        return n.last_seen

    await beat_at(h, node, clock, 0)
    first = clock.now
    assert await stored() == first  # a new node is stored at once

    await beat_at(h, node, clock, 1)
    await control.tick()
    assert await stored() == first  # 1 s later: in memory only (GetStatus shows it)

    await beat_at(h, node, clock, 5)  # past a third of the node timeout since the last batch
    await control.tick()
    assert await stored() == clock.now


async def test_a_replica_the_scheduler_did_not_place_on_a_node_is_stopped_there(
    clocked: tuple[Harness, FakeClock], node: Node  # noqa: F811
) -> None:
    """A node back after it was counted lost still runs replicas now placed elsewhere: an orphan
    runner would hold GPUs given to another replica, so the scheduler has it stopped."""
    h, clock = clocked
    created, start = await deploy_to_ready(h, node)
    await h.replica_event(start, events_pb2.REPLICA_STATE_READY, address="127.0.0.1:9999")
    await h.scheduler.control.dispatcher.finish()
    node.agent.running.add("rep_orphan00001")  # not the scheduler's: a leftover of the node's past
    await beat_at(h, node, clock, 1)
    assert await next_item(node.agent.stops, "StopReplica of the orphan") == "rep_orphan00001"
    assert node.agent.running == {start.replica_id}  # the scheduler's own replica keeps running

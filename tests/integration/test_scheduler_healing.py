"""Replicas that heal, through the scheduler with real NATS and real databases (issue 21): a runner
that crashes after it served leaves its deployment ACTIVE and its replica unrouted until READY
again; one that keeps crashing is shown crash-looping with its last output and, when every replica
does, the deployment is UNHEALTHY; a model that does not load at its first start fails its new
deployment, which `activate` tries again. The stand-ins are test_scheduler.py's (a builder, a node).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from kingpost.v1 import events_pb2, management_pb2, scheduler_pb2
from tests.integration.test_scheduler import (  # noqa: F401  (fixtures)
    Harness,
    Node,
    builder,
    bus,
    deploy_to_ready,
    eventually,
    harness,
    next_item,
    node,
    settings,
)

READY = events_pb2.REPLICA_STATE_READY
RESTARTING = events_pb2.REPLICA_STATE_RESTARTING
FAILED = events_pb2.REPLICA_STATE_FAILED
STOPPED = events_pb2.REPLICA_STATE_STOPPED
KILLED = ("runner was killed by signal 9 (SIGKILL); last 2 lines of its log:\n"
          "serving on 127.0.0.1:9001\nabout to crash on {'n': 7}")


def ts(at: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(at)
    return out


def restart(restarts: int, held_back_s: float, message: str = KILLED) -> dict[str, object]:
    now = datetime.now(UTC)
    return {"message": message, "restarts": restarts, "at": ts(now),
            "next_restart_at": ts(now + timedelta(seconds=held_back_s))}


async def route_of(h: Harness, deployment_id: str) -> scheduler_pb2.DeploymentRoute:
    """The deployment's route in the table a router watching now gets first."""
    watch = h.routes.WatchRoutes(scheduler_pb2.WatchRoutesRequest(watcher="test-healing"))
    try:
        table = (await watch.read()).table
    finally:
        watch.cancel()
    (route,) = [d for m in table.models for d in m.deployments if d.deployment_id == deployment_id]
    return route


async def routed(h: Harness, deployment_id: str) -> list[str]:
    """The deployment's replica addresses in the route table the routers get."""
    return [r.address for r in (await route_of(h, deployment_id)).replicas]


async def until_status(h: Harness, status: str, what: str) -> management_pb2.Deployment:
    async def check() -> management_pb2.Deployment | None:
        d = await h.deployment("echo")
        return d if d.status == status else None

    return await eventually(check, what)


async def test_a_crash_after_ready_heals_without_leaving_active_and_a_crash_loop_is_unhealthy(
    harness: Harness, node: Node
) -> None:
    created, start = await deploy_to_ready(harness, node)
    dep_id = created.deployment.id
    await harness.replica_event(start, READY, address="127.0.0.1:9001")
    await until_status(harness, "ACTIVE", "the deployment to be ACTIVE")

    # kill -9: its node restarts it at once. Still ACTIVE; the dead address is no longer routed.
    await harness.replica_event(start, RESTARTING, **restart(1, 0))

    async def unrouted() -> bool:
        return await routed(harness, dep_id) == []

    await eventually(unrouted, "the crashed runner's address to leave the route table")
    d = await harness.deployment("echo")
    assert d.status == "ACTIVE" and d.status_reason == ""
    (replica,) = d.replicas
    assert (replica.id, replica.state, replica.restarts, replica.crash_looping) == (
        start.replica_id, "RESTARTING", 1, False)
    assert replica.last_exit == KILLED

    # READY at a new address: routed there, the last exit still shown.
    await harness.replica_event(start, READY, address="127.0.0.1:9002", restarts=1)

    async def rerouted() -> bool:
        return await routed(harness, dep_id) == ["127.0.0.1:9002"]

    await eventually(rerouted, "the restarted runner's address in the route table")
    (replica,) = (await harness.deployment("echo")).replicas
    assert (replica.state, replica.restarts, replica.last_exit) == ("READY", 1, KILLED)

    # It keeps crashing: its node holds the restart back → crash-looping, and with every replica
    # so, the deployment is UNHEALTHY, saying why with the runner's last lines.
    looping = "runner exited with status 3; last 1 lines of its log:\nRuntimeError: no GPU left"
    await harness.replica_event(start, RESTARTING, **restart(2, 2, looping))
    d = await until_status(harness, "UNHEALTHY", "the deployment to be UNHEALTHY")
    assert d.status_reason.startswith(f"every replica is crash-looping; replica {start.replica_id} "
                                      "crash-looping after 2 restart(s): runner exited with status 3")
    assert "RuntimeError: no GPU left" in d.status_reason
    (replica,) = d.replicas
    assert replica.crash_looping and replica.restarts == 2
    route = await route_of(harness, dep_id)
    assert route.status == scheduler_pb2.DEPLOYMENT_STATUS_UNHEALTHY and "no GPU left" in route.status_reason

    # Back: ACTIVE. Throughout, the scheduler neither stopped nor replaced the replica.
    await harness.replica_event(start, READY, address="127.0.0.1:9003", restarts=2)
    await until_status(harness, "ACTIVE", "the deployment to be ACTIVE again")
    await harness.reconcile_now()
    assert node.agent.start_count == 1 and node.agent.stops.empty()


async def test_a_failed_deployment_can_be_activated_again(harness: Harness, node: Node) -> None:
    created, start = await deploy_to_ready(harness, node)
    await harness.replica_event(start, FAILED, message="ImportError: cannot import name 'torch'")
    d = await until_status(harness, "FAILED", "the new deployment to be FAILED")
    assert "cannot import name 'torch'" in d.status_reason
    assert await next_item(node.agent.stops, "the failed replica to stop") == start.replica_id

    await harness.call("ActivateDeployment", management_pb2.ActivateDeploymentRequest(
        model_id="echo", deployment_id=created.deployment.id))
    again = await next_item(node.agent.starts, "a replica of the activated deployment")
    assert again.replica_id != start.replica_id
    d = await harness.deployment("echo")
    assert (d.status, d.status_reason) == ("DEPLOYING", "its first replica is starting")
    await harness.heartbeat(node)
    await harness.replica_event(again, READY, address="127.0.0.1:9004")
    await until_status(harness, "ACTIVE", "the activated deployment to serve")


async def test_reports_about_a_replica_it_does_not_know_change_nothing(harness: Harness, node: Node) -> None:
    created, start = await deploy_to_ready(harness, node)
    await harness.replica_event(start, READY, address="127.0.0.1:9001")
    await until_status(harness, "ACTIVE", "the deployment to be ACTIVE")
    stranger = events_pb2.ReplicaEvent(replica_id="rep_unknown", deployment_id=created.deployment.id)
    for state in (RESTARTING, STOPPED, FAILED):
        stranger.state = state
        await harness.replica_event(stranger, state)  # type: ignore[arg-type]
    await harness.reconcile_now()
    d = await harness.deployment("echo")
    assert d.status == "ACTIVE" and [r.id for r in d.replicas] == [start.replica_id]

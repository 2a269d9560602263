"""Concurrency samples: what the autoscaler learns from one router at one instant."""

from __future__ import annotations

from kingpost.v1 import scheduler_pb2 as s
from kingpost_router.routes import RouteSnapshot
from kingpost_router.sampling import concurrency_sample

ACTIVE = s.DEPLOYMENT_STATUS_ACTIVE
SNAP = RouteSnapshot.from_table(s.RouteTable(version=1, models=[s.ModelRoute(model_id="mdl_a", deployments=[
    s.DeploymentRoute(deployment_id="dep_busy", active=True, status=ACTIVE),
    s.DeploymentRoute(deployment_id="dep_idle", active=True, status=ACTIVE),
    s.DeploymentRoute(deployment_id="dep_off", active=False, status=s.DEPLOYMENT_STATUS_INACTIVE),
])]))


def test_a_sample_counts_every_active_deployment_zeros_included_and_stray_requests_in_flight() -> None:
    queued = {"dep_busy": 3}
    sample = concurrency_sample("router-1", SNAP.deployments(), {"dep_busy": 2, "dep_removed": 1},
                                lambda did: queued.get(did, 0), now=1700000000.5)
    assert sample.router_id == "router-1"
    assert (sample.at.seconds, sample.at.nanos) == (1700000000, 500000000)
    assert [(d.deployment_id, d.in_flight, d.queued) for d in sample.deployments] == [
        ("dep_busy", 2, 3), ("dep_idle", 0, 0),
        ("dep_removed", 1, 0),  # gone from the table while its requests still run
    ]


def test_the_async_backlog_is_one_source_for_every_router_zeros_included() -> None:
    from kingpost_router.sampling import ASYNC_BACKLOG_SOURCE, backlog_sample

    sample = backlog_sample({"dep_b": 0, "dep_a": 1200}, now=5.0)
    assert sample.router_id == ASYNC_BACKLOG_SOURCE
    assert [(d.deployment_id, d.in_flight, d.queued) for d in sample.deployments] == [
        ("dep_a", 0, 1200), ("dep_b", 0, 0)]
    assert sample.at.seconds == 5

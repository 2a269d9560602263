"""Desired and ready replicas and cold starts per deployment, as the scheduler's scrape shows them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from kingpost_scheduler.metrics import DeploymentReplicas


def test_desired_ready_and_cold_starts_per_deployment_and_a_deleted_deployment_leaves() -> None:
    replicas = DeploymentReplicas()
    registry = CollectorRegistry()
    registry.register(replicas)
    replicas.set([("mdl_1", "dep_1", "production", 3, 2), ("mdl_1", "dep_2", "", 0, 0)])
    replicas.cold_start("dep_1")
    replicas.cold_start("dep_1")
    sample = registry.get_sample_value
    one = {"model": "mdl_1", "deployment": "dep_1", "environment": "production"}
    assert sample("kingpost_scheduler_desired_replicas", one) == 3
    assert sample("kingpost_scheduler_ready_replicas", one) == 2
    assert sample("kingpost_scheduler_cold_starts_total", one) == 2
    assert sample("kingpost_scheduler_desired_replicas", {**one, "deployment": "dep_2", "environment": ""}) == 0
    replicas.set([("mdl_1", "dep_2", "", 1, 1)])
    assert sample("kingpost_scheduler_desired_replicas", one) is None
    assert sample("kingpost_scheduler_cold_starts_total", one) is None

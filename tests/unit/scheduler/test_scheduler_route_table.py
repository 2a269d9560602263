"""Route table: a snapshot → plain data for the data plane."""

from __future__ import annotations

from datetime import UTC, datetime

from kingpost.autoscaling_settings import AutoscalingSettings
from kingpost_scheduler.facts import READY, STARTING, Replica
from kingpost_scheduler.route_table import (
    DeploymentRow,
    EnvironmentRow,
    ModelRow,
    ReplicaRoute,
    build_route_table,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def test_only_ready_replicas_with_an_address_are_routed() -> None:
    table = build_route_table(
        [ModelRow("mdl_1", "echo")],
        [DeploymentRow("dep_dev", "mdl_1", True, True, 4, "ACTIVE"),
         DeploymentRow("dep_1", "mdl_1", False, True, 1, "DEPLOYING")],
        [EnvironmentRow("mdl_1", "production", "dep_1")],
        [Replica("rep_b", "dep_dev", "n", READY, T0, address="127.0.0.1:2"),
         Replica("rep_a", "dep_dev", "n", READY, T0, address="127.0.0.1:1"),
         Replica("rep_c", "dep_dev", "n", STARTING, T0)],
        ["bb", "aa", "bb"],
    )
    (model,) = table.models
    assert (model.name, model.development_deployment_id) == ("echo", "dep_dev")
    assert [(e.name, e.deployments) for e in model.environments] == [("production", (("dep_1", 100),))]
    by_id = {d.deployment_id: d for d in model.deployments}
    assert by_id["dep_dev"].replicas == (
        ReplicaRoute("rep_a", "127.0.0.1:1"), ReplicaRoute("rep_b", "127.0.0.1:2"))
    assert by_id["dep_dev"].predict_concurrency == 4
    assert by_id["dep_1"].replicas == ()
    assert table.api_key_sha256 == ("aa", "bb")


def test_equal_snapshots_give_equal_tables() -> None:
    args = ([ModelRow("m", "n")], [DeploymentRow("d", "m", True, True, 1, "ACTIVE")], [], [], ["k"])
    assert build_route_table(*args) == build_route_table(*args)


def test_an_environment_pointing_at_an_unknown_deployment_is_left_out() -> None:
    envs = [EnvironmentRow("m", "production", "dep_gone")]
    table = build_route_table([ModelRow("m", "n")], [], envs, [], [])
    assert table.models[0].environments == ()


def test_each_deployment_says_why_it_is_not_serving_and_carries_its_settings() -> None:
    tuned = AutoscalingSettings(backpressure_policy="reject", cold_start_timeout_seconds=5)
    table = build_route_table(
        [ModelRow("m", "n")],
        [DeploymentRow("dep_on", "m", False, True, 1, "ACTIVE", autoscaling=tuned),
         DeploymentRow("dep_build", "m", False, True, 1, "BUILDING"),
         DeploymentRow("dep_zero", "m", False, True, 1, "SCALED_TO_ZERO"),
         DeploymentRow("dep_off", "m", False, False, 1, "INACTIVE"),
         DeploymentRow("dep_bad", "m", False, True, 1, "FAILED", status_reason="build failed: no torch")],
        [], [], [])
    by_id = {d.deployment_id: d for d in table.models[0].deployments}
    assert {d: r.status_reason for d, r in by_id.items()} == {
        "dep_on": "",
        "dep_build": "its build has not finished",
        "dep_zero": "no replica runs; the next request wakes it",
        "dep_off": "deactivated; `kingpost deployments activate` brings it back",
        "dep_bad": "build failed: no torch",
    }
    assert by_id["dep_on"].autoscaling == tuned
    assert by_id["dep_build"].autoscaling.backpressure_policy == "queue"


def test_a_chain_entrypoint_names_its_chain_and_the_deployments_woken_with_it() -> None:
    table = build_route_table(
        [ModelRow("mdl_e", "chain", chain_id="chn_1"), ModelRow("mdl_d", "chain.Dep")],
        [DeploymentRow("dep_e", "mdl_e", False, True, 1, "SCALED_TO_ZERO"),
         DeploymentRow("dep_d", "mdl_d", False, True, 1, "SCALED_TO_ZERO")],
        [], [], [],
        {"dep_e": ["dep_d", "dep_gone"]},  # a deleted dependency is left out
    )
    entry = next(m for m in table.models if m.model_id == "mdl_e")
    assert entry.chain_id == "chn_1"
    assert entry.deployments[0].wake_with == ("dep_d",)
    assert next(m for m in table.models if m.model_id == "mdl_d").deployments[0].wake_with == ()


def test_webhook_secrets_travel_in_the_table_newest_first_and_reach_the_router_snapshot() -> None:
    from kingpost_router.routes import RouteSnapshot
    from kingpost_scheduler import convert

    table = build_route_table([], [], [], [], [], webhook_secrets=["whsec_new", "whsec_old"])
    assert table.webhook_secrets == ("whsec_new", "whsec_old")
    assert RouteSnapshot.from_table(convert.route_table(7, table)).webhook_secrets == ("whsec_new", "whsec_old")

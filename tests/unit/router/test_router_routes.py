"""Resolving a request to a deployment: ids and names, targets, environments, hosts, and the errors."""

from __future__ import annotations

import random

import pytest

from kingpost import deployment_status
from kingpost.errors import InvalidArgument, NotFound, Unavailable
from kingpost.v1 import scheduler_pb2 as s
from kingpost_router.routes import RouteSnapshot, model_from_host, resolve, weighted_choice

ACTIVE = s.DEPLOYMENT_STATUS_ACTIVE
BUILDING = s.DEPLOYMENT_STATUS_BUILDING
FAILED = s.DEPLOYMENT_STATUS_FAILED
INACTIVE = s.DEPLOYMENT_STATUS_INACTIVE
SCALED_TO_ZERO = s.DEPLOYMENT_STATUS_SCALED_TO_ZERO


def table() -> s.RouteTable:
    ready = [s.ReplicaRoute(replica_id="rep_1", address="127.0.0.1:9001")]
    return s.RouteTable(
        version=7,
        api_key_sha256=["aa", "bb"],
        models=[
            s.ModelRoute(
                model_id="mdl_a", name="llama", development_deployment_id="dep_dev", chain_id="chn_1",
                environments=[
                    s.EnvironmentRoute(name="production", deployments=[
                        s.WeightedDeployment(deployment_id="dep_1", weight=90),
                        s.WeightedDeployment(deployment_id="dep_2", weight=10),
                    ]),
                    s.EnvironmentRoute(name="staging", deployments=[
                        s.WeightedDeployment(deployment_id="dep_building", weight=100)]),
                ],
                deployments=[
                    s.DeploymentRoute(deployment_id="dep_dev", active=True, predict_concurrency=4,
                                      replicas=ready, status=ACTIVE),
                    s.DeploymentRoute(deployment_id="dep_1", active=True, replicas=ready, status=ACTIVE),
                    s.DeploymentRoute(deployment_id="dep_2", active=True, replicas=ready, status=ACTIVE),
                    s.DeploymentRoute(deployment_id="dep_building", active=True, status=BUILDING),
                    s.DeploymentRoute(deployment_id="dep_failed", active=True, status=FAILED,
                                      status_reason="ModuleNotFoundError: No module named 'torch'"),
                    s.DeploymentRoute(deployment_id="dep_off", active=False, replicas=ready,
                                      status=INACTIVE),
                    s.DeploymentRoute(deployment_id="dep_off_why", active=False,
                                      status=INACTIVE,
                                      status_reason="deactivated; `kingpost deployments activate` brings "
                                                    "it back"),
                    s.DeploymentRoute(deployment_id="dep_zero", active=True, status=SCALED_TO_ZERO,
                                      backpressure_policy="reject", cold_start_timeout_seconds=30),
                ],
            ),
            s.ModelRoute(model_id="mdl_b", name="whisper"),
        ],
    )


SNAP = RouteSnapshot.from_table(table())


def test_snapshot_indexes_models_by_id_and_name_and_keeps_keys() -> None:
    assert SNAP.version == 7
    assert SNAP.by_id["mdl_a"] is SNAP.by_name["llama"]
    assert SNAP.api_key_sha256 == frozenset({"aa", "bb"})
    dev = SNAP.by_id["mdl_a"].deployments["dep_dev"]
    assert (dev.active, dev.predict_concurrency, [r.address for r in dev.replicas]) == (
        True, 4, ["127.0.0.1:9001"])
    assert SNAP.addresses() == frozenset({"127.0.0.1:9001"})


def test_snapshot_cannot_be_changed_in_place() -> None:
    with pytest.raises(TypeError):
        SNAP.by_id["x"] = SNAP.by_id["mdl_a"]  # type: ignore[index]


@pytest.mark.parametrize("key", ["mdl_a", "llama"])
def test_development_target_by_id_or_name(key: str) -> None:
    assert resolve(SNAP, key, "development", "", "").deployment_id == "dep_dev"


def test_production_follows_the_weights_with_the_injected_random_source() -> None:
    assert resolve(SNAP, "mdl_a", "production", "", "", rng=lambda: 0.0).deployment_id == "dep_1"
    assert resolve(SNAP, "mdl_a", "production", "", "", rng=lambda: 0.89).deployment_id == "dep_1"
    assert resolve(SNAP, "mdl_a", "production", "", "", rng=lambda: 0.9).deployment_id == "dep_2"
    assert resolve(SNAP, "mdl_a", "production", "", "", rng=lambda: 0.999999).deployment_id == "dep_2"


def test_no_target_means_production() -> None:
    assert resolve(SNAP, "llama", "", "", "", rng=lambda: 0.0).deployment_id == "dep_1"


def test_named_environment_and_explicit_deployment() -> None:
    with pytest.raises(Unavailable):
        resolve(SNAP, "mdl_a", "", "staging", "")
    assert resolve(SNAP, "mdl_a", "", "", "dep_2").deployment_id == "dep_2"


def test_host_addressed_request_takes_the_model_from_the_host() -> None:
    assert resolve(SNAP, "", "development", "", "", "model-mdl_a.example.com:8080").deployment_id == "dep_dev"
    assert model_from_host("model-abc.kingpost.local") == "abc"


def test_a_chain_resolves_to_its_entrypoint_model_by_id_or_host() -> None:
    assert resolve(SNAP, "chn_1", "development", "", "").deployment_id == "dep_dev"
    assert resolve(SNAP, "", "development", "", "", "chain-chn_1.example.com").deployment_id == "dep_dev"
    with pytest.raises(NotFound, match="'chn_2' not found"):
        resolve(SNAP, "", "development", "", "", "chain-chn_2.example.com")


def test_no_model_and_no_host_is_a_bad_request() -> None:
    with pytest.raises(InvalidArgument, match="names no model"):
        resolve(SNAP, "", "development", "", "", "")
    with pytest.raises(NotFound, match="names no model"):
        resolve(SNAP, "", "development", "", "", "api.example.com")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", "development", "", ""), "model 'nope' not found"),
        (("whisper", "development", "", ""), "model 'whisper' has no development deployment"),
        (("whisper", "production", "", ""), "model 'whisper' has no production deployment: promote one first"),
        (("mdl_a", "", "canary", ""), "environment 'canary' not found for model 'mdl_a'"),
        (("mdl_a", "", "", "dep_gone"), "deployment 'dep_gone' not found for model 'mdl_a'"),
        (("whisper", "", "", "dep_1"), "deployment 'dep_1' not found for model 'whisper'"),
        (("mdl_a", "", "", "dep_off"), "deployment 'dep_off' of model 'mdl_a' is inactive"),
        (("mdl_a", "", "", "dep_off_why"), "deployment 'dep_off_why' of model 'mdl_a' is inactive "
                                           "(deactivated; `kingpost deployments activate` brings it back)"),
    ],
)
def test_unknown_or_inactive_things_answer_not_found(args: tuple[str, str, str, str], message: str) -> None:
    with pytest.raises(NotFound) as caught:
        resolve(SNAP, *args)
    assert caught.value.message == message
    assert caught.value.http_status == 404


def test_a_deployment_without_ready_replicas_is_unavailable_and_says_why() -> None:
    with pytest.raises(Unavailable) as caught:
        resolve(SNAP, "mdl_a", "", "", "dep_building")
    assert caught.value.http_status == 503
    assert "not ready" in caught.value.message and "BUILDING" in caught.value.message
    with pytest.raises(Unavailable, match="status: FAILED: ModuleNotFoundError: No module named 'torch'"):
        resolve(SNAP, "mdl_a", "", "", "dep_failed")


def test_unknown_target_is_a_bad_request() -> None:
    with pytest.raises(InvalidArgument, match="target 'staging'"):
        resolve(SNAP, "mdl_a", "staging", "", "")


def test_weighted_choice_matches_the_weights_over_many_draws() -> None:
    draws = [i / 1000 for i in range(1000)]
    chosen = [weighted_choice((("a", 30), ("b", 0), ("c", 70)), lambda d=d: d) for d in draws]
    assert (chosen.count("a"), chosen.count("b"), chosen.count("c")) == (300, 0, 700)


@pytest.mark.parametrize("status", ["ACTIVE", "DEPLOYING", "SCALED_TO_ZERO", "WAKING_UP"])
def test_a_routable_deployment_without_replicas_is_held_not_refused(status: str) -> None:
    t = table()
    zero = next(d for d in t.models[0].deployments if d.deployment_id == "dep_zero")
    zero.status = deployment_status.value(status)
    deployment = resolve(RouteSnapshot.from_table(t), "mdl_a", "", "", "dep_zero")
    assert deployment.holds and deployment.replicas == ()


def test_back_pressure_policy_and_cold_start_timeout_come_from_the_table() -> None:
    zero = SNAP.by_deployment["dep_zero"]
    assert (zero.reject_on_full, zero.cold_start_timeout_seconds) == (True, 30.0)
    dev = SNAP.by_deployment["dep_dev"]
    assert (dev.reject_on_full, dev.cold_start_timeout_seconds) == (False, 0.0)  # queue; the router's timeout
    assert not SNAP.by_deployment["dep_building"].holds


@pytest.mark.parametrize("weights", [(90, 10), (50, 50), (1, 99), (34, 33, 33)])
def test_a_canary_split_is_honoured_within_statistical_tolerance(weights: tuple[int, ...]) -> None:
    split = tuple((f"dep_{i}", w) for i, w in enumerate(weights))
    rng = random.Random(20261128)
    n = 2000
    chosen = [weighted_choice(split, rng.random) for _ in range(n)]
    expected = [n * w / sum(weights) for w in weights]
    observed = [chosen.count(d) for d, _ in split]
    chi2 = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    # The 99.9th percentile of chi-square with 1 and 2 degrees of freedom: 10.83, 13.82.
    assert chi2 < (10.83 if len(weights) == 2 else 13.82), (observed, expected)


def test_production_requests_follow_the_canary_weights_end_to_end_of_resolve() -> None:
    rng = random.Random(5)
    picks = [resolve(SNAP, "mdl_a", "production", "", "", rng=rng.random).deployment_id for _ in range(2000)]
    canary = picks.count("dep_2")
    assert abs(canary - 200) < 3.3 * (2000 * 0.1 * 0.9) ** 0.5  # 10 % ± 3.3 sigma

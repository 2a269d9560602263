"""What the router makes of Envoy's admin stats, on stats captured from a real Envoy 1.40
(data/capture_envoy_stats.py writes them: its docstring says what traffic they count)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from kingpost.gateway import render_envoy_config
from kingpost.v1 import scheduler_pb2 as s
from kingpost_router.envoy_poll import EnvoyPoller
from kingpost_router.envoy_stats import (EnvoyTotals, Figures, Histogram, Read, environment_of, parse, wire_code,
                                         without_uptime)
from kingpost_router.metrics import LATENCY_BUCKETS, RequestStats
from kingpost_router.routes import RouteSnapshot
from kingpost_router.sampling import envoy_sample, envoy_source

DATA = Path(__file__).parent / "data"
DURING = (DATA / "envoy-1.40-during.prom").read_text()
AFTER = (DATA / "envoy-1.40-after.prom").read_text()
ACTIVE = s.DEPLOYMENT_STATUS_ACTIVE
SNAP = RouteSnapshot.from_table(s.RouteTable(version=1, models=[s.ModelRoute(
    model_id="mdl_a", name="echo", development_deployment_id="dep_dev",
    environments=[s.EnvironmentRoute(name="production", deployments=[s.WeightedDeployment(deployment_id="dep_a",
                                                                                          weight=100)]),
                  s.EnvironmentRoute(name="staging", deployments=[s.WeightedDeployment(deployment_id="dep_gone",
                                                                                       weight=100)])],
    deployments=[s.DeploymentRoute(deployment_id=d, active=True, status=ACTIVE)
                 for d in ("dep_a", "dep_gone", "dep_dev", "dep_other")])]))


def test_a_read_gives_each_clusters_answers_by_status_requests_now_and_latency() -> None:
    read = parse(DURING)
    assert read.uptime == 3
    a = read.clusters["dep_a"]
    assert dict(a.codes) == {200: 5, 418: 1, 500: 2, 503: 1, 504: 1}
    assert (a.active, a.pending, a.overflow) == (1, 1, 1)
    assert a.latency is not None
    # The bootstrap's buckets (ms) read as the router's (seconds); Envoy times answers from a replica only.
    assert a.latency.bounds == LATENCY_BUCKETS
    assert a.latency.count == 8 and a.latency.cumulative[0] == 6
    assert 0.0 < a.latency.sum < 0.1
    assert dict(read.clusters["dep_gone"].codes) == {503: 1}
    assert "scheduler" in read.clusters  # kept here; the poller reads only the table's deployments


def test_statuses_become_the_routers_code_labels_and_a_full_queue_the_429_the_client_got() -> None:
    assert [wire_code(c) for c in (200, 204, 302, 400, 404, 413, 418, 429, 500, 503, 504)] == [
        "OK", "OK", "OK", "INVALID_ARGUMENT", "NOT_FOUND", "OUT_OF_RANGE", "INTERNAL", "RESOURCE_EXHAUSTED",
        "INTERNAL", "UNAVAILABLE", "DEADLINE_EXCEEDED"]
    assert parse(AFTER).clusters["dep_a"].wire_codes() == {
        "OK": 7, "INTERNAL": 3, "DEADLINE_EXCEEDED": 1, "RESOURCE_EXHAUSTED": 1}


def test_the_bootstraps_latency_buckets_are_the_routers() -> None:
    config = render_envoy_config(rest_port=1, grpc_port=2, admin_port=3, router="r:1", scheduler="s:1",
                                 builder="b:1", descriptor_path="/x")
    assert config["stats_flush_on_admin"] is True
    [setting] = config["stats_config"]["histogram_bucket_settings"]
    assert setting["match"] == {"suffix": ".upstream_rq_time"}
    assert [b / 1000 for b in setting["buckets"]] == list(LATENCY_BUCKETS)


def test_counters_only_grow_across_a_removed_cluster_and_an_envoy_restart() -> None:
    totals = EnvoyTotals(LATENCY_BUCKETS)
    totals.update(parse(AFTER))
    assert totals.get("dep_a").codes[200] == 7
    # dep_a's last replica went: its cluster is removed, and its stats with it.
    gone = {name: f for name, f in parse(AFTER).clusters.items() if name != "dep_a"}
    totals.update(Read(gone, 4))
    assert totals.get("dep_a").codes[200] == 7 and totals.get("dep_a").active == 0
    # Back, counting from zero again: 2 more.
    totals.update(Read({**gone, "dep_a": Figures(codes={200: 2})}, 5))
    assert totals.get("dep_a").codes[200] == 9
    # Envoy restarted (uptime went back) and already counted more than before: still added.
    restarted = parse(AFTER)
    totals.update(Read(restarted.clusters, 1))
    assert totals.get("dep_a").codes == {200: 16, 418: 2, 500: 4, 503: 2, 504: 2}
    assert totals.get("dep_a").latency.count == 16
    # A counter that went down says the same without the uptime.
    totals.update(Read({"dep_a": Figures(codes={200: 1})}, None))
    assert totals.get("dep_a").codes[200] == 17
    totals.update(Read({}, None))
    totals.retain(["dep_other"])  # dep_a was deleted
    assert totals.get("dep_a") is None


def test_latency_in_other_buckets_is_counted_at_the_next_bound_up() -> None:
    envoy_default = Histogram((0.0005, 0.001, 0.005, 0.01), (1, 3, 7, 8, 9), 0.05)
    assert envoy_default.onto((0.001, 0.0025, 0.01, 1.0)) == Histogram((0.001, 0.0025, 0.01, 1.0), (3, 3, 8, 8, 9), 0.05)
    assert envoy_default.onto(envoy_default.bounds) is envoy_default


def test_direct_traffics_environment_is_the_deployments_own() -> None:
    assert [environment_of(SNAP, d) for d in ("dep_a", "dep_gone", "dep_dev", "dep_other", "dep_unknown")] == [
        "production", "staging", "development", "", ""]


def test_envoys_sample_is_one_source_per_envoy_with_every_active_deployment() -> None:
    sample = envoy_sample(envoy_source("127.0.0.1:9901"), SNAP.deployments(), {"dep_a": (1, 1)}, now=7.0)
    assert sample.router_id == "envoy@127.0.0.1:9901"
    assert [(d.deployment_id, d.in_flight, d.queued) for d in sample.deployments] == [
        ("dep_a", 1, 1), ("dep_gone", 0, 0), ("dep_dev", 0, 0), ("dep_other", 0, 0)]


@pytest.fixture
def stats() -> RequestStats:
    return RequestStats()


def test_the_routers_metrics_add_envoys_answers_to_its_own_series(stats: RequestStats) -> None:
    registry = CollectorRegistry()
    registry.register(stats)
    poller = EnvoyPoller("127.0.0.1:9901", lambda: SNAP)
    poller.totals.update(parse(DURING))
    poller._now = parse(DURING).clusters
    stats.direct, stats.direct_in_flight = poller.direct, poller.direct_in_flight
    stats.labels_of = lambda d: (SNAP.by_deployment[d].model_id, SNAP.by_deployment[d].model_name)
    own = stats.series("mdl_a", "echo", "dep_a", "production")  # one the router carried itself
    own.answered("OK", 0.0001, 0.0001)
    labels = {"model": "mdl_a", "model_name": "echo", "deployment": "dep_a", "environment": "production"}

    def sample(name: str, **extra: str) -> float | None:
        return registry.get_sample_value(name, {**labels, **extra})

    assert sample("kingpost_router_requests_total", code="OK") == 6
    assert sample("kingpost_router_requests_total", code="INTERNAL") == 3
    assert sample("kingpost_router_requests_total", code="RESOURCE_EXHAUSTED") == 1
    assert sample("kingpost_router_request_seconds_count") == 9
    assert sample("kingpost_router_request_seconds_bucket", le="0.001") == 7
    assert registry.get_sample_value("kingpost_router_in_flight", {
        "model": "mdl_a", "model_name": "echo", "deployment": "dep_a"}) == 1
    staging = {**labels, "deployment": "dep_gone", "environment": "staging"}
    assert registry.get_sample_value("kingpost_router_requests_total", {**staging, "code": "UNAVAILABLE"}) == 1
    # Clusters that are no deployment of the table (the scheduler's) are not the router's to count.
    assert all(s.labels.get("deployment") != "scheduler" for m in registry.collect() for s in m.samples)


def test_text_that_is_not_envoys_stats_is_refused_naming_the_line() -> None:
    with pytest.raises(ValueError, match="cannot read the line '<html>'"):
        parse("<html>\n")
    with pytest.raises(ValueError, match="cannot read the line"):
        parse('envoy_cluster_upstream_rq_active{envoy_cluster_name="dep_a"} many\n')


def test_a_read_that_differs_only_by_uptime_is_unchanged_unless_envoy_restarted() -> None:
    later = AFTER.replace("envoy_server_uptime{} 3", "envoy_server_uptime{} 60")
    (stats, uptime), (stats_later, uptime_later) = without_uptime(AFTER), without_uptime(later)
    assert (uptime, uptime_later) == (3, 60) and stats == stats_later and "uptime{}" not in stats
    totals = EnvoyTotals(LATENCY_BUCKETS)
    totals.update(parse(AFTER))
    assert totals.unchanged(60)
    assert not totals.unchanged(2)  # restarted with the very same counts: 7 more answers, to be added
    totals.update(parse(AFTER.replace("envoy_server_uptime{} 3", "envoy_server_uptime{} 2")))
    assert totals.get("dep_a").codes[200] == 14

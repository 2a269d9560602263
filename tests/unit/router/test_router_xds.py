"""The route snapshot as Envoy resources: which path and host goes to which cluster, with which limits.

(tests/integration/test_xds.py runs them in a real Envoy written by the real router.)"""

from __future__ import annotations

import pytest

from kingpost.v1 import scheduler_pb2 as s
from kingpost_router.routes import RouteSnapshot
from kingpost.gateway_direct import CLUSTER_TYPE, discovery
from kingpost_router.xds import RETRY_ON, envoy_resources, route_configuration, with_routes

ACTIVE = s.DEPLOYMENT_STATUS_ACTIVE
SCALED_TO_ZERO = s.DEPLOYMENT_STATUS_SCALED_TO_ZERO
BUILDING = s.DEPLOYMENT_STATUS_BUILDING


def weighted(deployment_id: str, weight: int) -> s.WeightedDeployment:
    return s.WeightedDeployment(deployment_id=deployment_id, weight=weight)


def table() -> s.RouteTable:
    def at(*ports: int) -> list[s.ReplicaRoute]:
        return [s.ReplicaRoute(replica_id=f"rep_{p}", address=f"10.0.0.1:{p + 1000}", http_address=f"10.0.0.1:{p}")
                for p in ports]

    return s.RouteTable(version=3, models=[
        s.ModelRoute(model_id="mdl_a", name="echo", development_deployment_id="dep_dev", environments=[
            s.EnvironmentRoute(name="production", deployments=[weighted("dep_1", 100)]),
            s.EnvironmentRoute(name="staging", deployments=[  # a canary at 30 %
                weighted("dep_1", 70), weighted("dep_2", 30)]),
            s.EnvironmentRoute(name="waking", deployments=[  # a canary whose candidate is at zero
                weighted("dep_1", 90), weighted("dep_zero", 10)]),
            s.EnvironmentRoute(name="broken", deployments=[weighted("dep_gone", 100)]),
            s.EnvironmentRoute(name="asleep", deployments=[  # a canary between two at zero
                weighted("dep_zero", 50), weighted("dep_building", 50)]),
        ], deployments=[
            s.DeploymentRoute(deployment_id="dep_dev", active=True, status=ACTIVE, replicas=at(9001)),
            s.DeploymentRoute(deployment_id="dep_1", active=True, status=ACTIVE, predict_concurrency=4,
                              replicas=at(9002, 9003)),
            s.DeploymentRoute(deployment_id="dep_2", active=True, status=ACTIVE, predict_concurrency=1,
                              backpressure_policy="reject",
                              replicas=[s.ReplicaRoute(replica_id="rep_dns", address="runner-7.nodes:8004",
                                                       http_address="runner-7.nodes:9004")]),
            # A Triton runner serves no HTTP data plane: the router serves it.
            s.DeploymentRoute(deployment_id="dep_triton", active=True, status=ACTIVE,
                              replicas=[s.ReplicaRoute(replica_id="rep_t", address="10.0.0.1:8007")]),
            s.DeploymentRoute(deployment_id="dep_zero", active=True, status=SCALED_TO_ZERO),
            s.DeploymentRoute(deployment_id="dep_building", active=True, status=BUILDING),
            s.DeploymentRoute(deployment_id="dep_off", active=False, status=s.DEPLOYMENT_STATUS_INACTIVE,
                              replicas=at(9005)),
        ]),
        # A model without name, development deployment or production.
        s.ModelRoute(model_id="mdl_b", deployments=[
            s.DeploymentRoute(deployment_id="dep_b", active=True, status=ACTIVE, replicas=at(9006))]),
    ])


RESOURCES = envoy_resources(RouteSnapshot.from_table(table()), router_cluster="router",
                            request_timeout_seconds=600, max_queue_per_deployment=1000)
CLUSTERS = {c["name"]: c for c in RESOURCES.clusters}
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def route_for(path: str, host: str | None = None) -> dict:
    """The first route Envoy would match for a request to `path` (with Host `host`)."""
    for route in RESOURCES.routes:
        match = route["match"]
        if match.get("path", path) != path or not path.startswith(match.get("prefix", "")):
            continue
        wanted = match.get("headers", [])
        if not wanted or (host is not None and host.startswith(wanted[0]["string_match"]["prefix"])):
            return route
    raise LookupError(f"no route for {path} (host {host})")


def cluster_of(route: dict) -> str:
    return route["route"]["cluster"]


def pinned(headers: list[dict]) -> dict[str, str]:
    return {h["header"]["key"]: h["header"]["value"] for h in headers}


def test_each_deployment_with_ready_replicas_is_a_cluster_of_them() -> None:
    assert sorted(CLUSTERS) == ["dep_1", "dep_2", "dep_b", "dep_dev"]  # none at zero, building or inactive
    endpoints = CLUSTERS["dep_1"]["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert [(e["endpoint"]["address"]["socket_address"], e["metadata"]["filter_metadata"]["kingpost"])
            for e in endpoints] == [({"address": "10.0.0.1", "port_value": 9002}, {"replica_id": "rep_9002"}),
                                    ({"address": "10.0.0.1", "port_value": 9003}, {"replica_id": "rep_9003"})]
    assert CLUSTERS["dep_1"]["type"] == "STATIC"
    assert CLUSTERS["dep_2"]["type"] == "STRICT_DNS"  # a host name: Envoy resolves it


def test_clusters_balance_on_least_requests_of_two_choices_over_http1() -> None:
    cluster = CLUSTERS["dep_1"]
    [policy] = cluster["load_balancing_policy"]["policies"]
    assert policy["typed_extension_config"]["typed_config"]["choice_count"] == 2
    assert policy["typed_extension_config"]["name"] == "envoy.load_balancing_policies.least_request"
    options = cluster["typed_extension_protocol_options"][HTTP_OPTIONS]
    assert options["explicit_http_config"] == {"http_protocol_options": {}}


def test_predict_concurrency_is_that_many_connections_per_replica() -> None:
    cluster = CLUSTERS["dep_1"]
    assert cluster["circuit_breakers"]["per_host_thresholds"] == [{"max_connections": 4}]
    [limits] = cluster["circuit_breakers"]["thresholds"]
    assert limits["max_pending_requests"] == 1000  # the router's queue bound
    assert limits["max_requests"] >= 100_000  # not Envoy's default of 1,024 per cluster


def test_a_full_deployments_429_carries_the_routers_message_in_its_clusters_metadata() -> None:
    def limit_error(name: str) -> str:
        return CLUSTERS[name]["metadata"]["filter_metadata"]["kingpost"]["limit_error"]

    assert limit_error("dep_1") == ("deployment 'dep_1' is at its limit: 1000 requests already wait for a "
                                    "replica (queue limit 1000)")
    assert limit_error("dep_2") == ("deployment 'dep_2' is at its limit: every replica runs 1 requests at once "
                                    "(predict_concurrency) and its back-pressure policy is 'reject'")


def test_no_predict_concurrency_means_no_per_replica_limit() -> None:
    assert "per_host_thresholds" not in CLUSTERS["dep_dev"]["circuit_breakers"]


def test_a_runner_that_refuses_connections_is_left_out_but_a_model_error_ejects_nothing() -> None:
    outliers = CLUSTERS["dep_1"]["outlier_detection"]
    assert outliers["split_external_local_origin_errors"] is True
    assert outliers["consecutive_local_origin_failure"] == 1
    assert outliers["enforcing_consecutive_local_origin_failure"] == 100
    assert outliers["enforcing_consecutive_5xx"] == outliers["enforcing_success_rate"] == 0
    assert outliers["base_ejection_time"] == "1s"


def test_reject_on_full_bounds_requests_not_the_queue_with_a_spare_connection_to_be_refused_on() -> None:
    breakers = CLUSTERS["dep_2"]["circuit_breakers"]
    [limits] = breakers["thresholds"]
    assert limits["max_requests"] == 1  # predict_concurrency 1 x one replica
    assert limits["max_pending_requests"] == 1  # one replica: the wait for its connection
    assert breakers["per_host_thresholds"] == [{"max_connections": 2}]  # the limit and a spare


@pytest.mark.parametrize("model", ["mdl_a", "echo"])
def test_each_prefix_routes_by_id_and_by_name(model: str) -> None:
    assert cluster_of(route_for(f"/models/{model}/development/predict")) == "dep_dev"
    assert cluster_of(route_for(f"/models/{model}/production/predict")) == "dep_1"
    assert cluster_of(route_for(f"/models/{model}/environments/production/predict")) == "dep_1"
    assert cluster_of(route_for(f"/models/{model}/deployment/dep_2/predict")) == "dep_2"


@pytest.mark.parametrize("host", ["model-mdl_a.example.com", "model-echo.example.com:8080"])
def test_model_hosts_route_the_prefixes_without_the_model_path(host: str) -> None:
    assert cluster_of(route_for("/development/predict", host)) == "dep_dev"
    assert cluster_of(route_for("/production/predict", host)) == "dep_1"
    assert cluster_of(route_for("/deployment/dep_2/predict", host)) == "dep_2"
    with pytest.raises(LookupError):
        route_for("/production/predict", "model-other.example.com")


def test_runner_routes_retry_once_only_where_no_model_ran_and_carry_the_deadline() -> None:
    route = route_for("/models/echo/production/predict")["route"]
    assert (route["timeout"], route["idle_timeout"]) == ("600s", "0s")
    policy = route["retry_policy"]
    assert policy["retry_on"] == RETRY_ON == "connect-failure,refused-stream,reset-before-request"
    assert policy["num_retries"] == 1
    assert [p["name"] for p in policy["retry_host_predicate"]] == [
        "envoy.retry_host_predicates.previous_hosts"]  # the retry goes to another replica


def test_a_direct_route_sends_the_runners_own_path_without_the_key_and_with_the_request_id() -> None:
    route = route_for("/models/echo/production/predict")
    assert route["route"]["prefix_rewrite"] == "/predict"
    assert route["request_headers_to_remove"] == ["authorization"]
    assert pinned(route["request_headers_to_add"]) == {"x-baseten-request-id": "%REQ(x-request-id)%"}
    sync = route_for("/models/echo/production/sync/v1/chat/completions")
    assert sync["match"] == {"prefix": "/models/echo/production/sync/"}
    assert sync["route"]["prefix_rewrite"] == "/sync/"  # the rest of the path and the query stay
    assert cluster_of(route_for("/production/sync/health", "model-echo.example.com")) == "dep_1"


def test_a_direct_route_turns_the_grpc_filters_off_and_the_key_check_and_body_limit_on() -> None:
    filters = route_for("/models/echo/production/predict")["typed_per_filter_config"]
    assert filters["envoy.filters.http.grpc_json_transcoder"]["disabled"] is True
    assert filters["envoy.filters.http.lua"]["disabled"] is True
    assert filters["envoy.filters.http.ext_authz"]["disabled"] is True  # the router's big-body check: the
    assert filters["kingpost.api_key"]["name"] == "api_key"  # key is checked inside Envoy instead
    assert "keys_version" in route_for("/models/echo/production/predict")["metadata"]["filter_metadata"][
        "kingpost.api_key"]
    assert filters["kingpost.body_limit"]["config"]["buffer"]["max_request_bytes"] == 100 * 1024 * 1024
    assert "typed_per_filter_config" not in route_for("/models/echo/deployment/dep_zero/predict")


def test_an_environment_split_is_weighted_clusters() -> None:
    route = route_for("/models/echo/environments/staging/predict")["route"]
    clusters = route["weighted_clusters"]["clusters"]
    assert clusters == [{"name": "dep_1", "weight": 70}, {"name": "dep_2", "weight": 30}]


def test_a_deployment_with_no_ready_replica_or_no_http_goes_to_the_router_which_holds_or_explains() -> None:
    for did in ("dep_zero", "dep_building", "dep_off", "dep_triton"):
        for path in (f"/models/echo/deployment/{did}/predict", f"/models/echo/deployment/{did}/sync/x"):
            route = route_for(path)
            assert cluster_of(route) == "router"
            assert "prefix_rewrite" not in route["route"]  # the transcoder makes its gRPC call
            assert route["route"]["timeout"] == "0s"  # the router bounds it (cold-start timeout)
            assert pinned(route["request_headers_to_add"]) == {"x-kingpost-deployment": did,
                                                                "x-kingpost-host": "%REQ(:authority)%"}
    assert "dep_triton" not in CLUSTERS


def test_a_canary_with_a_share_at_zero_goes_to_the_router_whole_which_draws_it() -> None:
    route = route_for("/models/echo/environments/waking/predict")
    assert cluster_of(route) == "router"
    assert pinned(route["request_headers_to_add"]) == {"x-kingpost-host": "%REQ(:authority)%"}


def test_a_canary_between_two_at_zero_reaches_the_router_pinned_to_the_drawn_deployment() -> None:
    clusters = route_for("/models/echo/environments/asleep/predict")["route"]["weighted_clusters"]["clusters"]
    assert [(c["name"], c["weight"], pinned(c["request_headers_to_add"])["x-kingpost-deployment"])
            for c in clusters] == [("router", 50, "dep_zero"), ("router", 50, "dep_building")]


def test_what_the_table_cannot_route_has_no_route_and_falls_through_to_the_router() -> None:
    with pytest.raises(LookupError):  # its split names a deployment that is not in the table
        route_for("/models/echo/environments/broken/predict")
    with pytest.raises(LookupError):  # no production, no development deployment
        route_for("/models/mdl_b/production/predict")
    with pytest.raises(LookupError):
        route_for("/models/mdl_b/development/predict")
    assert cluster_of(route_for("/models/mdl_b/deployment/dep_b/predict")) == "dep_b"
    config = route_configuration(RESOURCES, name="rest", after=[{"match": {"prefix": "/"},
                                                                 "route": {"cluster": "router"}}])
    assert config["virtual_hosts"][0]["routes"][-1] == {"match": {"prefix": "/"},
                                                        "route": {"cluster": "router"}}


def test_the_tables_routes_go_in_front_of_the_listeners_own() -> None:
    base = {"name": "rest", "most_specific_header_mutations_wins": True,
            "virtual_hosts": [{"name": "kingpost", "domains": ["*"], "routes": [{"match": {"prefix": "/"}}]}]}
    config = with_routes(base, RESOURCES)
    routes = config["virtual_hosts"][0]["routes"]
    assert routes[:-1] == RESOURCES.routes and routes[-1] == {"match": {"prefix": "/"}}
    assert config["most_specific_header_mutations_wins"] is True
    assert base["virtual_hosts"][0]["routes"] == [{"match": {"prefix": "/"}}]  # unchanged


def test_a_model_named_like_another_models_id_cannot_take_its_routes() -> None:
    snapshot = RouteSnapshot.from_table(s.RouteTable(models=[
        s.ModelRoute(model_id="mdl_a", development_deployment_id="dep_a", deployments=[
            s.DeploymentRoute(deployment_id="dep_a", active=True, status=ACTIVE, replicas=[
                s.ReplicaRoute(replica_id="r1", address="10.0.0.1:1", http_address="10.0.0.1:11")])]),
        s.ModelRoute(model_id="mdl_z", name="mdl_a", development_deployment_id="dep_z", deployments=[
            s.DeploymentRoute(deployment_id="dep_z", active=True, status=ACTIVE, replicas=[
                s.ReplicaRoute(replica_id="r2", address="10.0.0.1:2", http_address="10.0.0.1:12")])]),
    ]))
    routes = envoy_resources(snapshot).routes
    matching = [r for r in routes if r["match"].get("path") == "/models/mdl_a/development/predict"]
    assert [cluster_of(r) for r in matching] == ["dep_a"]  # as the router: an id wins over a name


def test_a_bad_http_address_leaves_the_deployment_to_the_router() -> None:
    bad = s.RouteTable(models=[s.ModelRoute(model_id="mdl_a", deployments=[
        s.DeploymentRoute(deployment_id="dep_a", active=True, status=ACTIVE, replicas=[
            s.ReplicaRoute(replica_id="r1", address="10.0.0.1:1", http_address="no-port")])])])
    resources = envoy_resources(RouteSnapshot.from_table(bad))
    assert resources.clusters == []
    assert {r["route"]["cluster"] for r in resources.routes} == {"router"}


def test_resources_travel_as_a_discovery_response() -> None:
    response = discovery(RESOURCES.clusters, CLUSTER_TYPE, version=3)
    assert response["version_info"] == "3" and response["type_url"] == CLUSTER_TYPE
    assert [r["@type"] for r in response["resources"]] == [CLUSTER_TYPE] * 4
    assert response["resources"][0]["name"] == "dep_1"

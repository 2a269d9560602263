"""The rendered Envoy config: the shipped cluster file is current, upstream addresses are checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kingpost.gateway import (
    CLUSTER_EXAMPLE,
    Upstream,
    envoy_command,
    otlp_address,
    render_envoy_config,
    render_envoy_text,
)

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "envoy" / "envoy.yaml"
LOOPBACK = dict(rest_port=8080, grpc_port=50051, admin_port=9901, router="127.0.0.1:1",
                scheduler="127.0.0.1:2", builder="localhost:3", descriptor_path="/x.binpb")


def test_the_shipped_cluster_config_is_what_the_renderer_makes():
    assert SHIPPED.read_text() == render_envoy_text(**CLUSTER_EXAMPLE), (
        "deploy/envoy/envoy.yaml is stale: python -m kingpost.gateway --out deploy/envoy/envoy.yaml")
    assert yaml.safe_load(SHIPPED.read_text()) == render_envoy_config(**CLUSTER_EXAMPLE)


def _clusters(config: dict) -> dict[str, dict]:
    return {c["name"]: c for c in config["static_resources"]["clusters"]}


def test_ip_upstreams_are_static_and_names_are_resolved():
    clusters = _clusters(render_envoy_config(**LOOPBACK))
    assert (clusters["router"]["type"], clusters["builder"]["type"]) == ("STATIC", "STRICT_DNS")
    endpoint = clusters["scheduler"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 2}


def test_websocket_upgrades_go_untranscoded_to_the_routers_websocket_listener():
    config = render_envoy_config(**LOOPBACK, router_websocket="127.0.0.1:4")
    rest = config["static_resources"]["listeners"][0]
    routes = rest["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    [route] = [r for r in routes if r.get("route", {}).get("cluster") == "router_websocket"]
    assert route["route"]["upgrade_configs"] == [{"upgrade_type": "websocket"}]
    assert route["route"]["timeout"] == route["route"]["idle_timeout"] == "0s"
    assert all(c["disabled"] for c in route["typed_per_filter_config"].values())
    assert routes.index(route) < next(i for i, r in enumerate(routes) if r["match"].get("prefix"))
    cluster = _clusters(config)["router_websocket"]
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 4}
    # Without an address of its own: the router's host, port 50065 (the cluster example's).
    default = _clusters(render_envoy_config(**LOOPBACK))["router_websocket"]
    assert default["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
        "socket_address"] == {"address": "127.0.0.1", "port_value": 50065}


def test_the_body_limit_reaches_the_transcoder():
    config = render_envoy_config(**LOOPBACK, max_body_bytes=12345)
    rest = config["static_resources"]["listeners"][0]
    hcm = rest["filter_chains"][0]["filters"][0]["typed_config"]
    transcoder = next(f for f in hcm["http_filters"] if f["name"].endswith("grpc_json_transcoder"))
    assert transcoder["typed_config"]["max_request_body_size"] == 12345
    assert transcoder["typed_config"]["max_response_body_size"] == 12345


@pytest.mark.parametrize("bad", ["router", "router:", ":50061", "router:http", "router:70000"])
def test_a_bad_upstream_address_is_named(bad):
    with pytest.raises(ValueError, match="is not 'host:port'"):
        Upstream.parse(bad)


def test_ipv6_upstreams_parse_and_render():
    assert Upstream.parse("[::1]:50061") == Upstream("::1", 50061)
    router = _clusters(render_envoy_config(**{**LOOPBACK, "router": "[::1]:50061"}))["router"]
    endpoint = router["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert (router["type"], endpoint["address"]["socket_address"]["address"]) == ("STATIC", "::1")


def test_several_envoys_can_share_a_machine():
    assert "--use-dynamic-base-id" in envoy_command("/e.yaml", binary="envoy")
    argv = envoy_command("/e.yaml", binary="envoy", base_id=7)
    assert argv[argv.index("--base-id") + 1] == "7"
    assert argv[argv.index("--concurrency") + 1] == "1"


def _connection_managers(config: dict) -> dict[str, dict]:
    return {listener["name"]: listener["filter_chains"][0]["filters"][0]["typed_config"]
            for listener in config["static_resources"]["listeners"]}


def test_nothing_in_envoy_cuts_a_prediction_before_the_routers_deadline():
    """A quiet 10-minute prediction must reach the router's request_timeout_seconds (600 s): Envoy's
    default 5-minute stream idle timeout, or any route timeout, would cut it first."""
    managers = _connection_managers(render_envoy_config(**LOOPBACK))
    for name, manager in managers.items():
        routes = manager["route_config"]["virtual_hosts"][0]["routes"]
        predict = next(r for r in routes if r["match"].get("prefix") == "/kingpost.v1.InferenceService/")
        assert (predict["route"]["timeout"], predict["route"]["idle_timeout"]) == ("0s", "0s"), name
        assert "stream_idle_timeout" not in manager and "max_stream_duration" not in manager, name
    # Receiving the request itself (a stalled upload) stays bounded on the REST port.
    assert managers["rest"]["request_timeout"] == "300s"


def test_envoy_pings_both_sides_as_the_services_do():
    config = render_envoy_config(**LOOPBACK)
    pings = {"interval": "30s", "timeout": "20s"}
    for cluster in config["static_resources"]["clusters"]:
        if cluster["name"] == "router_websocket":  # HTTP/1.1 upgraded: the WebSocket peers ping
            continue
        [options] = cluster["typed_extension_protocol_options"].values()
        assert options["explicit_http_config"]["http2_protocol_options"]["connection_keepalive"] == pings
    for manager in _connection_managers(config).values():
        assert manager["http2_protocol_options"]["connection_keepalive"] == pings


def test_the_openapi_document_is_served_from_beside_the_descriptor_and_fits_the_limit():
    rest = render_envoy_config(**LOOPBACK)["static_resources"]["listeners"][0]
    route_config = rest["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]
    routes = route_config["virtual_hosts"][0]["routes"]
    route = next(r for r in routes if r["match"].get("path") == "/v1/openapi.json")
    assert route["direct_response"]["body"]["filename"] == "/openapi.json"  # beside /x.binpb
    shipped = Path(__file__).resolve().parents[2] / "src" / "kingpost" / "envoy" / "openapi.json"
    assert shipped.stat().st_size < route_config["max_direct_response_body_size_bytes"]


def test_without_an_otlp_endpoint_envoy_traces_nothing_and_with_one_both_listeners_export_there():
    assert all("tracing" not in m for m in _connection_managers(render_envoy_config(**LOOPBACK)).values())
    config = render_envoy_config(**LOOPBACK, otlp_endpoint="http://collector:4317", trace_ratio=0.25)
    for manager in _connection_managers(config).values():
        sampler = manager["tracing"]["provider"]["typed_config"]["sampler"]["typed_config"]["wrapped_sampler"]
        assert sampler["typed_config"]["sampling_percentage"] == {"numerator": 250000, "denominator": "MILLION"}
    otlp = _clusters(config)["otlp"]
    assert otlp["type"] == "STRICT_DNS"
    assert otlp["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"] == {
        "address": "collector", "port_value": 4317}


@pytest.mark.parametrize("endpoint, address", [("http://10.0.0.9", "10.0.0.9:4317"), ("10.0.0.9:4000", "10.0.0.9:4000"),
                                               ("http://[::1]:4317/", "[::1]:4317")])
def test_an_otlp_endpoint_is_read_as_the_sdks_read_it(endpoint, address):
    assert otlp_address(endpoint) == address


@pytest.mark.parametrize("endpoint", ["https://collector:4317", "grpc://collector"])
def test_an_otlp_endpoint_envoy_cannot_export_to_is_refused_naming_it(endpoint):
    with pytest.raises(ValueError, match=f"OTLP endpoint '{endpoint}'"):
        render_envoy_config(**LOOPBACK, otlp_endpoint=endpoint)


def test_the_direct_data_path_takes_rest_routes_by_rds_and_clusters_by_cds(tmp_path) -> None:
    from kingpost import gateway
    from kingpost.gateway_direct import BASE_FILE, CDS_FILE, RDS_FILE

    kw = dict(rest_port=1, grpc_port=2, admin_port=3, router="127.0.0.1:4", scheduler="127.0.0.1:5",
              builder="127.0.0.1:6", descriptor_path="/d/kingpost.binpb")
    config = gateway.render_envoy_config(data_path="envoy", xds_dir=tmp_path, **kw)
    [rest] = [listener for listener in config["static_resources"]["listeners"] if listener["name"] == "rest"]
    manager = rest["filter_chains"][0]["filters"][0]["typed_config"]
    assert "route_config" not in manager
    assert manager["rds"]["config_source"]["path_config_source"]["path"] == str(tmp_path / RDS_FILE)
    assert config["dynamic_resources"]["cds_config"]["path_config_source"]["path"] == str(tmp_path / CDS_FILE)
    names = [f["name"] for f in manager["http_filters"]]
    # The key (checked inside Envoy, on the routes that ask) before the body.
    assert names.index("kingpost.api_key") < names.index("kingpost.body_limit") < names.index(
        "envoy.filters.http.grpc_json_transcoder")
    assert [f for f in manager["http_filters"] if f["name"] == "kingpost.body_limit"][0]["disabled"]
    files = gateway.initial_xds_files(tmp_path, **kw)
    assert set(files) == {tmp_path / BASE_FILE, tmp_path / RDS_FILE, tmp_path / CDS_FILE}
    with pytest.raises(ValueError, match="data path 'envoy' needs xds_dir"):
        gateway.render_envoy_text(data_path="envoy", **kw)
    with pytest.raises(ValueError, match="data path 'fast' is not one of router, envoy"):
        gateway.render_envoy_text(data_path="fast", **kw)

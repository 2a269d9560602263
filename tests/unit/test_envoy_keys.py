"""What the router attaches to a direct route so that Envoy checks API keys itself (envoy_keys)."""

from __future__ import annotations

from kingpost.auth import key_digest
from kingpost.gateway import API_KEY_FILTER, API_KEY_SOURCE, EXT_AUTHZ_FILTER, render_envoy_config
from kingpost.v1 import scheduler_pb2 as s
from kingpost_router.envoy_keys import key_context, key_metadata, route_key_fields
from kingpost_router.routes import RouteSnapshot

ADMIN, ANY_MODEL, ONLY_A, ONLY_A_AND_B, DROPPED = "kp_admin", "kp_any", "kp_only_a", "kp_a_b", "kp_dropped"


def snapshot() -> RouteSnapshot:
    return RouteSnapshot.from_table(s.RouteTable(
        version=3,
        models=[s.ModelRoute(model_id="mdl_a", name="alpha"), s.ModelRoute(model_id="mdl_b", name="beta"),
                s.ModelRoute(model_id="mdl_c")],
        api_key_sha256=[key_digest(k) for k in (ADMIN, ANY_MODEL, ONLY_A, ONLY_A_AND_B)],
        invoke_only_keys={
            key_digest(ANY_MODEL): s.InvokeScope(),
            key_digest(ONLY_A): s.InvokeScope(model_ids=["mdl_a"]),
            key_digest(ONLY_A_AND_B): s.InvokeScope(model_ids=["mdl_b", "mdl_a"]),
            # A scope whose key is no longer in the table (revoked): no verdict at all, so 401.
            key_digest(DROPPED): s.InvokeScope(model_ids=["mdl_a"]),
        }))


def test_the_snapshot_carries_each_invoke_only_keys_models() -> None:
    snap = snapshot()
    assert snap.invoke_only[key_digest(ONLY_A_AND_B)] == frozenset({"mdl_a", "mdl_b"})
    assert snap.invoke_only[key_digest(ANY_MODEL)] == frozenset()
    assert key_digest(ADMIN) not in snap.invoke_only


def test_every_key_of_the_table_is_known_and_a_key_for_other_models_gets_the_routers_403() -> None:
    snap = snapshot()
    a, b, c = (snap.by_id[m] for m in ("mdl_a", "mdl_b", "mdl_c"))
    keys = " ".join(sorted(key_digest(k) for k in (ADMIN, ANY_MODEL, ONLY_A, ONLY_A_AND_B)))
    assert key_context(snap) == {"keys": keys}
    version = key_metadata(snap, a)["keys_version"]
    assert key_metadata(snap, a) == {"keys_version": version}
    assert key_metadata(snap, b) == {
        "keys_version": version,
        key_digest(ONLY_A): "this API key may invoke only model mdl_a, not model 'beta' (mdl_b)"}
    assert key_metadata(snap, c) == {
        "keys_version": version,
        key_digest(ONLY_A): "this API key may invoke only model mdl_a, not model 'mdl_c'",
        key_digest(ONLY_A_AND_B): "this API key may invoke only model mdl_a, mdl_b, not model 'mdl_c'"}
    assert key_digest(DROPPED) not in str(route_key_fields(snap, c))  # its scope outlived it: unknown, 401


def test_the_version_of_the_keys_changes_with_them_and_only_with_them() -> None:
    """Envoy remembers a parsed key set by this version: a stale one would keep a revoked key."""
    snap = snapshot()
    version = key_metadata(snap, snap.by_id["mdl_a"])["keys_version"]
    assert key_metadata(snap, snap.by_id["mdl_b"])["keys_version"] == version
    fewer = RouteSnapshot.from_table(s.RouteTable(models=[s.ModelRoute(model_id="mdl_a")],
                                                  api_key_sha256=[key_digest(ADMIN)]))
    assert key_metadata(fewer, fewer.by_id["mdl_a"])["keys_version"] != version


def test_no_key_itself_is_in_what_the_router_pushes() -> None:
    snap = snapshot()
    fields = str(route_key_fields(snap, snap.by_id["mdl_b"]))
    for key in (ADMIN, ANY_MODEL, ONLY_A, ONLY_A_AND_B):
        assert key not in fields and key_digest(key) in fields


def test_a_direct_route_names_the_listeners_script_and_skips_the_ext_authz_hop() -> None:
    snap = snapshot()
    fields = route_key_fields(snap, snap.by_id["mdl_a"])
    assert fields["typed_per_filter_config"][API_KEY_FILTER] == {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute",
        "name": API_KEY_SOURCE, "filter_context": key_context(snap)}
    assert fields["typed_per_filter_config"][EXT_AUTHZ_FILTER]["disabled"] is True
    # The script reads the route's metadata under its own filter's name.
    assert fields["metadata"] == {"filter_metadata": {API_KEY_FILTER: key_metadata(snap, snap.by_id["mdl_a"])}}


def test_the_rest_listener_has_the_script_before_the_body_is_read() -> None:
    config = render_envoy_config(rest_port=1, grpc_port=2, admin_port=3, router="127.0.0.1:4",
                                 scheduler="127.0.0.1:5", builder="127.0.0.1:6", descriptor_path="/x.binpb")
    [rest] = [listener for listener in config["static_resources"]["listeners"] if listener["name"] == "rest"]
    names = [f["name"] for f in rest["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]]
    assert names.index(API_KEY_FILTER) < names.index(EXT_AUTHZ_FILTER) < names.index(
        "envoy.filters.http.grpc_json_transcoder")
    [check] = [f for f in rest["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
               if f["name"] == API_KEY_FILTER]
    assert "envoy_on_request" in check["typed_config"]["source_codes"][API_KEY_SOURCE]["inline_string"]
    assert "default_source_code" not in check["typed_config"]  # a route without the fields runs nothing

"""What of a /sync/ caller's request reaches the server, and what of the server's answer comes back."""

from __future__ import annotations

from kingpost_router.sync_request import response_metadata, target


def test_envoy_recorded_method_and_path_win_and_platform_headers_stay_behind() -> None:
    metadata = [
        ("authorization", "Api-Key secret"), ("x-kingpost-host", "h"), ("x-envoy-expected-rq-timeout-ms", "1"),
        ("x-kingpost-sync-method", "put"), ("x-kingpost-sync-path", "/v1/x?model_id=a&b=2"),
        ("content-type", "application/grpc"), ("te", "trailers"), ("grpc-timeout", "1S"),
        ("x-custom", "yes"), ("user-agent", "OpenAI/Python 1.0"), ("trace-bin", b"\x00"),
    ]
    to = target("v1/x", "", "", metadata)
    assert (to.method, to.path) == ("PUT", "/v1/x?model_id=a&b=2")
    assert to.headers == (("x-custom", "yes"), ("user-agent", "OpenAI/Python 1.0"))


def test_grpc_callers_name_method_and_query_in_the_request() -> None:
    assert target("v1/models", "get", "a=1", []).path == "/v1/models?a=1"
    assert target("v1/models", "get", "a=1", []).method == "GET"
    assert target("/health", "", "", []) == target("health", "POST", "", [])


def test_the_servers_status_and_headers_go_back_less_the_hop() -> None:
    md = [("x-http-status", "201"), ("content-length", "3"), ("set-cookie", "a=1"), ("set-cookie", "b=2"),
          ("grpc-accept-encoding", "gzip"), ("transfer-encoding", "chunked"), ("x-bin", b"\x01")]
    assert response_metadata(md) == [("x-http-status", "201"), ("set-cookie", "a=1"), ("set-cookie", "b=2")]

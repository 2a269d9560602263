"""Envoy's own span: Envoy with kingpost's config rendered for an OTLP endpoint, a router double that
records the traceparent it is sent, and a real OTLP/gRPC receiver that records what Envoy exports."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import httpx
import pytest
from google.api import httpbody_pb2

from kingpost.gateway import write_envoy_config
from kingpost.v1 import inference_pb2_grpc
from tests.fixtures.otlp import Collector, attributes, collector  # noqa: F401
from tests.fixtures.servers import free_port, running_envoy
from tests.integration.test_gateway import DESCRIPTOR

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


class Router(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self) -> None:
        self.traceparents: list[str | None] = []

    def Predict(self, request, context):  # noqa: N802
        self.traceparents.append(dict(context.invocation_metadata()).get("traceparent"))
        yield httpbody_pb2.HttpBody(content_type="application/json", data=b"{}")


@pytest.fixture
def envoy(tmp_path, collector) -> Iterator[tuple[int, Router, Collector]]:
    """Envoy tracing 0 % of the requests without a sampled traceparent, so only callers' count."""
    servicer, otlp_port = collector
    router = Router()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(router, server)
    router_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    rest, admin = free_port(), free_port()
    config = write_envoy_config(
        tmp_path / "envoy.yaml", rest_port=rest, grpc_port=free_port(), admin_port=admin,
        router=f"127.0.0.1:{router_port}", scheduler=f"127.0.0.1:{free_port()}",
        builder=f"127.0.0.1:{free_port()}", descriptor_path=DESCRIPTOR,
        otlp_endpoint=f"http://127.0.0.1:{otlp_port}", trace_ratio=0.0)
    try:
        with running_envoy(config, admin):
            yield rest, router, servicer
    finally:
        server.stop(None)


def predict(rest: int, traceparent: str | None) -> httpx.Response:
    headers = {"traceparent": traceparent} if traceparent else {}
    response = httpx.post(f"http://127.0.0.1:{rest}/models/m/production/predict", json={}, headers=headers,
                          timeout=10)
    assert response.status_code == 200, response.text
    return response


def test_a_sampled_request_gets_envoys_span_under_the_callers_and_the_router_is_sent_its_child(envoy):
    rest, router, collector = envoy
    response = predict(rest, f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01")
    collector.wait_for(CLIENT_TRACE, {"ingress"})
    [(service, span)] = collector.of_trace(CLIENT_TRACE)
    assert service == "kingpost-envoy"
    assert span.parent_span_id.hex() == CLIENT_SPAN
    assert attributes(span)["kingpost.request_id"] == response.headers["x-baseten-request-id"]
    # The router is told Envoy's span is the parent: its span joins the same trace under Envoy's.
    version, trace_id, parent, flags = router.traceparents[-1].split("-")
    assert (trace_id, parent, flags) == (CLIENT_TRACE, span.span_id.hex(), "01")


def test_a_request_that_is_not_sampled_makes_no_span_and_the_router_traces_none(envoy):
    rest, router, collector = envoy
    predict(rest, f"00-{'1' * 32}-{CLIENT_SPAN}-00")
    predict(rest, None)  # 0 % of these
    for traceparent in router.traceparents:  # one the router reads as not sampled
        assert traceparent.endswith("-00"), traceparent
    # A sampled one after them: once its span is in, Envoy has exported whatever came before.
    predict(rest, f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01")
    collector.wait_for(CLIENT_TRACE, {"ingress"})
    assert {span.trace_id.hex() for _, span in collector.spans} == {CLIENT_TRACE}

"""Traces, as a user with a collector sees them: `kingpost up` with OTEL_EXPORTER_OTLP_ENDPOINT set, a
request carrying a W3C traceparent, and the spans arriving over OTLP at a stand-in collector."""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.e2e.test_up import Up, descendants, free_port, proc_stat

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """What an OpenTelemetry collector's OTLP/gRPC receiver does, minus the storage: keep the spans."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, object]] = []  # (service.name, span)
        self.lock = threading.Lock()

    def Export(self, request, context):  # noqa: N802
        with self.lock:
            for resource_spans in request.resource_spans:
                service = next((a.value.string_value for a in resource_spans.resource.attributes
                                if a.key == "service.name"), "")
                for scope in resource_spans.scope_spans:
                    self.spans.extend((service, span) for span in scope.spans)
        return trace_service_pb2.ExportTraceServiceResponse()

    def of_trace(self, trace_id: str) -> list[tuple[str, object]]:
        with self.lock:
            return [(service, span) for service, span in self.spans if span.trace_id.hex() == trace_id]


@pytest.fixture
def collector() -> Iterator[tuple[Collector, int]]:
    servicer = Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, port
    server.stop(None)


def test_a_request_with_a_traceparent_is_traced_through_router_and_runner(
    collector: tuple[Collector, int], tmp_path: Path
) -> None:
    servicer, port = collector
    rest, grpc_port = free_port(), free_port()
    up = Up(tmp_path / "home", rest, grpc_port, env={
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_BSP_SCHEDULE_DELAY": "100"})
    seen: dict[int, str] = {}
    try:
        curl = shlex.split(up.wait_for_curl())
        key = curl[curl.index("-H") + 1].split("Api-Key ")[1]
        response = httpx.post(curl[-1], content=b'{"text": "traced"}', timeout=30, headers={
            "Authorization": f"Api-Key {key}", "traceparent": f"00-{TRACE}-{PARENT}-01"})
        assert response.status_code == 200, response.text
        deadline = time.monotonic() + 30
        while len(servicer.of_trace(TRACE)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        spans = {span.name: (service, span) for service, span in servicer.of_trace(TRACE)}
        assert set(spans) == {"kingpost.router/Predict", "kingpost.runner/Predict"}, spans
        (service, server), (_, call) = spans["kingpost.router/Predict"], spans["kingpost.runner/Predict"]
        assert service == "kingpost-router"
        assert server.parent_span_id.hex() == PARENT  # the client's span
        assert call.parent_span_id == server.span_id
        assert server.end_time_unix_nano >= call.end_time_unix_nano > call.start_time_unix_nano
        seen = descendants(up.process.pid)
        assert up.stop() == 0
    finally:
        if up.process.poll() is None or any(proc_stat(p) for p in seen):
            up.kill_everything(set(seen) | set(descendants(up.process.pid)))

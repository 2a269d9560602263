"""OpenTelemetry spans for a routed request, when the router exports traces (OTEL_EXPORTER_OTLP_ENDPOINT).

    span = start_request(tracer, forwarded, model)   # SERVER span, child of the caller's W3C traceparent
    call = start_call(tracer, span, replica)         # CLIENT span around one runner call (retries: one each)
    metadata = with_context(metadata, call)          # the runner (and the model) get that span as traceparent
    finish(call, code); finish(span, code)           # status from the gRPC code the caller saw

A trace then shows, per request: the router's time (queue wait included) and each runner call,
under the client's own trace when it sent a `traceparent`. The model's environment holds no
OpenTelemetry, so the runner makes no spans of its own; its call is the CLIENT span. Nothing here
runs when tracing is off: the router's tracer is None and it skips every call.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from kingpost_router.routes import Deployment, Replica

_W3C = TraceContextTextMapPropagator()
_TRACE_KEYS = ("traceparent", "tracestate")


def start_request(tracer: Tracer, metadata: Sequence[tuple[str, str]], model: str) -> Span:
    parent = _W3C.extract({key: value for key, value in metadata if key in _TRACE_KEYS})
    return tracer.start_span("kingpost.router/Predict", context=parent, kind=SpanKind.SERVER, attributes={
        "rpc.system": "grpc", "rpc.service": "kingpost.v1.InferenceService", "rpc.method": "Predict",
        "kingpost.model": model})


def start_call(tracer: Tracer, parent: Span, deployment: Deployment, replica: Replica) -> Span:
    parent.set_attribute("kingpost.deployment_id", deployment.deployment_id)
    return tracer.start_span("kingpost.runner/Predict", context=trace.set_span_in_context(parent),
                             kind=SpanKind.CLIENT, attributes={
                                 "rpc.system": "grpc", "rpc.service": "kingpost.v1.RunnerService",
                                 "rpc.method": "Predict", "server.address": replica.address,
                                 "kingpost.deployment_id": deployment.deployment_id,
                                 "kingpost.replica_id": replica.replica_id})


def with_context(metadata: list[tuple[str, str]], span: Span) -> list[tuple[str, str]]:
    """`metadata` with the caller's trace headers replaced by `span`'s."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=trace.set_span_in_context(span))
    return [(k, v) for k, v in metadata if k not in _TRACE_KEYS] + list(carrier.items())


def finish(span: Span, code: str) -> None:
    span.set_attribute("rpc.grpc.status_code", code)
    if code != "OK":
        span.set_status(Status(StatusCode.ERROR, code))
    span.end()

"""OpenTelemetry spans for a routed request, when the router exports traces (OTEL_EXPORTER_OTLP_ENDPOINT).

    trace = start_request(tracer, forwarded, model)   # SERVER span, child of the caller's W3C traceparent
    trace.waited(seconds, cold=...)                   # a `queue` or `cold_start_wait` span, when it waited
    call = start_call(trace, deployment, replica)     # CLIENT span around one runner call (retries: one each)
    metadata = with_context(metadata, call)           # the runner (and the model) get that span as traceparent
    runner_phases(trace, call, trailers)              # the runner's load/preprocess/predict/postprocess
    finish(call, code); finish(trace.span, code)      # status from the gRPC code the caller saw

An async request (async_predict) is traced when its AsyncPredict call is: the job keeps that span's
traceparent, and the worker that runs it makes

    kingpost.router/AsyncJob  (CONSUMER, under AsyncPredict) ├── queue  ├── kingpost.runner/Predict …  └── webhook

(`JobTrace`; its spans carry the async request's id, the one the model and the webhook see).

Every span carries the request's id (`kingpost.request_id`, the X-Baseten-Request-Id its caller sees).
The model's environment holds no OpenTelemetry, so the runner makes no spans of its own: it sends its
phases back (kingpost.trace_phases) and they become children of the runner call here. `load` shows
only under a request that waited for that replica's cold start. Nothing here runs when tracing is
off: the router's tracer is None and it skips every call.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from kingpost import trace_phases
from kingpost_router.routes import Deployment, Replica

_W3C = TraceContextTextMapPropagator()
# W3C trace flags (two hex digits) with the sampled bit set.
_SAMPLED_FLAGS = frozenset(f"{flags:02x}" for flags in range(256) if flags & 1)
_TRACE_KEYS = ("traceparent", "tracestate")
REQUEST_ID_KEY = "x-baseten-request-id"
REQUEST_ID_ATTRIBUTE = "kingpost.request_id"


class RequestTrace:
    """One request's server span, its id, and when it began waiting for a cold start (wall ns)."""

    __slots__ = ("tracer", "span", "request_id", "cold_from_ns", "cold_span")

    def __init__(self, tracer: Tracer, span: Span, request_id: str) -> None:
        self.tracer = tracer
        self.span = span
        self.request_id = request_id
        self.cold_from_ns = 0
        self.cold_span: Span | None = None

    def waited(self, seconds: float, *, cold: bool) -> None:
        end = time.time_ns()
        start = end - int(seconds * 1e9)
        span = self.tracer.start_span("cold_start_wait" if cold else "queue",
                                      context=trace.set_span_in_context(self.span), start_time=start,
                                      attributes={REQUEST_ID_ATTRIBUTE: self.request_id})
        span.end(end)
        if cold:
            self.cold_from_ns, self.cold_span = start, span


def start_request(tracer: Tracer, metadata: Sequence[tuple[str, str]], model: str, *,
                  root_ratio: float = 1.0, rng: Callable[[], float] = random.random,
                  method: str = "Predict") -> RequestTrace | None:
    """The request's trace, or None when it is not traced: then nothing more is made, and the caller's
    own `traceparent` (if any) goes on to the model as it came. The decision costs no OpenTelemetry
    work: a caller's traceparent decides by its sampled flag, and `root_ratio` of the requests
    without one are traced (the SDK's sampler, OTEL_TRACES_SAMPLER, may still drop what this keeps)."""
    traceparent = next((value for key, value in metadata if key == "traceparent"), None)
    if traceparent is None:
        if root_ratio < 1.0 and rng() >= root_ratio:
            return None
    elif traceparent[-2:] not in _SAMPLED_FLAGS:  # (a malformed one is left to the propagator: a new trace)
        if len(traceparent) == 55:
            return None
    parent = _W3C.extract({key: value for key, value in metadata if key in _TRACE_KEYS})
    request_id = next((value for key, value in metadata if key == REQUEST_ID_KEY), "")
    span = tracer.start_span(f"kingpost.router/{method}", context=parent, kind=SpanKind.SERVER, attributes={
        "rpc.system": "grpc", "rpc.service": "kingpost.v1.InferenceService", "rpc.method": method,
        "kingpost.model": model, REQUEST_ID_ATTRIBUTE: request_id})
    if not span.is_recording():
        return None
    return RequestTrace(tracer, span, request_id)


def start_call(request: RequestTrace, deployment: Deployment, replica: Replica) -> Span:
    request.span.set_attribute("kingpost.deployment_id", deployment.deployment_id)
    return request.tracer.start_span(
        "kingpost.runner/Predict", context=trace.set_span_in_context(request.span), kind=SpanKind.CLIENT,
        attributes={"rpc.system": "grpc", "rpc.service": "kingpost.v1.RunnerService", "rpc.method": "Predict",
                    "server.address": replica.address, "kingpost.deployment_id": deployment.deployment_id,
                    "kingpost.replica_id": replica.replica_id, REQUEST_ID_ATTRIBUTE: request.request_id})


def with_context(metadata: list[tuple[str, str]], span: Span) -> list[tuple[str, str]]:
    """`metadata` with the caller's trace headers replaced by `span`'s."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=trace.set_span_in_context(span))
    return [(k, v) for k, v in metadata if k not in _TRACE_KEYS] + list(carrier.items())


def runner_phases(request: RequestTrace, call: Span, trailers: Sequence[tuple[str, str | bytes]]) -> None:
    """The runner's phases as children of its call; its `load` only after this request began
    waiting for a cold start (the load it waited for), as a child of the wait."""
    value = next((v for k, v in trailers if k == trace_phases.PHASES_KEY and isinstance(v, str)), "")
    for name, start, end in trace_phases.decode(value):
        parent = call
        if name == "load":
            if request.cold_span is None or end < request.cold_from_ns:
                continue
            parent = request.cold_span
        request.tracer.start_span(name, context=trace.set_span_in_context(parent), start_time=start,
                                  attributes={REQUEST_ID_ATTRIBUTE: request.request_id}).end(end)


def finish(span: Span, code: str) -> None:
    span.set_attribute("rpc.grpc.status_code", code)
    if code != "OK":
        span.set_status(Status(StatusCode.ERROR, code))
    span.end()


def traceparent(span: Span) -> str:
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent", "")


class JobTrace:
    """An async job's spans, made on first use (`get`): none for a job queued untraced, nor for a
    delivery that only puts the job back to wait for a replica."""

    def __init__(self, tracer: Tracer | None, traceparent: str, request_id: str, deployment_id: str) -> None:
        self._tracer = tracer if traceparent else None
        self._parent = traceparent
        self._request_id = request_id
        self._deployment_id = deployment_id
        self._trace: RequestTrace | None = None

    def get(self, *, queued_seconds: float = 0.0) -> RequestTrace | None:
        """The job's span (its `queue` child covering `queued_seconds` up to now, on the first call)."""
        if self._trace is None and self._tracer is not None:
            span = self._tracer.start_span(
                "kingpost.router/AsyncJob", context=_W3C.extract({"traceparent": self._parent}),
                kind=SpanKind.CONSUMER, attributes={"kingpost.deployment_id": self._deployment_id,
                                                    REQUEST_ID_ATTRIBUTE: self._request_id})
            self._trace = RequestTrace(self._tracer, span, self._request_id)
            if queued_seconds > 0:
                self._trace.waited(queued_seconds, cold=False)
        return self._trace

    def webhook(self, url: str) -> Span | None:
        """A CLIENT span around a webhook's delivery, all its tries (the URL without its query)."""
        job = self.get()
        if job is None:
            return None
        return job.tracer.start_span(
            "webhook", context=trace.set_span_in_context(job.span), kind=SpanKind.CLIENT,
            attributes={"url.full": url.split("?", 1)[0], REQUEST_ID_ATTRIBUTE: self._request_id})

    def end(self, status: str) -> None:
        if self._trace is not None:
            self._trace.span.set_attribute("kingpost.async_status", status)
            self._trace.span.end()


def finish_webhook(span: Span | None, delivered: bool, why: str) -> None:
    if span is not None:
        if not delivered:
            span.set_status(Status(StatusCode.ERROR, why))
        span.set_attribute("kingpost.webhook_delivered", delivered)
        span.end()

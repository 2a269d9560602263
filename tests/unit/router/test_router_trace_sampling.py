"""Which requests the router traces: the caller's sampled flag, else `trace_root_ratio` of the rest."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from kingpost_router import tracing

SAMPLED = ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
NOT_SAMPLED = ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
TRACER = TracerProvider().get_tracer("test")


def test_a_callers_traceparent_decides_and_the_ratio_decides_for_the_rest() -> None:
    def traced(*metadata: tuple[str, str], ratio: float, draw: float) -> bool:
        return tracing.start_request(TRACER, metadata, "m", root_ratio=ratio, rng=lambda: draw) is not None

    assert traced(SAMPLED, ratio=0.0, draw=0.99)
    assert not traced(NOT_SAMPLED, ratio=1.0, draw=0.0)
    assert traced(ratio=0.01, draw=0.005) and not traced(ratio=0.01, draw=0.01)
    assert traced(ratio=1.0, draw=0.999) and not traced(ratio=0.0, draw=0.0)
    request = tracing.start_request(TRACER, (SAMPLED, ("x-baseten-request-id", "req-1")), "m", root_ratio=0.0)
    assert request is not None and request.request_id == "req-1"
    assert request.span.get_span_context().trace_id == 0x4bf92f3577b34da6a3ce929d0e0e4736

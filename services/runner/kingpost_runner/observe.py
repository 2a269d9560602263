"""What the runner adds to a request for observability: its request id in log lines, and its
phases for the router's trace (kingpost.trace_phases), recorded only when the request is traced."""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Sequence

from kingpost import trace_phases

REQUEST_ID_KEY = "x-baseten-request-id"
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("kingpost_request_id", default="")
LOG_FORMAT = "%(asctime)s runner %(levelname)s %(name)s%(request)s: %(message)s"

_time_ns = time.time_ns


class RequestIdFilter(logging.Filter):
    """Adds `request` to each record: " [request_id]" inside a request (its task and the threads it
    starts: anyio copies the context), else ""."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        record.request = f" [{request_id}]" if request_id else ""
        return True


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RequestIdFilter())


class Phases:
    """One traced request's phases, in wall-clock nanoseconds."""

    __slots__ = ("recorded", "_open")

    # The replica's load(), once it has loaded (set by the server).
    load: tuple[int, int] | None = None

    def __init__(self) -> None:
        self.recorded: list[trace_phases.Phase] = []
        self._open: dict[str, int] = {}

    def start(self, name: str) -> None:
        self._open[name] = _time_ns()

    def end(self, name: str) -> None:
        started = self._open.pop(name, None)
        if started is not None:
            self.recorded.append((name, started, _time_ns()))

    def trailer(self) -> tuple[str, str]:
        load = [("load", *Phases.load)] if Phases.load is not None else []
        return trace_phases.PHASES_KEY, trace_phases.encode(load + self.recorded)


def request_context(metadata: Sequence[tuple[str, str | bytes]]) -> Phases | None:
    """Set this request's id for log lines; its Phases when it carries a sampled traceparent
    (`00-<trace>-<span>-<flags>`, bit 0 of flags), else None."""
    traced = False
    for key, value in metadata:
        if key == REQUEST_ID_KEY and isinstance(value, str):
            REQUEST_ID.set(value)
        elif key == "traceparent" and isinstance(value, str):
            traced = len(value) == 55 and value[-2:] in _SAMPLED_FLAGS
    return Phases() if traced else None


# Flags with the sampled bit set (W3C trace context: two hex digits).
_SAMPLED_FLAGS = frozenset(f"{flags:02x}" for flags in range(256) if flags & 1)

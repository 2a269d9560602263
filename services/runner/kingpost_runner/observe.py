"""What the runner adds to a request for observability: its request id in log lines (text, or JSON
lines with KINGPOST_LOG_FORMAT=json, as the services write them: kingpost.log_format), its phases for
the router's trace (kingpost.trace_phases), recorded only when the request is traced, and the line of
a request the deployment's request logging samples (request_log.py)."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

from kingpost import trace_phases
from kingpost.log_format import JsonFormatter

from kingpost_runner import request_log

REQUEST_ID_KEY = "x-baseten-request-id"
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("kingpost_request_id", default="")
LOG_FORMAT = "%(asctime)s runner %(levelname)s %(name)s%(request)s: %(message)s"

_time_ns = time.time_ns


class RequestIdFilter(logging.Filter):
    """Adds `request` to each record: " [request_id]" inside a request (its task and the threads it
    starts: anyio copies the context), else "" (and `request_id`, for JSON lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        record.request = f" [{request_id}]" if request_id else ""
        record.request_id = request_id
        return True


def configure_logging(level: str, log_format: str = "text") -> None:
    """The runner's own lines (and the model's `logging` calls) on stderr: text, or one JSON object
    a line (`log_format` "json"); a model's print() lines stay as it wrote them."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RequestIdFilter())
        if log_format == "json":
            handler.setFormatter(JsonFormatter("runner"))
    # Opt-in request lines are written whatever the log level.
    REQUEST_LINES.setLevel(logging.INFO)


REQUEST_LINES = logging.getLogger("kingpost_runner.request_log")


class _Reply(Protocol):
    content_type: str
    data: bytes


class _Context(Protocol):
    def invocation_metadata(self) -> Any: ...
    def trailing_metadata(self) -> Any: ...
    def details(self) -> Any: ...


class RequestLog:
    """A deployment's request logging: `wrap` passes a sampled request's replies through and writes
    its line when they end (request_log.py says what it holds)."""

    def __init__(self, policy: request_log.Policy, rand: Callable[[], float] = random.random) -> None:
        self.policy = policy
        self._random = rand

    def wrap(self, path: str, content_type: str, body: bytes, context: _Context,
             replies: AsyncIterator[Any]) -> AsyncIterator[Any]:
        if not request_log.sampled(self.policy, self._random):
            return replies
        return self._logged(path, request_log.shown(body, content_type, self.policy.max_bytes), context,
                            replies)

    async def _logged(self, path: str, shown_input: dict[str, Any], context: _Context,
                      replies: AsyncIterator[Any]) -> AsyncIterator[Any]:
        started = time.perf_counter()
        capture = request_log.Capture(self.policy.max_bytes)
        content_type = ""
        status, error = 200, ""
        try:
            async with contextlib.aclosing(replies) as stream:  # type: ignore[type-var]
                async for reply in stream:
                    content_type = content_type or reply.content_type
                    capture.add(reply.data)
                    yield reply
        except BaseException:
            status, error = _failure(context)
            raise
        finally:
            request_id = next((v for k, v in context.invocation_metadata() or ()
                               if k == REQUEST_ID_KEY and isinstance(v, str)), "")
            line = request_log.entry(request_id, path, status, time.perf_counter() - started, shown_input,
                                     capture.shown(content_type) if not error else None, error)
            token = REQUEST_ID.set(request_id)
            REQUEST_LINES.info("%s", json.dumps(line, ensure_ascii=False))
            REQUEST_ID.reset(token)


def _failure(context: _Context) -> tuple[int, str]:
    """The HTTP status and message of a request that ended without its whole answer: what the
    handler aborted with, or 499 when the caller went away."""
    status = next((v for k, v in context.trailing_metadata() or () if k == "x-http-status"), "")
    if not status:
        return 499, "the caller went away before the answer ended"
    return int(status), str(context.details() or "")


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

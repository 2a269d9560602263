"""Request/response logging, opt-in per deployment (its autoscaling settings' kingpost extensions
`request_logging_sample_rate` and `request_logging_max_bytes`): which requests are logged, and what
of their bodies the line shows.

The agent passes the deployment's settings to the runner at start (KINGPOST_REQUEST_LOG_SAMPLE_RATE,
KINGPOST_REQUEST_LOG_MAX_BYTES; runner_env.py), so a change applies to the replicas started after it.
A sampled request gives one line (observe.RequestLog writes it), e.g.

    {"request_id": "0b9c…", "path": "predict", "status": 200, "duration_ms": 12.5,
     "input": {"bytes": 17, "content_type": "application/json", "text": "{\"prompt\": \"hi\"}"},
     "output": {"bytes": 70000, "content_type": "application/json", "text": "[1, 2, …", "cut": true}}

A body that is text (JSON, text/*, msgpack excepted) and valid UTF-8 up to the cut shows as `text`;
any other shows as `base64` of its first `max_bytes`. `bytes` is the whole body's size; `cut` is
there when the body was longer than `max_bytes`. Pure: the random source is passed in.
"""

from __future__ import annotations

import base64
import codecs
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

SAMPLE_RATE_ENV = "KINGPOST_REQUEST_LOG_SAMPLE_RATE"
MAX_BYTES_ENV = "KINGPOST_REQUEST_LOG_MAX_BYTES"
DEFAULT_MAX_BYTES = 1024


@dataclass(frozen=True)
class Policy:
    sample_rate: float
    max_bytes: int = DEFAULT_MAX_BYTES


def from_env(env: Mapping[str, str]) -> Policy | None:
    """The runner's request logging, None when off; ValueError naming the variable that is wrong."""
    raw_rate = env.get(SAMPLE_RATE_ENV, "").strip()
    if not raw_rate:
        return None
    try:
        rate = float(raw_rate)
    except ValueError:
        rate = -1.0
    if not 0 <= rate <= 1:
        raise ValueError(f"{SAMPLE_RATE_ENV} = {raw_rate!r}: must be a number from 0 to 1")
    raw_max = env.get(MAX_BYTES_ENV, "").strip() or str(DEFAULT_MAX_BYTES)
    try:
        max_bytes = int(raw_max)
    except ValueError:
        max_bytes = 0
    if max_bytes < 1:
        raise ValueError(f"{MAX_BYTES_ENV} = {raw_max!r}: must be a whole number of bytes, at least 1")
    return Policy(rate, max_bytes) if rate > 0 else None


def sampled(policy: Policy | None, random: Callable[[], float]) -> bool:
    """Whether this request is logged: `random()` (uniform in [0, 1)) below the sample rate."""
    return policy is not None and random() < policy.sample_rate


_TEXT_TYPES = ("application/json", "application/x-ndjson", "application/xml", "application/yaml",
               "application/javascript", "application/x-www-form-urlencoded")


def is_text(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind.startswith("text/") or kind in _TEXT_TYPES or kind.endswith(("+json", "+xml"))


def shown(body: bytes, content_type: str, max_bytes: int, total: int | None = None) -> dict[str, Any]:
    """What a line shows of `body` (at most `max_bytes` of it; `total`: the whole size when `body`
    is already only its start)."""
    size = len(body) if total is None else total
    head = body[:max_bytes]
    out: dict[str, Any] = {"bytes": size, "content_type": content_type}
    text = _utf8_prefix(head) if is_text(content_type) else None
    if text is not None:
        out["text"] = text
    else:
        out["base64"] = base64.b64encode(head).decode("ascii")
    if size > len(head):
        out["cut"] = True
    return out


def _utf8_prefix(data: bytes) -> str | None:
    """`data` as UTF-8, less a character the cut split at its end; None when it is not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        return decoder.decode(data, final=False)
    except UnicodeDecodeError:
        return None


class Capture:
    """The start of a streamed body (its first `max_bytes`) and its whole size."""

    __slots__ = ("max_bytes", "parts", "kept", "size")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.parts: list[bytes] = []
        self.kept = 0
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.kept < self.max_bytes:
            part = chunk[:self.max_bytes - self.kept]
            self.parts.append(part)
            self.kept += len(part)

    def shown(self, content_type: str) -> dict[str, Any]:
        return shown(b"".join(self.parts), content_type, self.max_bytes, total=self.size)


def entry(request_id: str, path: str, status: int, duration_s: float, request: dict[str, Any],
          response: dict[str, Any] | None, error: str = "") -> dict[str, Any]:
    """One logged request: its id, which call (`predict`, an OpenAI-style path, ...), HTTP status,
    duration, and what `shown` made of its input and output (None: no output, it failed)."""
    line: dict[str, Any] = {"request_id": request_id, "path": path, "status": status,
                            "duration_ms": round(duration_s * 1000, 3), "input": request}
    if response is not None:
        line["output"] = response
    if error:
        line["error"] = error
    return line

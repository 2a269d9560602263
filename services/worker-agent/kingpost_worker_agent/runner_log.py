"""Reading a runner's output: the level of a line, and the message a failed start reports."""

from __future__ import annotations

import re
from collections.abc import Iterable

TAIL_LINES = 30
MAX_LINE_CHARS = 2000

_LEVEL = re.compile(r"\b(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)\b")


def level_of(text: str, *, stderr: bool) -> str:
    """The log level a line names (the first one), else INFO for stdout and ERROR for stderr."""
    match = _LEVEL.search(text[:200])
    if match:
        level = match.group(1)
        return {"WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level)
    return "ERROR" if stderr else "INFO"


def clip(text: str) -> str:
    return text if len(text) <= MAX_LINE_CHARS else text[:MAX_LINE_CHARS] + "…"


def failure_message(reason: str, tail: Iterable[str]) -> str:
    lines = list(tail)
    if not lines:
        return f"{reason} (it wrote nothing)"
    return f"{reason}; last {len(lines)} lines of its log:\n" + "\n".join(lines)

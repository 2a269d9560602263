"""Reading a runner's output: the level of each line, and the message an ended runner reports."""

from __future__ import annotations

import re
from collections.abc import Iterable

TAIL_LINES = 30
# A line shipped to the log stream is cut here (a request logging line, bodies at their 16 KiB cap,
# base64, fits), and in a failure message's tail at TAIL_LINE_CHARS.
MAX_LINE_CHARS = 48 * 1024
TAIL_LINE_CHARS = 2000

_LEVEL = re.compile(r"\b(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)\b")
_TRACEBACK = "Traceback (most recent call last):"


class LineLevels:
    """The log level of each line of one runner's output, in order.

    stdout and stderr arrive together (one log file), so a line's level is the one it names (the
    first), else ERROR inside a Python traceback — from its header through the exception's own line —
    else INFO.
    """

    def __init__(self) -> None:
        self._in_traceback = False

    def level_of(self, text: str) -> str:
        if text.startswith(_TRACEBACK):
            self._in_traceback = True
            return "ERROR"
        if self._in_traceback:
            # Frames are indented; the first line that is not ends the traceback ("ValueError: boom").
            self._in_traceback = text.startswith((" ", "\t"))
            return "ERROR"
        match = _LEVEL.search(text[:200])
        if match:
            level = match.group(1)
            return {"WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level)
        return "INFO"


def clip(text: str, limit: int = MAX_LINE_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def failure_message(reason: str, tail: Iterable[str]) -> str:
    lines = list(tail)
    if not lines:
        return f"{reason} (it wrote nothing)"
    return f"{reason}; last {len(lines)} lines of its log:\n" + "\n".join(lines)

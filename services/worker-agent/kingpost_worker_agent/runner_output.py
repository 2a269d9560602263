"""Following a runner's output: the runner writes stdout and stderr straight into its replica's log
file (so it needs no reader alive to write, and outlives the agent), and the agent reads the lines
that file gains, from an offset it keeps, and publishes them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from pathlib import Path
from typing import BinaryIO

from google.protobuf.timestamp_pb2 import Timestamp

from kingpost.bus import Publisher, subjects
from kingpost.v1 import events_pb2

from kingpost_worker_agent import runner_log

log = logging.getLogger(__name__)

# Lines the runner logs when its port opens and when its model is ready: ask Ready at once.
READY_HINTS = ("runner listening on", "model ready in")

# A line longer than this is cut there (the rest follows as the next line): one runaway write must not
# hold everything behind it.
MAX_LINE_BYTES = 1 << 20
READ_BYTES = 1 << 20


class OutputTail:
    """The complete lines a file gains, each once, with the offset just past each (where a later
    reader resumes once that line is dealt with). `offset` is just past the last line returned."""

    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = path
        self.offset = offset
        self._file: BinaryIO | None = None
        self._partial = b""

    def read_lines(self, *, final: bool = False) -> list[tuple[bytes, int]]:
        """Lines written since the last call, without their newline, each with the offset past it.
        `final`: the writer is gone, so a last line without a newline is complete too."""
        if self._file is None:
            try:
                self._file = open(self.path, "rb")  # noqa: SIM115 - kept open while the runner writes
            except FileNotFoundError:
                return []
            self._file.seek(self.offset)
        if os.fstat(self._file.fileno()).st_size < self.offset + len(self._partial):  # truncated: start over
            self._file.seek(0)
            self.offset, self._partial = 0, b""
        lines: list[tuple[bytes, int]] = []
        while chunk := self._file.read(READ_BYTES):
            self._take(self._partial + chunk, lines)
        if final and self._partial:
            self.offset += len(self._partial)
            lines.append((self._partial, self.offset))
            self._partial = b""
        return lines

    def _take(self, data: bytes, lines: list[tuple[bytes, int]]) -> None:
        *complete, self._partial = data.split(b"\n")
        for line in complete:
            self.offset += len(line) + 1
            lines.append((line.removesuffix(b"\r"), self.offset))
        while len(self._partial) >= MAX_LINE_BYTES:
            self.offset += MAX_LINE_BYTES
            lines.append((self._partial[:MAX_LINE_BYTES], self.offset))
            self._partial = self._partial[MAX_LINE_BYTES:]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def end_of(path: Path) -> int:
    """Where new output to `path` will start (its size; 0 when it does not exist)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class RunnerOutput:
    """One replica's output, across its runners: followed from its log file into NATS LogLines, with
    the last lines kept for the message of a runner that ends, and `hint` set by the lines that say a
    runner listens or has loaded its model. `shipped`: how far the lines have gone (resume there)."""

    def __init__(self, path: Path, offset: int, publisher: Publisher, deployment_id: str, replica_id: str) -> None:
        self._file = OutputTail(path, offset)
        self._publisher = publisher
        self._subject = subjects.replica_log_subject(deployment_id, replica_id)
        self._deployment_id, self._replica_id = deployment_id, replica_id
        self._levels = runner_log.LineLevels()
        self._lock = asyncio.Lock()
        self.path = path
        self.shipped = offset
        self.tail: deque[str] = deque(maxlen=runner_log.TAIL_LINES)
        self.hint = asyncio.Event()

    async def drain(self, *, final: bool = False) -> None:
        """Ship every line written since the last call (`final`: the runner has ended)."""
        async with self._lock:
            for raw, end in self._file.read_lines(final=final):
                text = runner_log.clip(raw.decode("utf-8", errors="replace"))
                self.tail.append(runner_log.clip(text, runner_log.TAIL_LINE_CHARS))
                if any(h in text for h in READY_HINTS):
                    self.hint.set()
                line = events_pb2.LogLine(at=now_ts(), source="replica", deployment_id=self._deployment_id,
                                          replica_id=self._replica_id, level=self._levels.level_of(text), text=text)
                try:
                    await self._publisher.publish_fast(self._subject, line)
                except Exception:  # a NATS hiccup must never hold the output back
                    log.debug("dropping a log line of %s", self._replica_id, exc_info=True)
                self.shipped = end

    def note(self, text: str) -> None:
        """A line of the agent's own in the replica's log; it reaches NATS with the runner's."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as f:
            f.write(text.encode() + b"\n")

    def close(self) -> None:
        self._file.close()


def now_ts() -> Timestamp:
    ts = Timestamp()
    ts.GetCurrentTime()
    return ts

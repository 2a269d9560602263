"""What survives an agent: one small JSON file per replica under `<work_dir>/replicas/`, so the next
agent on this work dir can adopt the runners this one leaves running (as containerd keeps containers
across kubelet restarts).

A record is written (atomically: a temporary file renamed over it) when the runner starts, when it is
first ready, when it is restarted, and now and then as the agent ships its output (`log_offset`: how
far into the replica's log file the lines have reached NATS). It is removed once the replica is
stopped or has failed: a record is a replica this node still owes the scheduler.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from kingpost.errors import Unavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplicaRecord:
    replica_id: str
    deployment_id: str
    model_id: str = ""
    artifact_digest: str = ""
    environment: str = ""
    # The runner now: its pid and start time (runner_process.start_ticks) name one process.
    pid: int = 0
    start_ticks: int = 0
    port: int = 0
    # Its HTTP data plane's port (0: none, or a record from an agent before there was one).
    http_port: int = 0
    # It was READY once: an exit from now on restarts it, never fails it.
    ready_once: bool = False
    # Since when (wall clock) the current runner has been ready; 0 when it is not.
    ready_since: float = 0.0
    restarts: int = 0
    streak: int = 0
    log_offset: int = 0
    # Its runners' own user (None: the agent's), memory cgroup ("" for none) and resources.memory.
    uid: int | None = None
    cgroup: str = ""
    memory: str = ""
    # The GPUs the scheduler gave it (indices on this node).
    gpus: list[int] = dataclasses.field(default_factory=list)
    # Its request logging: [sample rate, max bytes] (its runners' environment, runner_env.py).
    request_logging: list[float] = dataclasses.field(default_factory=lambda: [0.0, 0])

    def request_logging_settings(self) -> tuple[float, int]:
        rate, max_bytes = self.request_logging
        return float(rate), int(max_bytes)


class ReplicaRecords:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, replica_id: str) -> Path:
        return self.directory / f"{replica_id}.json"

    def write(self, record: ReplicaRecord) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(record.replica_id)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(json.dumps(dataclasses.asdict(record)))
        os.replace(temporary, path)

    def remove(self, replica_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(replica_id).unlink()

    def read_all(self) -> list[ReplicaRecord]:
        """Every record; one that cannot be read is logged, removed, and skipped."""
        fields = {f.name for f in dataclasses.fields(ReplicaRecord)}
        records = []
        for path in sorted(self.directory.glob("*.json")) if self.directory.is_dir() else ():
            try:
                data = json.loads(path.read_text())
                record = ReplicaRecord(**{k: v for k, v in data.items() if k in fields})
            except (OSError, ValueError, TypeError) as e:
                log.warning("ignoring the unreadable replica record %s: %s", path, e)
                path.unlink(missing_ok=True)
                continue
            if record.replica_id != path.stem:
                log.warning("ignoring the replica record %s: it names replica %r", path, record.replica_id)
                path.unlink(missing_ok=True)
                continue
            records.append(record)
        return records


def lock_work_dir(work_dir: Path) -> IO[str]:
    """One agent per work dir (two would adopt the same runners): a lock held while the file is open."""
    work_dir.mkdir(parents=True, exist_ok=True)
    lock = open(work_dir / "agent.lock", "w")  # noqa: SIM115 - the caller holds it open
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise Unavailable(f"another worker agent is running with work dir {work_dir}") from None
    return lock

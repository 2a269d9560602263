"""What the agent knows of one replica: the spec the scheduler sent, and where its life stands."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from kingpost.v1 import events_pb2

from kingpost_worker_agent.replica_events import STARTING
from kingpost_worker_agent.replica_records import ReplicaRecord
from kingpost_worker_agent.restart_backoff import Backoff
from kingpost_worker_agent.runner_output import RunnerOutput
from kingpost_worker_agent.runner_process import RunnerProcess


@dataclass(frozen=True)
class ReplicaSpec:
    replica_id: str
    deployment_id: str
    model_id: str = ""
    artifact_digest: str = ""
    environment: str = ""
    # The node's GPUs it may use (CUDA_VISIBLE_DEVICES); none: it sees no GPU.
    gpus: tuple[int, ...] = ()
    # (name, value) of its secrets; not in repr, so no log line can show a value.
    secrets: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    # The deployment's request logging: the share of requests its runner logs, and the cap on each body.
    request_logging: tuple[float, int] = (0.0, 0)


@dataclass
class Replica:
    spec: ReplicaSpec
    output: RunnerOutput
    state: int = STARTING
    phase: str = "prepare"  # prepare → spawn → running → (backoff → spawn → running)* → done
    port: int = 0
    http_port: int = 0  # the runner's HTTP data plane (0: none)
    # When the runner's port first accepted a connection (monotonic): the process phase ends, load begins.
    port_open_at: float = 0.0
    address: str = ""
    http_address: str = ""  # where Envoy reaches its HTTP data plane; "" when it serves none (Triton)
    runner: RunnerProcess | None = None
    stopping: bool = False
    task: asyncio.Task[None] | None = None
    follow_task: asyncio.Task[None] | None = None
    stop_task: asyncio.Task[None] | None = None
    # The restart story (see events.proto ReplicaEvent), times on the supervisor's clock.
    ready_once: bool = False
    ready_since: float = 0.0
    backoff: Backoff = field(default_factory=Backoff)
    last_exit: events_pb2.RunnerExit | None = None
    next_restart_at: float = 0.0
    # When the record was last written (monotonic), and the log offset it holds.
    saved_at: float = 0.0
    saved_offset: int = -1
    # Containment (containment.py): its runners' user (None: the agent's), memory cgroup (None: none),
    # resources.memory as written, and the cgroup's OOM kills when the current runner started.
    uid: int | None = None
    cgroup: Path | None = None
    memory: str = ""
    oom_kills: int = 0

    @property
    def pid(self) -> int:
        return self.runner.pid if self.runner is not None and self.runner.alive else 0

    def record(self) -> ReplicaRecord:
        s, runner = self.spec, self.runner
        return ReplicaRecord(
            s.replica_id, s.deployment_id, s.model_id, s.artifact_digest, s.environment,
            pid=runner.pid if runner else 0, start_ticks=runner.start_ticks if runner else 0, port=self.port,
            http_port=self.http_port,
            ready_once=self.ready_once, ready_since=self.ready_since, restarts=self.backoff.restarts,
            streak=self.backoff.streak, log_offset=self.output.shipped, uid=self.uid,
            cgroup=str(self.cgroup or ""), memory=self.memory, gpus=list(s.gpus),
            request_logging=list(s.request_logging),
        )

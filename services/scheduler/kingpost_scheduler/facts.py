"""Plain data the scheduler's pure core decides over: nodes and replicas as the database knows them.

Replica states, in the order a replica lives them:

    PENDING   placed on a node; StartReplica not yet acknowledged
    STARTING  the agent acknowledged; the runner is loading the model
    READY       the runner answers (address known)
    RESTARTING  its runner ended after it had been READY; its node starts it again (not routed)
    FAILED      the runner could not load the model at its first start
    STOPPING    we decided to stop it; StopReplica not yet acknowledged

A replica row is deleted once it is stopped or known to be gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

PENDING = "PENDING"
STARTING = "STARTING"
READY = "READY"
RESTARTING = "RESTARTING"
FAILED = "FAILED"
STOPPING = "STOPPING"

REPLICA_STATES = (PENDING, STARTING, READY, RESTARTING, FAILED, STOPPING)


@dataclass(frozen=True)
class Node:
    id: str
    address: str
    last_seen: datetime
    # What its agent reported (0: not reported, no limit) and what it is called.
    cpu_count: int = 0
    memory_bytes: int = 0
    gpus: tuple[str, ...] = ()  # each GPU's name, by index (its CUDA_VISIBLE_DEVICES number)
    name: str = ""
    # Draining: its replicas move elsewhere and it takes no new one (`kingpost nodes drain`).
    draining: bool = False


@dataclass(frozen=True)
class Replica:
    id: str
    deployment_id: str
    node_id: str
    state: str
    # When `state` last changed: a STARTING replica has been loading since then.
    since: datetime
    address: str = ""
    http_address: str = ""  # its runner's HTTP data plane ("" when it serves none)
    # Why it FAILED, or how its runner last ended and its last lines (kept once READY again).
    message: str = ""
    gpus: tuple[int, ...] = ()  # the indices of its node's GPUs it holds
    # How many times its node restarted its runner.
    restarts: int = 0
    # RESTARTING and its node holds the next start back: the runner keeps ending soon after it starts.
    crash_looping: bool = False

"""The worker agent's settings: where it keeps artifacts and logs, and how it reaches the builder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from pydantic import Field

from kingpost.artifact_bucket import BUCKET_PATTERN, DEFAULT_BUCKET
from kingpost.settings import ServiceSettings, default_home


class AgentSettings(ServiceSettings):
    # BuildService, for FetchArtifact.
    builder_address: str = "127.0.0.1:50052"
    # Where artifacts come from: "file" (the builder's FetchArtifact at builder_address, the embedded
    # default) or "nats" (the JetStream object store `artifact_bucket` at nats_url, which the builders
    # write with artifact_store = "nats"; no builder needs to be up).
    artifact_store: Literal["file", "nats"] = "file"
    artifact_bucket: str = Field(DEFAULT_BUCKET, pattern=BUCKET_PATTERN)
    # Artifacts (cached per digest), per-replica logs and records (what the next agent adopts) and the
    # node id live here; one agent per work dir.
    work_dir: Path = Field(default_factory=lambda: default_home() / "agent")
    # The host other machines reach this node's runners and AgentService on; loopback in the embedded mode.
    advertise_host: str = "127.0.0.1"
    # The Python the node's base environment (Trusses without requirements) is made from.
    runner_python: str = sys.executable
    heartbeat_interval_seconds: float = Field(2.0, gt=0)
    # Pretend GPUs for tests and dev machines, e.g. "H100:2" or "A10G:1,T4:1" (`kingpost agent --gpus`);
    # empty = ask NVML (nvidia-ml-py), else nvidia-smi.
    fake_gpus: str = ""
    # What the node is called (unique among live nodes; empty: the host name) and its labels.
    node_name: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    # How long a runner has after SIGTERM before it gets SIGKILL.
    stop_grace_seconds: float = Field(10.0, ge=0)
    # Pre-started runners (imports done, waiting for a Truss) for Trusses without requirements; 0 = none.
    standby_runners: int = Field(1, ge=0, le=8)
    # Containment (docs/isolation.md). "auto": where the agent runs as root, each replica runs as a user
    # of its own when an unprivileged user can run runner_python (else as root, and the agent says why);
    # "required": refuse to start otherwise; "off": runners run as the agent's user.
    runner_users: Literal["auto", "required", "off"] = "auto"
    # Replicas' uids are runner_ids_start + [0, runner_ids_count), the groups that may read their
    # files the next runner_ids_count ids. No login user may have these.
    runner_ids_start: int = Field(70000, ge=1000, le=2**31 - 2 * 1_000_000)
    runner_ids_count: int = Field(10000, ge=16, le=1_000_000)
    # resources.memory: "auto" = a cgroup per replica (v2, else v1) where the agent can make one,
    # else RLIMIT_DATA; "rlimit" = RLIMIT_DATA always; "off" = not enforced.
    memory_limits: Literal["auto", "rlimit", "off"] = "auto"

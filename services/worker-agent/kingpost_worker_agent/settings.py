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
    # Pretend GPUs for tests and dev machines, e.g. "H100:2" or "A10G:1,T4:1"; empty = ask nvidia-smi.
    fake_gpus: str = ""
    # How long a runner has after SIGTERM before it gets SIGKILL.
    stop_grace_seconds: float = Field(10.0, ge=0)
    # Pre-started runners (imports done, waiting for a Truss) for Trusses without requirements; 0 = none.
    standby_runners: int = Field(1, ge=0, le=8)

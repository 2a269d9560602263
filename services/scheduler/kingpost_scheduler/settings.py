"""The scheduler's settings: `kingpost scheduler --config FILE`, overridden by KINGPOST_* variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from kingpost.artifact_bucket import BUCKET_PATTERN, DEFAULT_BUCKET
from kingpost.settings import ServiceSettings
from kingpost_scheduler import metrics_targets


class SchedulerSettings(ServiceSettings):
    # SQLAlchemy async URL; empty means SQLite under home: sqlite+aiosqlite:///{home}/state/kingpost.db.
    database_url: str = ""
    # The builder's BuildService, asked for a build's state when a deployment is created.
    builder_address: str = "127.0.0.1:50052"
    # A node whose last heartbeat is older than this is gone, and so are its replicas. Last-seen times
    # are kept in memory and stored in batches every third of this.
    node_timeout_seconds: float = Field(15.0, gt=0)
    # A replica still loading after this long is replaced.
    replica_start_timeout_seconds: float = Field(300.0, gt=0)
    # How often the control loop looks at its timers (a node gone quiet, a start timeout, a drain, a
    # canary's stage) and retries agent calls that failed; a reconcile pass runs only when one is due
    # or something changed.
    reconcile_interval_seconds: float = Field(1.0, gt=0)
    # A deployment demoted by a promotion keeps its replicas this long, so in-flight requests finish.
    demoted_drain_seconds: float = Field(10.0, ge=0)
    # The highest max_replica a deployment's autoscaling settings may ask for (Baseten's default 10).
    max_replica_cap: int = Field(10, ge=1)
    # How many times its CPUs and memory a node may promise to replicas (their Trusses'
    # resources.cpu and resources.memory). 1 in a cluster: a node is never promised more than it
    # has. `kingpost up` runs everything on one machine and sets 16 and 4, so a laptop with 4 CPUs
    # still runs a few 1-CPU, 2Gi Trusses side by side. GPUs are never over-committed.
    cpu_overcommit: float = Field(1.0, ge=1.0, le=64.0)
    memory_overcommit: float = Field(1.0, ge=1.0, le=16.0)
    # What an agent that joins (`kingpost agent --join`) is told: the NATS URL it heartbeats on
    # (empty: nats_url, which must then be reachable from the agents' machines), the builder it
    # fetches artifacts from (empty: builder_address), or the JetStream object store to fetch them
    # from instead ("nats", with the builders' artifact_store = "nats").
    join_nats_url: str = ""
    join_builder_address: str = ""
    join_artifact_store: Literal["file", "nats"] = "file"
    join_artifact_bucket: str = Field(DEFAULT_BUCKET, pattern=BUCKET_PATTERN)
    # KINGPOST_ADMIN_KEY: stored (hashed) as the key named "admin" on start; never logged.
    admin_key: SecretStr = SecretStr("")
    # The key secrets are encrypted with (Fernet, base64): KINGPOST_SECRETS_KEY, else the file
    # `secrets_key_file` (empty: {home}/state/secrets.key, made on first use, mode 0600).
    secrets_key: SecretStr = SecretStr("")
    secrets_key_file: str = ""

    def resolved_secrets_key_file(self) -> Path:
        return Path(self.secrets_key_file) if self.secrets_key_file else Path(self.home) / "state" / "secrets.key"

    # The services' /metrics endpoints for GET /v1/metrics/targets, each "service=host:port" or
    # "service=host:port/path" (e.g. "envoy=10.0.0.5:9901/stats/prometheus"); agents announce their own.
    metrics_targets: list[str] = Field(default_factory=list)

    @field_validator("metrics_targets")
    @classmethod
    def _targets_parse(cls, targets: list[str]) -> list[str]:
        for entry in targets:
            metrics_targets.parse(entry)  # ValueError naming the entry
        return targets

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.home}/state/kingpost.db"

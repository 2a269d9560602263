"""The builder's settings: `KINGPOST_*` variables over `kingpost builder --config FILE`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from kingpost.artifact_bucket import BUCKET_PATTERN, DEFAULT_BUCKET
from kingpost.settings import ServiceSettings

from kingpost_builder.archive import DEFAULT_MAX_UPLOAD_BYTES


class BuilderSettings(ServiceSettings):
    # Artifacts and build records; `home`/artifacts when not set.
    artifacts_dir: Path | None = None
    # Largest accepted upload (the gzipped tar), in bytes; larger → 413.
    max_upload_bytes: int = Field(DEFAULT_MAX_UPLOAD_BYTES, gt=0)
    # Run a Truss's build_commands (in the builder, on its source) and system_packages; off: such builds fail.
    allow_build_commands: bool = False
    # The scheduler's gRPC address, whose route table carries the valid API keys.
    scheduler_address: str = ""
    # Where artifacts, build records and refs live: "file" (artifacts_dir, the embedded default) or
    # "nats" (the JetStream object store `artifact_bucket` at nats_url, shared by every builder and
    # node of a cluster; artifacts_dir is then a local cache).
    artifact_store: Literal["file", "nats"] = "file"
    artifact_bucket: str = Field(DEFAULT_BUCKET, pattern=BUCKET_PATTERN)

    @model_validator(mode="after")
    def _default_artifacts_dir(self) -> BuilderSettings:
        if self.artifacts_dir is None:
            object.__setattr__(self, "artifacts_dir", self.home / "artifacts")
        return self

    @property
    def artifacts_path(self) -> Path:
        assert self.artifacts_dir is not None
        return self.artifacts_dir

"""A replica's secrets directory: one file per name, for its runner alone; no value in a repr."""

from __future__ import annotations

import stat
from pathlib import Path

from kingpost_worker_agent import replica_secrets
from kingpost_worker_agent.replica_state import ReplicaSpec


def test_secrets_are_files_only_the_runner_may_read(tmp_path: Path) -> None:
    directory = replica_secrets.write(tmp_path, None, [("hf_token", "s3cr3t"), ("region", "eu")])
    assert directory == tmp_path / "secrets"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert (directory / "hf_token").read_text() == "s3cr3t"
    assert stat.S_IMODE((directory / "hf_token").stat().st_mode) == 0o400
    # A start with other secrets replaces them; one with none (an agent restart) keeps what is there.
    replica_secrets.write(tmp_path, None, [("hf_token", "rotated")])
    assert sorted(p.name for p in directory.iterdir()) == ["hf_token"]
    assert (directory / "hf_token").read_text() == "rotated"
    replica_secrets.write(tmp_path, None, [])
    assert (directory / "hf_token").read_text() == "rotated"


def test_a_replica_spec_never_shows_a_secret() -> None:
    spec = ReplicaSpec("rep_1", "dep_1", secrets=(("hf_token", "s3cr3t"),))
    assert "s3cr3t" not in repr(spec)

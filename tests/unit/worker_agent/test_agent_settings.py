import sys
from pathlib import Path

import pytest

from kingpost.errors import InvalidArgument
from kingpost_worker_agent.settings import AgentSettings


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KINGPOST_HOME", str(tmp_path))
    settings = AgentSettings.load(None)
    assert settings.work_dir == tmp_path / "agent"
    assert settings.runner_python == sys.executable
    assert settings.heartbeat_interval_seconds == 2 and settings.advertise_host == "127.0.0.1"


def test_config_file_and_bad_values(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('fake_gpus = "H100:2"\nheartbeat_interval_seconds = 0\n')
    with pytest.raises(InvalidArgument, match="heartbeat_interval_seconds"):
        AgentSettings.load(config)


def test_artifacts_come_from_the_builder_unless_nats_is_chosen(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KINGPOST_HOME", str(tmp_path))
    assert AgentSettings.load(None).artifact_store == "file"
    monkeypatch.setenv("KINGPOST_ARTIFACT_STORE", "nats")
    settings = AgentSettings.load(None)
    assert (settings.artifact_store, settings.artifact_bucket) == ("nats", "kingpost-artifacts")
    monkeypatch.setenv("KINGPOST_ARTIFACT_STORE", "nfs")
    with pytest.raises(InvalidArgument, match="'artifact_store' = 'nfs': Input should be 'file' or 'nats'"):
        AgentSettings.load(None)

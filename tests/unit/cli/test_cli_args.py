"""What a user sees when a command line is wrong: one `error:` line and a non-zero exit, no traceback."""

from pathlib import Path

import pytest

from kingpost.cli import main
from kingpost.cli.inspect_commands import parse_since


@pytest.fixture(autouse=True)
def empty_home(tmp_path, monkeypatch):
    for var in ("KINGPOST_URL", "KINGPOST_GRPC", "KINGPOST_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KINGPOST_HOME", str(tmp_path / "home"))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def assert_one_error_line(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def test_push_without_a_directory_is_a_usage_error(capsys):
    code, _, err = run(capsys, "push")
    assert code == 2
    assert_one_error_line(err, "Missing argument 'DIR'", "kingpost push --help")


def test_push_of_a_directory_without_config_yaml(capsys, tmp_path: Path):
    (tmp_path / "notatruss").mkdir()
    code, _, err = run(capsys, "push", str(tmp_path / "notatruss"))
    assert code == 1
    assert_one_error_line(err, "has no config.yaml")


def test_push_to_development_takes_no_published_deployments_options(capsys, tmp_path: Path):
    code, _, err = run(capsys, "push", str(tmp_path), "--development", "--deployment-name", "v2")
    assert code == 2
    assert_one_error_line(err, "--deployment-name is for a published deployment; --development replaces "
                               "the development one")
    code, _, err = run(capsys, "push", str(tmp_path), "--watch", "--development")
    assert code == 2
    assert_one_error_line(err, "--development and --watch both make the development deployment")


def test_predict_with_two_targets(capsys):
    code, _, err = run(capsys, "predict", "echo", "--development", "--environment", "staging", "--data", "{}")
    assert code == 2
    assert_one_error_line(err, "--environment and --development", "give one")


def test_predict_with_invalid_json(capsys):
    code, _, err = run(capsys, "predict", "echo", "--data", "{nope")
    assert code == 2
    assert_one_error_line(err, "--data is not valid JSON")


def test_predict_without_input(capsys):
    code, _, err = run(capsys, "predict", "echo")
    assert code == 2
    assert_one_error_line(err, "--data JSON or --file F")


def test_commands_without_a_key_say_how_to_get_one(capsys):
    code, _, err = run(capsys, "models", "list")
    assert code == 1
    assert_one_error_line(err, "no API key", "kingpost up", "KINGPOST_API_KEY")


def test_unknown_command(capsys):
    code, _, err = run(capsys, "deploy")
    assert code == 2
    assert_one_error_line(err, "No such command 'deploy'")


def test_up_rejects_a_port_out_of_range(capsys):
    code, _, err = run(capsys, "up", "--port", "70000")
    assert code == 2
    assert_one_error_line(err, "--port")


def test_help_exits_zero(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("up", "push", "predict", "models", "deployments", "status", "logs", "scheduler"):
        assert command in out


def test_autoscaling_set_without_a_setting_is_a_usage_error(capsys):
    code, _, err = run(capsys, "autoscaling", "set", "my-model")
    assert code == 2
    assert_one_error_line(err, "give at least one setting", "--max-replica")


def test_a_bug_is_still_one_line_that_says_how_to_see_the_traceback(capsys, monkeypatch):
    def broken() -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("kingpost.cli.app.load_config", broken)
    code, _, err = run(capsys, "models", "list")
    assert code == 1
    assert_one_error_line(err, "error: unexpected RuntimeError: boom (KINGPOST_DEBUG=1 shows the traceback)")


NOW = 1_800_000_000.0


@pytest.mark.parametrize("value, expected", [
    ("30s", NOW - 30), ("10m", NOW - 600), ("1.5h", NOW - 5400), ("2d", NOW - 172800), ("0s", NOW),
    ("2027-01-15T08:00:00Z", 1_800_000_000), ("2027-01-15T09:00:00+01:00", 1_800_000_000),
    ("2027-01-15T08:00:00", 1_800_000_000)])
def test_logs_since_takes_a_duration_back_from_now_or_a_time(value, expected):
    assert parse_since(value, NOW) == expected


@pytest.mark.parametrize("value", ["10", "ten minutes", "-5m", "m", "2027-13-01"])
def test_logs_since_refuses_anything_else_naming_it(value):
    with pytest.raises(ValueError, match=f"{value!r} is neither a duration"):
        parse_since(value, NOW)


def test_logs_since_that_is_not_a_time_is_a_usage_error_naming_the_option(capsys):
    code, _, err = run(capsys, "logs", "m", "--since", "yesterday")
    assert code == 2
    assert_one_error_line(err, "--since", "'yesterday'")

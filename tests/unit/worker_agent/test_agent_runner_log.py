from kingpost_worker_agent.runner_log import LineLevels, failure_message


def levels_of(*lines: str) -> list[str]:
    levels = LineLevels()
    return [levels.level_of(line) for line in lines]


def test_a_line_naming_a_level_has_that_level_and_a_plain_print_is_info() -> None:
    assert levels_of("2026-01-01 runner WARNING kingpost: slow", "hello from print", "FATAL: gone",
                     "2026-01-01 runner WARN x") == ["WARNING", "INFO", "CRITICAL", "WARNING"]


def test_a_traceback_is_error_through_the_exceptions_own_line_and_no_further() -> None:
    assert levels_of(
        "2026-01-01 runner ERROR kingpost_runner: Model failed to load; exiting.",
        "Traceback (most recent call last):",
        '  File "/truss/model/model.py", line 4, in load',
        '    raise RuntimeError("the weights are missing")',
        "RuntimeError: the weights are missing",
        "a print after it",
    ) == ["ERROR", "ERROR", "ERROR", "ERROR", "ERROR", "INFO"]


def test_failure_message_carries_the_tail() -> None:
    msg = failure_message("runner exited with code 1", ["Traceback", "ValueError: boom"])
    assert msg.startswith("runner exited with code 1; last 2 lines")
    assert msg.endswith("ValueError: boom")
    assert "wrote nothing" in failure_message("runner exited with code 1", [])

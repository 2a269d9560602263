from kingpost_worker_agent.runner_log import failure_message, level_of


def test_level_comes_from_the_line_else_from_the_stream() -> None:
    assert level_of("2026-01-01 runner WARNING kingpost: slow", stderr=True) == "WARNING"
    assert level_of("Traceback (most recent call last):", stderr=True) == "ERROR"
    assert level_of("hello from print", stderr=False) == "INFO"


def test_failure_message_carries_the_tail() -> None:
    msg = failure_message("runner exited with code 1", ["Traceback", "ValueError: boom"])
    assert msg.startswith("runner exited with code 1; last 2 lines")
    assert msg.endswith("ValueError: boom")
    assert "wrote nothing" in failure_message("runner exited with code 1", [])

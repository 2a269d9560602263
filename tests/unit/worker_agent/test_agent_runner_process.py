"""Naming a runner process by pid and start time, and learning how it ended."""

import asyncio
import signal
import subprocess
import sys

from kingpost_worker_agent.runner_process import (
    RunnerProcess, describe_exit, start_ticks, zombie_returncode,
)


async def test_an_adopted_process_is_watched_until_it_ends_with_its_status_while_a_zombie() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ticks = start_ticks(proc.pid)
        assert ticks is not None and ticks > 0
        assert RunnerProcess.adopt(proc.pid, ticks + 1) is None  # same pid, another start: not our runner
        runner = RunnerProcess.adopt(proc.pid, ticks)
        assert runner is not None and runner.alive
        proc.send_signal(signal.SIGKILL)
        # Not reaped yet (we are its parent and have not waited): the zombie still holds its status.
        assert await asyncio.wait_for(runner.exited, 30) == -signal.SIGKILL
        assert zombie_returncode(proc.pid) == -signal.SIGKILL and start_ticks(proc.pid) is None
    finally:
        proc.kill()
        proc.wait()
    assert RunnerProcess.adopt(proc.pid, ticks) is None


def test_an_exit_is_described_by_code_or_signal_name() -> None:
    assert describe_exit(3) == "runner exited with code 3"
    assert describe_exit(-9) == "runner was killed by signal 9 (SIGKILL)"
    assert "unknown" in describe_exit(None)

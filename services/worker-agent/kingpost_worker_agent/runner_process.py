"""A runner process the agent watches: one it started (its child), or one it adopted from the agent
before it (no longer its child: the agent learns of its end from a pidfd, and of its exit status
only while it is still a zombie).

A pid alone does not name a process (pids are reused), so a record of a runner keeps its start time
too (`/proc/<pid>/stat`, clock ticks since boot): the pair names one process for the machine's uptime.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)


def _stat_fields(pid: int) -> list[str] | None:
    """`/proc/<pid>/stat` from its state field on (field 3 is index 0); None when there is no such pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # pid (comm) state ...: comm may hold spaces and parentheses; split after the last ')'.
    return stat[stat.rfind(")") + 2:].split()


def start_ticks(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot); None when it is gone or a zombie."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22, starttime


def zombie_returncode(pid: int) -> int | None:
    """The exit status of a zombie as Popen's returncode (-N: signal N); None when it is not a zombie."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] != "Z" or len(fields) < 50:
        return None
    return os.waitstatus_to_exitcode(int(fields[49]))  # field 52, exit_code (Linux 3.5+)


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "runner ended (its exit status is unknown: it ended while another agent process was its parent)"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "?"
        return f"runner was killed by signal {-returncode} ({name})"
    return f"runner exited with code {returncode}"


class RunnerProcess:
    """`exited` resolves to the returncode (-N for signal N), or None when it cannot be known."""

    def __init__(self, pid: int, ticks: int, exited: asyncio.Future[int | None]) -> None:
        self.pid = pid
        self.start_ticks = ticks
        self.exited = exited

    @classmethod
    def started(cls, process: asyncio.subprocess.Process) -> RunnerProcess:
        """A runner this agent started: its exit status comes from waiting for its child."""

        async def wait() -> int | None:
            return await process.wait()

        return cls(process.pid, start_ticks(process.pid) or 0, asyncio.ensure_future(wait()))

    @classmethod
    def spawned(cls, process: subprocess.Popen[bytes]) -> RunnerProcess:
        """A runner this agent started with subprocess: reaped once its pidfd says it has ended."""
        ticks = start_ticks(process.pid) or 0
        try:
            pidfd = os.pidfd_open(process.pid)
        except OSError:  # no pidfd_open (Linux before 5.3): poll instead
            return cls(process.pid, ticks, asyncio.ensure_future(_poll_child(process)))
        return cls(process.pid, ticks, asyncio.ensure_future(_reap_child(process, pidfd)))

    @classmethod
    def adopt(cls, pid: int, ticks: int) -> RunnerProcess | None:
        """The process `pid` if it is alive and is the one that started at `ticks`; else None."""
        if pid <= 0 or ticks <= 0 or start_ticks(pid) != ticks:
            return None
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return None
        except OSError:  # no pidfd_open (Linux before 5.3): poll instead
            return cls(pid, ticks, asyncio.ensure_future(_poll_exit(pid, ticks)))
        return cls(pid, ticks, asyncio.ensure_future(_pidfd_exit(pid, pidfd)))

    @property
    def alive(self) -> bool:
        return not self.exited.done()

    def kill_group(self, sig: int) -> None:
        """Signal the runner's process group (it leads its own session, so its pid is the group id)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def terminate(self, grace: float) -> None:
        """SIGTERM the group, SIGKILL it after `grace` seconds; return once the runner has ended."""
        self.kill_group(signal.SIGTERM)
        done, _ = await asyncio.wait({self.exited}, timeout=grace)
        if not done:
            log.warning("runner %d did not stop within %.1fs of SIGTERM; killing it", self.pid, grace)
            self.kill_group(signal.SIGKILL)
            await asyncio.wait({self.exited})
        self.kill_group(signal.SIGKILL)  # whatever it left in its group


async def _pidfd_ended(pidfd: int) -> None:
    loop = asyncio.get_running_loop()
    readable = loop.create_future()
    loop.add_reader(pidfd, lambda: readable.done() or readable.set_result(None))
    try:
        await readable  # a pidfd turns readable when its process ends
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


async def _pidfd_exit(pid: int, pidfd: int) -> int | None:
    await _pidfd_ended(pidfd)
    return zombie_returncode(pid)


async def _reap_child(process: subprocess.Popen[bytes], pidfd: int) -> int:
    await _pidfd_ended(pidfd)
    return process.wait()  # it has ended: this only reaps it


async def _poll_child(process: subprocess.Popen[bytes], interval: float = 0.05) -> int:
    while (code := process.poll()) is None:
        await asyncio.sleep(interval)
    return code


async def _poll_exit(pid: int, ticks: int, interval: float = 0.2) -> int | None:
    while start_ticks(pid) == ticks:
        await asyncio.sleep(interval)
    return zombie_returncode(pid)

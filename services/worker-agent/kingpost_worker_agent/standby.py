"""Pre-started runners: one idle `python -m kingpost_runner --standby` per runner Python.

A standby has started its interpreter and done its imports (about half a second of a cold start
on a busy machine) and waits for one instruction on stdin: the runner arguments, environment
variables, working directory and log file of the replica it becomes, and the user it becomes (with
runner users, containment.py, a standby runs as the agent's user, root, until then: it has
imported only the platform's own packages, from the base environment). `take` hands one out (or None
when none is alive); `refill` starts the next one — the supervisor calls it once the replica that
took the last one is ready, so the standby's own start does not compete with that replica's load.
Idle standbys die with the agent (PR_SET_PDEATHSIG) and `close` stops them; one that becomes a
replica's runner turns its output to the replica's log file and outlives the agent, as runners do.
Until then its output goes to `standby.log` in the pool's directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Callable, Mapping
from pathlib import Path

from kingpost_worker_agent.runner_users import RunAs

log = logging.getLogger(__name__)

STANDBY_FLAG = "--standby"


def instruction(argv: list[str], env: Mapping[str, str], cwd: Path, log: Path,
                run_as: RunAs | None = None) -> bytes:
    """The line that turns a standby into the runner `python -m kingpost_runner *argv` would be,
    writing its output to `log`, no longer dying with the agent, and running as `run_as`."""
    line = {"argv": argv, "env": dict(env), "cwd": str(cwd), "log": str(log)}
    if run_as is not None:
        line["user"] = {"uid": run_as.uid, "gid": run_as.gid, "groups": list(run_as.groups)}
    return (json.dumps(line) + "\n").encode()


class StandbyPool:
    def __init__(self, work_dir: Path, env_for: Callable[[str], dict[str, str]], limit: int) -> None:
        self._dir = work_dir
        self._env_for = env_for
        self._limit = limit
        self._idle: dict[str, asyncio.subprocess.Process] = {}
        self._starting: dict[str, asyncio.Task[None]] = {}
        self._closed = False
        self.taken = 0
        self.started = 0

    async def take(self, python: str) -> asyncio.subprocess.Process | None:
        """An alive standby for `python`, now yours (write it an instruction); None when there is none."""
        proc = self._idle.pop(python, None)
        if proc is None or proc.returncode is not None:
            return None
        self.taken += 1
        return proc

    def idle_pids(self) -> list[int]:
        return [p.pid for p in self._idle.values() if p.returncode is None]

    def refill(self, python: str) -> None:
        """Start a standby for `python` in the background, unless one is idle or starting."""
        if self._closed or self._limit <= 0 or python in self._idle or python in self._starting:
            return
        if len(self._idle) + len(self._starting) >= self._limit:
            return
        self._starting[python] = asyncio.create_task(self._start(python), name=f"standby-{python}")

    async def wait_started(self) -> None:
        """For tests: until the standbys being started have started."""
        await asyncio.gather(*self._starting.values(), return_exceptions=True)

    async def _start(self, python: str) -> None:
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            # An idle standby dies with this agent: the kernel kills it (PR_SET_PDEATHSIG, set by the runner).
            env = self._env_for(python) | {"KINGPOST_PARENT_PID": str(os.getpid())}
            with open(self._dir / "standby.log", "ab") as output:
                proc = await asyncio.create_subprocess_exec(
                    python, "-m", "kingpost_runner", STANDBY_FLAG, cwd=self._dir, env=env,
                    stdin=asyncio.subprocess.PIPE, stdout=output, stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as e:
            log.warning("cannot start a standby runner (%s): %s", python, e)
            return
        finally:
            self._starting.pop(python, None)
        if self._closed:
            await _kill(proc)
            return
        self.started += 1
        self._idle[python] = proc

    async def close(self) -> None:
        self._closed = True
        for task in list(self._starting.values()):
            with contextlib.suppress(BaseException):
                await task
        procs, self._idle = list(self._idle.values()), {}
        await asyncio.gather(*(_kill(p) for p in procs), return_exceptions=True)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()

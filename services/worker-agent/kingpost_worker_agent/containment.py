"""What a runner is kept from, decided once when the agent starts, and applied to each runner.

- **Users** (runner_users.py): where the agent runs as root and an unprivileged user can run the
  runner's Python and reach the platform's packages (`probe`), each replica runs as a uid of its own,
  and the agent's work dir is closed to it except for its own Truss, environment and working area.
  Else runners run as the agent's user, and the agent says why.
- **Memory** (`resources.memory`): a cgroup per replica (cgroups.py: v2, else v1) whose limit the
  kernel enforces with its OOM killer — the agent restarts the runner and says it ran out of
  memory; else RLIMIT_DATA, which the runner sets on itself, so an allocation beyond it raises
  MemoryError in the model instead.
- **Environment** (runner_env.py): an allow-list, always.
- **Working area**: `<work_dir>/homes/<replica>`, the replica's own (TMPDIR, and HOME under its own
  user), kept across its restarts, removed when it stops.

`Containment.detect` looks; `summary()` says what it found (the agent logs it at start, and
`kingpost_worker_agent_containment` reports it); `sandbox()` prepares one runner's start.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kingpost_worker_agent import dev_patch, metrics, runner_env, runner_users
from kingpost_worker_agent.cgroups import CgroupUnavailable, MemoryCgroups
from kingpost_worker_agent.runner_users import RunAs, RunnerIds

log = logging.getLogger(__name__)

UsersMode = Literal["auto", "required", "off"]
MemoryMode = Literal["auto", "rlimit", "off"]

# Directories of the work dir a runner passes through (0711) to reach what it was given, and those
# that are root's alone (records, logs, the idle standby's).
PASSABLE = ("artifacts", "envs", "dev", "homes")
CLOSED = ("replicas", "logs", "standby")
HOMES = "homes"


class ContainmentRequired(Exception):
    """runner_users = "required", and runners cannot have users of their own here; the message says why."""


@dataclass(frozen=True)
class Sandbox:
    """What one runner of a replica starts under."""
    work_area: Path
    run_as: RunAs | None
    cgroup: Path | None
    cgroups: MemoryCgroups | None
    # RLIMIT_DATA the runner sets on itself (no cgroup); None for none.
    rlimit: int | None
    memory: str  # resources.memory as the Truss wrote it

    @property
    def uid(self) -> int | None:
        return self.run_as.uid if self.run_as is not None else None

    def argv(self) -> list[str]:
        args = ["--memory-limit", str(self.rlimit)] if self.rlimit is not None else []
        return args + (["--no-new-privileges"] if self.run_as is not None else [])

    def env(self) -> dict[str, str]:
        return runner_env.work_area_env(self.work_area, self.uid)

    def join(self, pid: int) -> None:
        """Move the runner into the replica's cgroup. Raises OSError."""
        if self.cgroup is not None and self.cgroups is not None:
            self.cgroups.join(self.cgroup, pid)

    def describe(self) -> str:
        """The line each start writes into the replica's log."""
        user = f"as uid {self.uid}, a user of its own" if self.uid is not None else "as the agent's user"
        if self.cgroups is not None:
            limit = f"memory limit {self.memory} ({self.cgroups.name})"
        elif self.rlimit is not None:
            limit = f"memory limit {self.memory} (RLIMIT_DATA: beyond it, allocations fail with MemoryError)"
        else:
            limit = "no memory limit"
        return f"runner starts {user}, {limit}"


class Containment:
    def __init__(self, work_dir: Path, *, ids: RunnerIds | None = None, users_reason: str = "",
                 cgroups: MemoryCgroups | None = None, rlimit: bool = False, memory_reason: str = "",
                 runner_python: str | None = None) -> None:
        self.work_dir = work_dir
        # The interpreter runners use when it differs from the one configured (see `detect`).
        self.runner_python = runner_python
        self.ids = ids
        self.users_reason = users_reason
        self.cgroups = cgroups
        self.rlimit = rlimit
        self.memory_reason = memory_reason

    @classmethod
    def none(cls, work_dir: Path) -> Containment:
        """Runners as the agent's user and without memory limits (an allow-listed environment still)."""
        return cls(work_dir, users_reason="runner users are off", memory_reason="memory limits are off")

    @classmethod
    def detect(cls, work_dir: Path, node_id: str, *, runner_python: str, users: UsersMode = "auto",
               memory: MemoryMode = "auto", ids_start: int = runner_users.DEFAULT_START,
               ids_count: int = runner_users.DEFAULT_COUNT, python_given: bool = True,
               lock_dir: Path = runner_users.LOCK_DIR) -> Containment:
        """What this node allows. Raises ContainmentRequired when `users` is "required" and it cannot be.

        When `runner_python` is the platform's own (not `python_given`) and an unprivileged user cannot
        run it (a Python under /root, as pyenv installs it), the same Python version elsewhere on the
        node (/usr/bin/python3.X, Debian's) is tried: runners are contained by default where it exists."""
        work_dir.mkdir(parents=True, exist_ok=True)
        ids, why_not, chosen = None, "runner users are off (runner_users = \"off\")", None
        if users != "off":
            why_not = _why_no_users(work_dir, runner_python, ids_start)
            if why_not is not None and not python_given:
                for candidate in same_version_pythons(runner_python):
                    if _why_no_users(work_dir, candidate, ids_start) is None:
                        log.info("runners use %s: an unprivileged user cannot run %s", candidate, runner_python)
                        why_not, chosen = None, candidate
                        break
            if why_not is None:
                state = work_dir / "runner_ids.json"
                claimed, lock = runner_users.claim_range(lock_dir, ids_start, ids_count,
                                                         remembered=runner_users.remembered_start(state))
                if claimed != ids_start:
                    log.info("runner uids %d-%d are another agent's; this one takes %d-%d", ids_start,
                             ids_start + ids_count - 1, claimed, claimed + ids_count - 1)
                ids = RunnerIds(state, claimed, ids_count)
                ids.lock_fd = lock
            elif users == "required":
                raise ContainmentRequired(f"runner_users = \"required\", but {why_not}")
        cgroups, memory_reason = None, "memory limits are off (memory_limits = \"off\")"
        if memory == "auto":
            try:
                cgroups = MemoryCgroups.setup(node_id)
            except CgroupUnavailable as e:
                memory_reason = str(e)
        elif memory == "rlimit":
            memory_reason = "memory_limits = \"rlimit\""
        rlimit = memory != "off" and cgroups is None
        found = cls(work_dir, ids=ids, users_reason=why_not or "", cgroups=cgroups, rlimit=rlimit,
                    memory_reason=memory_reason, runner_python=chosen)
        found.close_work_dir()
        return found

    # --- what was found -----------------------------------------------------------------------

    @property
    def users(self) -> str:
        return "per-replica" if self.ids is not None else "agent"

    @property
    def memory(self) -> str:
        if self.cgroups is not None:
            return f"cgroup{self.cgroups.version}"
        return "rlimit" if self.rlimit else "off"

    def summary(self) -> str:
        if self.ids is not None:
            last = self.ids.start + self.ids.count - 1
            users = f"each replica runs as a user of its own (uids {self.ids.start}-{last})"
        else:
            users = f"runners run as the agent's user ({self.users_reason})"
        if self.cgroups is not None:
            memory = f"resources.memory is enforced by {self.cgroups.name} ({self.cgroups.parent})"
        elif self.rlimit:
            memory = f"resources.memory is enforced by RLIMIT_DATA, no cgroup ({self.memory_reason})"
        else:
            memory = f"resources.memory is not enforced ({self.memory_reason})"
        return f"runner containment: {users}; {memory}"

    def report(self) -> None:
        metrics.CONTAINMENT.labels(self.users, self.memory).set(1)
        (log.info if self.ids is not None and self.memory != "off" else log.warning)("%s", self.summary())

    # --- applying it --------------------------------------------------------------------------

    def close_work_dir(self) -> None:
        """The work dir root's, with the doors runners pass through (only matters with runner users)."""
        runner_users.close_dir(self.work_dir, 0o711)
        for name in PASSABLE:
            runner_users.close_dir(self.work_dir / name, 0o711)
        for name in CLOSED:
            runner_users.close_dir(self.work_dir / name, 0o700)
        if self.ids is not None:
            content = range(self.ids.start + self.ids.count, self.ids.start + 2 * self.ids.count)
            for name in ("artifacts", "envs"):
                runner_users.close_children(self.work_dir / name, except_gids=content)

    def runner_env(self, python: str) -> dict[str, str]:
        """A standby runner's environment (it learns its replica's with its instruction)."""
        return runner_env.runner_env(os.environ, own_user=self.ids is not None)

    def content_groups(self, *dirs: Path | None) -> tuple[int, ...]:
        """Open each of these directories of the work dir to a group of its own; their gids."""
        if self.ids is None:
            return ()
        gids = []
        for d in dirs:
            if d is not None:
                gid = self.ids.content_gid(str(d))
                runner_users.grant(d, gid)
                gids.append(gid)
        return tuple(gids)

    def open_to(self, directory: Path, uid: int | None) -> None:
        """A replica's own directory (its copy of its Truss) for its runner alone."""
        if self.ids is not None and uid is not None:
            runner_users.grant(directory, uid)

    def sandbox(self, replica_id: str, uid: int | None, cgroup: Path | None, in_use: set[int | None],
                groups: tuple[int, ...], memory: str, memory_bytes: int, own: list[Path]) -> Sandbox:
        """A runner's start: its replica's user (`uid`, or a new one when None), working area and
        cgroup (`cgroup`, the one it had, maybe from an agent before; all kept across its restarts),
        and its `own` directories opened to it. Raises OSError, NoFreeId."""
        if uid is None and self.ids is not None:
            uid = self.ids.allocate_uid({u for u in in_use if u is not None})
        area = runner_users.make_work_area(self.work_area(replica_id), uid)
        for directory in own:
            self.open_to(directory, uid)
        if self.cgroups is not None:  # the one it has while it exists (not after a reboot), else ours
            kept = cgroup is not None and cgroup.is_dir()
            cgroup = self.cgroups.create(cgroup if kept else self.cgroups.parent / replica_id, memory_bytes)
        return Sandbox(area, RunAs(uid, uid, groups) if uid is not None else None, cgroup, self.cgroups,
                       memory_bytes if self.rlimit else None, memory)

    def work_area(self, replica_id: str) -> Path:
        return self.work_dir / HOMES / replica_id

    def out_of_memory(self, cgroup: Path | None, before: int, memory: str) -> str:
        """What to add to a runner's exit when its cgroup's OOM killer has struck since it started."""
        if self.oom_kills(cgroup) <= before:
            return ""
        return (f": it ran out of memory, using more than its resources.memory ({memory}), "
                f"the limit its {self.cgroups.name if self.cgroups else 'cgroup'} enforces")

    def oom_kills(self, cgroup: Path | None) -> int:
        return self.cgroups.oom_kills(cgroup) if cgroup is not None and self.cgroups is not None else 0

    def sweep(self, cgroup: Path | None, uid: int | None) -> None:
        """Kill whatever a replica's runner left running: in its cgroup, or as its user."""
        if cgroup is not None and self.cgroups is not None:
            self.cgroups.kill_all(cgroup)
        if uid is not None and self.ids is not None and uid in self.ids.uids:
            runner_users.kill_user(uid)

    async def release(self, replica_id: str, cgroup: Path | None, uid: int | None) -> None:
        """A replica has stopped: nothing of it is left running, and its working area, cgroup and
        copy of its Truss (dev_patch.py) go."""
        self.sweep(cgroup, uid)
        if cgroup is not None and self.cgroups is not None:
            for _ in range(200):  # its last processes are exiting
                if self.cgroups.remove(cgroup):
                    break
                await asyncio.sleep(0.01)
            else:
                log.warning("the cgroup %s still holds processes; left in place", cgroup)
        await asyncio.to_thread(runner_users.remove_tree, self.work_area(replica_id))
        await asyncio.to_thread(shutil.rmtree, self.work_dir / dev_patch.DEV_DIR / replica_id, True)

    def close(self) -> None:
        if self.cgroups is not None:
            self.cgroups.close()
        if self.ids is not None and self.ids.lock_fd is not None:
            os.close(self.ids.lock_fd)  # the uid range is free for another agent
            self.ids.lock_fd = None


def same_version_pythons(python: str) -> list[str]:
    """Other interpreters of `python`'s major.minor version on this node, where packaged Pythons live."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    own = os.path.realpath(python)
    found = []
    for directory in ("/usr/bin", "/usr/local/bin"):
        candidate = os.path.join(directory, version)
        if os.access(candidate, os.X_OK) and os.path.realpath(candidate) != own:
            found.append(candidate)
    return found


def _why_no_users(work_dir: Path, runner_python: str, probe_uid: int) -> str | None:
    if os.geteuid() != 0:
        return "the agent does not run as root, so it cannot run them as other users"
    runner_users.close_dir(work_dir, 0o711)
    packages = [Path(_origin(name)).parent for name in ("kingpost_runner", "kingpost", "grpc")]
    why = runner_users.probe(runner_python, probe_uid, readable=packages, passable=[work_dir])
    if why is None:
        return None
    return (f"an unprivileged user cannot run the runner's Python or reach the platform's packages "
            f"or the work dir ({why}); install kingpost and its Python where other users can read "
            f"them (not under /root or a home directory that is closed), or set runner_python")


def _origin(module: str) -> str:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, f"{module} is not installed"
    return spec.origin

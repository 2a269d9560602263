"""Memory limits by cgroup: one cgroup per replica, below the agent's own, with the replica's limit.

cgroup v2 (the unified hierarchy, standard on current distributions) when the memory controller is
available in the agent's cgroup; else cgroup v1's memory hierarchy when it is mounted and writable
(older distributions, some CI machines). The agent looks at start (`setup`); where neither can be
written (no root, a container with /sys/fs/cgroup read-only, a cgroup not delegated) it says why,
and the runner limits itself instead (containment.py: RLIMIT_DATA).

    <agent's cgroup>/kingpost-<node id>/<replica id>     memory.max (v2) | memory.limit_in_bytes (v1)

cgroup v2 lets a cgroup hand controllers to its children only while it holds no process itself, so
the agent first moves the processes of its own cgroup into a leaf, `kingpost-agent` (what systemd
asks of a delegated cgroup's owner: run it under `Delegate=yes`).

The parsers are pure (text in); `MemoryCgroups` writes the files.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

AGENT_LEAF = "kingpost-agent"


class CgroupUnavailable(Exception):
    """No memory cgroup can be made here; the message says why."""


@dataclass(frozen=True)
class Mount:
    mountpoint: Path
    root: str  # the path inside the hierarchy that is mounted there
    fstype: str
    super_options: frozenset[str]


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def parse_mountinfo(text: str) -> list[Mount]:
    """/proc/self/mountinfo → its cgroup and cgroup2 mounts."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        mounts.append(Mount(Path(_unescape(fields[4])), _unescape(fields[3]), tail[0],
                            frozenset(tail[2].split(","))))
    return mounts


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/self/cgroup → controller → the process's cgroup path; "" is the v2 (unified) one."""
    paths = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def cgroup_dir(mount: Mount, path: str) -> Path | None:
    """Where the cgroup `path` (as /proc/self/cgroup names it) is in the file system; None when the
    mount does not show it (it is above the mounted part)."""
    root = mount.root.rstrip("/")
    if root and path != root and not path.startswith(root + "/"):
        return None
    return mount.mountpoint / path[len(root):].lstrip("/")


def own_cgroup(mounts: list[Mount], proc_cgroup: dict[str, str], version: int) -> Path | None:
    """This process's cgroup directory in the v2 hierarchy, or in v1's memory hierarchy."""
    for mount in mounts:
        if version == 2 and mount.fstype == "cgroup2" and "" in proc_cgroup:
            return cgroup_dir(mount, proc_cgroup[""])
        if version == 1 and mount.fstype == "cgroup" and "memory" in mount.super_options \
                and "memory" in proc_cgroup:
            return cgroup_dir(mount, proc_cgroup["memory"])
    return None


def oom_kills_in(events: str) -> int:
    """`oom_kill N` from v2's memory.events or v1's memory.oom_control (Linux 4.13+); 0 when absent."""
    for line in events.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip().isdigit():
            return int(value)
    return 0


class MemoryCgroups:
    """Replica cgroups under `parent`, in cgroup v`version`."""

    def __init__(self, version: int, parent: Path) -> None:
        self.version = version
        self.parent = parent

    @classmethod
    def setup(cls, node_id: str) -> MemoryCgroups:
        """The parent of this agent's replica cgroups, made ready; CgroupUnavailable says why not."""
        mounts = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
        paths = parse_proc_cgroup(Path("/proc/self/cgroup").read_text())
        reasons = []
        own = own_cgroup(mounts, paths, 2)
        if own is not None and "memory" in _read(own / "cgroup.controllers").split():
            try:
                return cls(2, _setup_v2(own, node_id))
            except OSError as e:
                reasons.append(f"cgroup v2 at {own}: {e.strerror or e}")
        elif own is not None:
            reasons.append(f"cgroup v2: the memory controller is not enabled for {own}")
        own = own_cgroup(mounts, paths, 1)
        if own is not None:
            parent = own / f"kingpost-{node_id}"
            try:
                parent.mkdir(exist_ok=True)
                return cls(1, parent)
            except OSError as e:
                reasons.append(f"cgroup v1 at {own}: {e.strerror or e}")
        if not reasons:
            reasons.append("no cgroup file system is mounted")
        raise CgroupUnavailable("; ".join(reasons))

    @property
    def name(self) -> str:
        return f"cgroup v{self.version}"

    def create(self, cgroup: Path, limit: int) -> Path:
        """A replica's cgroup (made here, or by an agent before this one), with its memory limit (and
        no swap beyond it). Raises OSError."""
        cgroup.mkdir(exist_ok=True)
        if self.version == 2:
            _write(cgroup / "memory.max", limit)
            for name, value in (("memory.swap.max", 0), ("memory.oom.group", 1)):
                if (cgroup / name).exists():
                    _write(cgroup / name, value)
            return cgroup
        try:
            _write(cgroup / "memory.limit_in_bytes", limit)
        except OSError as e:  # above the cgroup's memory+swap limit (a larger one than before): that first
            if e.errno != errno.EINVAL or not (cgroup / "memory.memsw.limit_in_bytes").exists():
                raise
            _write(cgroup / "memory.memsw.limit_in_bytes", limit)
            _write(cgroup / "memory.limit_in_bytes", limit)
        if (cgroup / "memory.memsw.limit_in_bytes").exists():
            _write(cgroup / "memory.memsw.limit_in_bytes", limit)
        return cgroup

    def join(self, cgroup: Path, pid: int) -> None:
        _write(cgroup / "cgroup.procs", pid)

    def oom_kills(self, cgroup: Path) -> int:
        return oom_kills_in(_read(cgroup / ("memory.events" if self.version == 2 else "memory.oom_control")))

    def kill_all(self, cgroup: Path) -> None:
        """SIGKILL every process in the cgroup (a runner's children that left its process group too)."""
        for pid in _read(cgroup / "cgroup.procs").split():
            with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
                os.kill(int(pid), signal.SIGKILL)

    def remove(self, cgroup: Path) -> bool:
        """Kill what is left in the cgroup and remove it; False while it still holds a process
        (killed processes take a moment to go): try again."""
        self.kill_all(cgroup)
        try:
            cgroup.rmdir()
        except FileNotFoundError:
            pass
        except OSError as e:
            if e.errno == errno.EBUSY:
                return False
            log.warning("cannot remove the cgroup %s: %s", cgroup, e)
        if cgroup.parent != self.parent:  # an agent's before this one (another node id): once empty
            with contextlib.suppress(OSError):
                cgroup.parent.rmdir()
        return True

    def close(self) -> None:
        """Remove the agent's parent cgroup when no replica's is left in it."""
        with contextlib.suppress(OSError):
            self.parent.rmdir()


def _setup_v2(own: Path, node_id: str) -> Path:
    base = own.parent if own.name == AGENT_LEAF else own
    try:
        _enable_memory(base)
    except OSError as e:
        if e.errno != errno.EBUSY:
            raise
        # "No internal processes": move this cgroup's processes (the agent, and `kingpost up` with its
        # services when it started the agent) into a leaf, then hand the memory controller down.
        leaf = base / AGENT_LEAF
        leaf.mkdir(exist_ok=True)
        moved = 0
        for pid in _read(base / "cgroup.procs").split():
            with contextlib.suppress(OSError):
                _write(leaf / "cgroup.procs", pid)
                moved += 1
        log.info("moved %d process(es) of %s into %s, so that replicas get cgroups of their own",
                 moved, base, leaf)
        _enable_memory(base)
    parent = base / f"kingpost-{node_id}"
    parent.mkdir(exist_ok=True)
    _enable_memory(parent)
    return parent


def _enable_memory(cgroup: Path) -> None:
    if "memory" not in _read(cgroup / "cgroup.subtree_control").split():
        _write(cgroup / "cgroup.subtree_control", "+memory")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _write(path: Path, value: object) -> None:
    with open(path, "w") as f:
        f.write(str(value))

"""Runners as users of their own: a uid per replica, a group per piece of content they may read.

When the agent runs as root, each replica's runners run as a uid of its own from a range no login
user has (70000-79999 by default: above the 16-bit ids distributions hand out, below the 100000 where
/etc/subuid ranges for containers start), with no passwd entry, as systemd's DynamicUser and
Android's per-app users do. Its own uid keeps a replica out of every other's processes (signals,
ptrace, /proc/<pid>/environ) and working area, and out of everything of the platform's that is not
world-readable: the admin key, the database, service configs, logs.

What a runner must read of the agent's work dir — its Truss (an extracted artifact), its virtual
environment, its system layer — is shared by content between replicas, so it is opened to a group
per directory (`content_gid`, from the range after the uids) and the runner gets the groups of the
directories its replica uses; everything else in the work dir stays root's alone (mode 0700, or
0711 where a runner must pass through).

Ids are handed out round robin and remembered in `<work_dir>/runner_ids.json`, so a uid is not
given to a new replica soon after the last one that had it (files it left in /tmp stay its own).

One machine may run several agents (a test's cluster, or two GPU pools on one host). Their ranges
must not overlap: an agent stops a replica by killing every process of its uid. So each agent
claims its range with a lock, `<lock_dir>/runner-ids-<start>.lock` (/run/kingpost by default),
held while it runs (`claim_range`); when the configured range is taken, it takes the next free one
(uids and groups move together, 2 × count further) and remembers it, so that after a restart it
takes the same range again and adopts its runners.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

DEFAULT_START = 70000
# Where agents lock their uid ranges (one machine, many agents): KINGPOST_RUN_DIR overrides it.
LOCK_DIR = Path(os.environ.get("KINGPOST_RUN_DIR") or "/run/kingpost")
DEFAULT_COUNT = 10000
PROBE_TIMEOUT_SECONDS = 30


class NoFreeId(Exception):
    """Every id of the range is taken."""


@dataclass(frozen=True)
class RunAs:
    uid: int
    gid: int
    groups: tuple[int, ...]


class RangeTaken(Exception):
    """No uid range this agent may claim is free on this machine."""


def remembered_start(path: Path) -> int | None:
    """The range start a previous agent of this work dir used (None: none recorded)."""
    try:
        start = json.loads(path.read_text()).get("start")
    except (OSError, ValueError, AttributeError):
        return None
    return int(start) if isinstance(start, int) else None


def claim_range(lock_dir: Path, start: int, count: int, *, remembered: int | None = None,
                tries: int = 64) -> tuple[int, int]:
    """Lock a uid range for this agent: (its start, the lock's file descriptor, held until closed).

    The range this work dir used before comes first (its runners may still be alive: they are ours
    to adopt); then `start`, then the ranges after it. A range whose lock is free but whose uids
    have live processes is skipped: an agent that takes no lock (an older one) may be using it."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    candidates = [start + i * 2 * count for i in range(tries)]
    if remembered is not None and remembered >= 1000:
        candidates.insert(0, remembered)
    for candidate in dict.fromkeys(candidates):
        fd = os.open(lock_dir / f"runner-ids-{candidate}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if candidate != remembered and _range_busy(candidate, count):
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return candidate, fd
    raise RangeTaken(f"no runner uid range is free on this machine: {tries} ranges of {count} from {start} "
                     f"are held by other agents (locks in {lock_dir}) or have processes; set runner_ids_start")


def _range_busy(start: int, count: int) -> bool:
    """Whether a process of a uid in [start, start + 2 * count) runs now."""
    for pid in _pids():
        uid = _uid_of(pid)
        if uid is not None and start <= uid < start + 2 * count:
            return True
    return False


class RunnerIds:
    """uids for replicas from [start, start + count); gids for content from the next `count`."""

    def __init__(self, path: Path, start: int = DEFAULT_START, count: int = DEFAULT_COUNT) -> None:
        self._path = path
        self.start, self.count = start, count
        self.lock_fd: int | None = None  # the lock on this range (claim_range), held while the agent runs
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            state = {}
        if state.get("start", start) != start:  # another range than last time: its ids mean nothing now
            state = {}
        self._next = int(state.get("next_uid", start))
        self._groups: dict[str, int] = {str(k): int(v) for k, v in (state.get("groups") or {}).items()}

    @property
    def uids(self) -> range:
        return range(self.start, self.start + self.count)

    def allocate_uid(self, in_use: set[int]) -> int:
        """The next uid after the last one handed out that no replica holds."""
        first = self._next if self._next in self.uids else self.start
        for i in range(self.count):
            uid = self.start + (first - self.start + i) % self.count
            if uid not in in_use:
                self._next = uid + 1
                self._save()
                return uid
        raise NoFreeId(f"all {self.count} runner uids from {self.start} are in use by replicas on this node")

    def content_gid(self, key: str) -> int:
        """The group that may read the content `key` names (a path under the work dir)."""
        if key not in self._groups:
            taken = set(self._groups.values())
            free = (g for g in range(self.start + self.count, self.start + 2 * self.count) if g not in taken)
            gid = next(free, None)
            if gid is None:
                raise NoFreeId(f"all {self.count} content groups from {self.start + self.count} are in use: "
                               f"remove artifacts and environments this node no longer runs")
            self._groups[key] = gid
            self._save()
        return self._groups[key]

    def _save(self) -> None:
        tmp = self._path.with_name(f".{self._path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps({"start": self.start, "next_uid": self._next, "groups": self._groups}))
        os.replace(tmp, self._path)


def grant(path: Path, gid: int) -> None:
    """Let group `gid` (and root) read the tree at `path`, and no one else into it."""
    st = path.stat()
    if st.st_gid == gid and stat.S_IMODE(st.st_mode) == 0o750:
        return
    _group_readable(path)
    os.chown(path, 0, gid)
    os.chmod(path, 0o750)


def _group_readable(root: Path) -> None:
    """Give the group what the owner may read and search, throughout (a Truss's 0600 files too)."""
    for directory, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            path = os.path.join(directory, name)
            st = os.lstat(path)
            if not stat.S_ISLNK(st.st_mode):
                mode = stat.S_IMODE(st.st_mode)
                wanted = mode | (mode & 0o500) >> 3
                if wanted != mode:
                    os.chmod(path, wanted)


def close_dir(path: Path, mode: int = 0o700) -> None:
    """Make a directory of the work dir root's (0700), or passable without listing it (0711)."""
    path.mkdir(parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != mode:
        os.chmod(path, mode)


def close_children(directory: Path, *, except_gids: range) -> None:
    """Close each directory in `directory` that no content group has been given yet (made before
    runners had users of their own, or never needed by one, such as a dependency layer's wheels)."""
    for child in directory.iterdir() if directory.is_dir() else ():
        st = child.lstat()
        if stat.S_ISDIR(st.st_mode) and st.st_gid not in except_gids and stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(child, 0o700)


def make_work_area(path: Path, uid: int | None) -> Path:
    """The replica's own directory (HOME, TMPDIR): 0700, its runner's user's."""
    path.mkdir(parents=True, exist_ok=True)
    if uid is not None:
        os.chown(path, uid, uid)
    os.chmod(path, 0o700)
    return path


def remove_tree(path: Path) -> None:
    """Remove what a runner left, even directories it made unreadable (root needs no help)."""
    if os.geteuid() != 0:
        for directory, dirs, _ in os.walk(path):
            for name in dirs:
                sub = os.path.join(directory, name)
                if not os.path.islink(sub):
                    with contextlib.suppress(OSError):
                        os.chmod(sub, 0o700)
    shutil.rmtree(path, ignore_errors=True)


def kill_user(uid: int) -> int:
    """SIGKILL every process of `uid` (a replica's runner and whatever it started, wherever it went);
    the number killed."""
    killed = 0
    for _ in range(5):  # a process may fork while we look
        found = [pid for pid in _pids() if _uid_of(pid) == uid]
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
    return killed


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _uid_of(pid: int) -> int | None:
    """The real uid of `pid` (None when it is gone or a zombie: nothing left to kill)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    uid = state = None
    for line in status.splitlines():
        if line.startswith("Uid:"):
            uid = int(line.split()[1])
        elif line.startswith("State:"):
            state = line.split()[1]
    return None if state in ("Z", "X") else uid


def probe(python: str, uid: int, *, readable: list[Path], passable: list[Path]) -> str | None:
    """Can a runner of user `uid` start `python` and reach these paths? None when it can, else why not."""
    code = ("import os, sys\n"
            "for arg in sys.argv[1:]:\n"
            "    kind, path = arg[0], arg[2:]\n"
            "    os.listdir(path) if kind == 'r' else os.stat(path)\n")
    args = [f"r:{p}" for p in readable] + [f"p:{p}" for p in passable]
    try:
        result = subprocess.run([python, "-S", "-c", code, *args], user=uid, group=uid, extra_groups=[],
                                env={"PATH": os.defpath}, cwd="/", stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=PROBE_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        return f"cannot run {python} as uid {uid}: {e}"
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        return f"{python} as uid {uid}: {lines[-1] if lines else f'exit code {result.returncode}'}"
    return None

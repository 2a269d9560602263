"""`kingpost up`'s process manager: start the platform's processes, restart the ones that die, stop all.

At start, each process must accept TCP connections on its ready ports; one that dies or never
listens then stops `up` with its name and log. Once up, a process that dies is started again with
the same argv, config files and ports (so its clients and Envoy find it where it was), after the
delay `kingpost.restart_policy` decides; each death and each return is said on the terminal and
written to the process's log. Only a process that keeps dying (`give_up_after` quick deaths in a
row) stops `up`, naming it, with the end of its log. `stop` stops in stages (`up_plan.STOP_STAGES`).

Nothing outlives `up`: each child is in its own process group with PR_SET_PDEATHSIG, a dead child's
group is killed before it is started again, and `up` is a child subreaper, so it also reaps (and at
the end stops) any grandchild a dying child leaves behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from kingpost.errors import KingpostError
from kingpost.restart_policy import RestartPolicy, after_death
from kingpost.up_plan import HOST, ProcessSpec

PR_SET_PDEATHSIG = 1
STOP_GRACE_SECONDS = 10.0
REAP_EVERY_SECONDS = 2.0


class UpError(KingpostError):
    """`kingpost up` could not start, or a process it runs kept dying; `detail` is its log's tail."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


def write_private(path: Path, text: str) -> None:
    """Write `path` readable by its owner only (also when it existed with wider permissions)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)


def log_tail(path: Path, lines: int = 15) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {-code}, {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def _child_setup(parent_pid: int) -> Callable[[], None]:
    """Runs in the child before exec: die with `up`, even when `up` is SIGKILLed."""
    libc = ctypes.CDLL(None, use_errno=True)

    def setup() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:  # `up` died before prctl took effect
            os._exit(1)

    return setup


@dataclass
class Running:
    """One supervised process: its current run, and its deaths."""

    spec: ProcessSpec
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    started_at: float
    # Ready ports that do not accept connections yet (after a restart).
    waiting_for: list[int] = field(default_factory=list)
    quick_deaths: int = 0
    died_at: float = 0.0
    # While dead: when to start it again.
    restart_at: float | None = None

    def note(self, line: str) -> None:
        """A line from `up` in the process's own log, between its output."""
        with contextlib.suppress(ValueError, OSError):
            self.log.write(f"--- kingpost up: {line}\n".encode())
            self.log.flush()


class Supervisor:
    """Starts processes in order, restarts those that die, and stops them in stages."""

    def __init__(self, *, say: Callable[[str], None], policy: RestartPolicy | None = None,
                 clock: Callable[[], float] = time.monotonic, subreaper: bool = False) -> None:
        """`subreaper`: this process is a child subreaper (`kingpost up`), so every child that is
        not one of ours is an orphan to reap and, at the end, stop. (Not so in a test process.)"""
        self._say = say
        self._policy = policy or RestartPolicy()
        self._clock = clock
        self._subreaper = subreaper
        self._next_reap = 0.0
        self.running: list[Running] = []

    # -- start --------------------------------------------------------------------------------

    def start(self, spec: ProcessSpec) -> None:
        self.start_together((spec,))

    def start_together(self, specs: Sequence[ProcessSpec]) -> None:
        """Start processes that do not need each other at once, then wait until all accept connections."""
        started = []
        for spec in specs:
            process, log = self._launch(spec)
            self.running.append(Running(spec, process, log, self._clock()))
            started.append(self.running[-1])
        for running in started:
            self._wait_ready(running)

    def _launch(self, spec: ProcessSpec) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
        for path, text in spec.files.items():
            write_private(path, text)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(spec.log_path, "ab")  # noqa: SIM115 - open as long as the child runs; closed in stop()
        log.write(f"--- kingpost up: starting {' '.join(spec.argv)}\n".encode())
        log.flush()
        env = {k: v for k, v in os.environ.items()
               if k not in ("KINGPOST_URL", "KINGPOST_GRPC", "KINGPOST_API_KEY")}
        env.update(spec.env)
        try:
            process = subprocess.Popen(
                spec.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                # Popen runs on the main thread, so PDEATHSIG is tied to `up` itself.
                process_group=0, preexec_fn=_child_setup(os.getpid()),  # noqa: PLW1509
            )
        except OSError as e:
            log.close()
            raise UpError(f"cannot start {spec.name} ({spec.argv[0]}): {e}") from e
        return process, log

    def _wait_ready(self, running: Running) -> None:
        spec = running.spec
        deadline = time.monotonic() + spec.start_timeout
        pending = list(spec.ready_ports)
        while pending:
            code = running.process.poll()
            if code is not None:
                raise UpError(f"{spec.name} exited while starting ({describe_exit(code)}); its log is "
                              f"{spec.log_path}", detail=self.log_tail(running))
            if _accepts(pending[0]):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise UpError(f"{spec.name} did not accept connections on port {pending[0]} within "
                              f"{spec.start_timeout:.0f} s; its log is {spec.log_path}")
            time.sleep(0.05)

    @staticmethod
    def log_tail(running: Running) -> str:
        return "\n".join(f"  | {line}" for line in log_tail(running.spec.log_path))

    # -- supervise ----------------------------------------------------------------------------

    def supervise_once(self) -> None:
        """Notice deaths, start the dead again when their delay is over, see restarted ones listen.
        Raises UpError when a process keeps dying."""
        now = self._clock()
        for running in self.running:
            if running.restart_at is not None:
                if now >= running.restart_at:
                    self._restart(running, now)
                continue
            code = running.process.poll()
            if code is not None:
                self._died(running, code, now)
            elif running.waiting_for:
                self._check_back(running, now)
        if self._subreaper and now >= self._next_reap:
            self._next_reap = now + REAP_EVERY_SECONDS
            _reap_orphans(exclude={r.process.pid for r in self.running})

    def _died(self, running: Running, code: int, now: float) -> None:
        spec = running.spec
        # What the dead process started in its group (a build's uv, a half-started child) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(running.process.pid, signal.SIGKILL)
        decision = after_death(self._policy, quick_deaths=running.quick_deaths, started_at=running.started_at,
                               died_at=now)
        running.quick_deaths, running.died_at = decision.quick_deaths, now
        how = describe_exit(code)
        if decision.restart_at is None:
            running.note(f"{spec.name} exited ({how}) {decision.quick_deaths} times in a row: giving up")
            raise UpError(
                f"{spec.name} exited ({how}) and died {decision.quick_deaths} times in a row, each within "
                f"{self._policy.healthy_after:g} s of starting; giving up. Its log is {spec.log_path}",
                detail=self.log_tail(running))
        delay = decision.restart_at - now
        running.note(f"{spec.name} exited ({how}); starting it again in {delay:.1f} s")
        self._say(f"{spec.name} exited ({how}); starting it again in {delay:.1f} s (log: {spec.log_path})")
        if decision.crash_looping:
            self._say(f"{spec.name} keeps dying: {decision.quick_deaths} times in a row, each within "
                      f"{self._policy.healthy_after:g} s of starting. The end of its log:\n"
                      f"{self.log_tail(running)}")
        running.restart_at = decision.restart_at

    def _restart(self, running: Running, now: float) -> None:
        running.log.close()
        running.process, running.log = self._launch(running.spec)
        running.started_at, running.restart_at = now, None
        running.waiting_for = list(running.spec.ready_ports)

    def _check_back(self, running: Running, now: float) -> None:
        while running.waiting_for and _accepts(running.waiting_for[0]):
            running.waiting_for.pop(0)
        spec = running.spec
        if not running.waiting_for:
            back_after = now - running.died_at
            line = f"{spec.name} is back (pid {running.process.pid}), {back_after:.1f} s after it died"
            running.note(line)
            self._say(line)
        elif now - running.started_at > spec.start_timeout:
            # As if it had died: killed, then restarted (or given up on) by the policy.
            running.note(f"{spec.name} did not accept connections on port {running.waiting_for[0]} within "
                         f"{spec.start_timeout:.0f} s; killing it")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(running.process.pid, signal.SIGKILL)

    # -- stop ---------------------------------------------------------------------------------

    def stop(self, stages: Iterable[Sequence[str]] = ()) -> None:
        """Stop every process, stage by stage (names); processes in no stage first, newest first."""
        by_name = {r.spec.name: r for r in self.running}
        staged = [[by_name.pop(name) for name in stage if name in by_name] for stage in stages]
        for stage in [[r] for r in reversed(list(by_name.values()))] + staged:
            _stop_groups([r.process for r in stage if r.restart_at is None], STOP_GRACE_SECONDS)
            for running in stage:
                running.log.close()
        self.running.clear()
        if self._subreaper:
            _stop_orphans()


def _stop_groups(processes: Sequence[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM the children's process groups, wait up to `grace` seconds, then SIGKILL the groups."""
    for process in processes:  # process_group=0: each child leads its own group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
    # Whatever is left in a group (the child, or processes it started) goes now.
    for process in processes:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses; split after the last ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _reap_orphans(exclude: set[int]) -> None:
    """Reap grandchildren that were re-parented to us and have exited (else they stay zombies)."""
    for pid in _children_of(os.getpid()):
        if pid not in exclude:
            _reap(pid)


def _stop_orphans(grace: float = 5.0) -> None:
    """Stop and reap any descendant that was re-parented to us (we are a child subreaper)."""
    orphans = _children_of(os.getpid())
    for pid in orphans:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while orphans and time.monotonic() < deadline:
        orphans = [pid for pid in orphans if not _reap(pid)]
        time.sleep(0.05)
    for pid in orphans:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _reap(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid

"""Peer servers for bench/router_throughput.py --peers: Ray Serve and BentoML, each serving a no-op model.

Each peer runs from its own virtual environment, made with uv on first use under the cache directory
(--peer-cache, $KINGPOST_BENCH_CACHE, or ~/.cache/kingpost-bench; a venv is used only once its
install finished: a `.installed` marker is written last), or the interpreter named by
$KINGPOST_BENCH_RAY_PYTHON / $KINGPOST_BENCH_BENTOML_PYTHON. A peer that cannot be installed or
started raises PeerUnavailable, and the bench skips it.

A peer's server runs in its own session; stopping it terminates it, then SIGKILLs (by pid) whatever
is left of its process tree and session, and says so if anything survives.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


class PeerUnavailable(Exception):
    """This peer cannot be installed or started here; the bench skips it."""


@dataclass(frozen=True)
class Peer:
    name: str  # as given to --peers; also the venv's directory name
    label: str  # the row name in the bench's table
    requirement: str  # what uv installs
    module: str  # imported to check the venv and to read the version
    command: Callable[[Path, int], list[str]]  # (python, port) → the server's command line
    env: dict[str, str]
    stops_on_eof: bool  # stopped by closing its stdin (else by SIGTERM)
    describe: str  # the path a request takes, for the bench's notes
    venv: str = ""  # the venv's directory name when it is another peer's (default: name)


PEERS: dict[str, Peer] = {
    "ray": Peer("ray", "ray serve", "ray[serve]", "ray",
                lambda python, port: [str(python), str(HERE / "ray_noop.py"), str(port),
                                      "/models/mdl_bench/development/predict"],
                {"RAY_USAGE_STATS_ENABLED": "0"}, stops_on_eof=True,
                describe="wrk → Serve's HTTP proxy → 1 replica (max_ongoing_requests 1000)"),
    # Serve's throughput-optimized mode: HAProxy (`haproxy` on PATH) straight to the replica's own
    # uvicorn, no Python proxy (docs.ray.io, "HAProxy Load Balancing").
    "ray-optimized": Peer("ray-optimized", "ray serve, HAProxy + throughput-optimized", "ray[serve]", "ray",
                          lambda python, port: [str(python), str(HERE / "ray_noop.py"), str(port),
                                                "/models/mdl_bench/development/predict"],
                          {"RAY_USAGE_STATS_ENABLED": "0", "RAY_SERVE_ENABLE_HA_PROXY": "1",
                           "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}, stops_on_eof=True,
                          describe="wrk → HAProxy → 1 replica's own HTTP server (max_ongoing_requests 1000)",
                          venv="ray"),
    "bentoml": Peer("bentoml", "bentoml", "bentoml", "bentoml",
                    lambda python, port: [str(python), "-m", "bentoml", "serve", "bentoml_noop:Noop",
                                          "--host", "127.0.0.1", "--port", str(port)],
                    {"BENTOML_DO_NOT_TRACK": "True"}, stops_on_eof=False,
                    describe="wrk → `bentoml serve`, 1 worker"),
}


def default_cache() -> Path:
    return Path(os.environ.get("KINGPOST_BENCH_CACHE") or Path.home() / ".cache" / "kingpost-bench")


def _uv() -> str | None:
    """The uv `make install` put in .tools (the Makefile's UV_VERSION), else one on PATH."""
    bundled = sorted((REPO / ".tools").glob("uv-*/bin/uv"))
    return str(bundled[-1]) if bundled else shutil.which("uv")


def _version(python: Path, module: str) -> str | None:
    out = subprocess.run([str(python), "-c", f"import {module}; print({module}.__version__)"],
                         capture_output=True, text=True, timeout=120, check=False)
    return out.stdout.strip() if out.returncode == 0 else None


def ensure_python(peer: Peer, cache: Path) -> tuple[Path, str]:
    """The peer's interpreter and its framework's version; installs the venv on first use."""
    variable = f"KINGPOST_BENCH_{peer.name.upper()}_PYTHON"
    override = os.environ.get(variable)
    if override:
        version = _version(Path(override), peer.module)
        if version is None:
            raise PeerUnavailable(f"${variable}={override} cannot import {peer.module}")
        return Path(override), version
    venv = cache / (peer.venv or peer.name)
    python = venv / "bin" / "python"
    if (venv / ".installed").exists():
        version = _version(python, peer.module)
        if version is not None:
            return python, version
    uv = _uv()
    if uv is None:
        raise PeerUnavailable("uv not found (neither .tools/uv-*/bin/uv nor `uv` on PATH) to install it")
    print(f"installing {peer.requirement} into {venv} (first use) ...", file=sys.stderr, flush=True)
    if venv.exists():
        if not (venv / "pyvenv.cfg").exists():
            raise PeerUnavailable(f"{venv} exists and is not a virtual environment; not touching it")
        shutil.rmtree(venv)  # a half-made venv from an interrupted install
    cache.mkdir(parents=True, exist_ok=True)
    install = [uv, "pip", "install", "-q", "--python", str(python), peer.requirement]
    for step in ([uv, "venv", "-q", str(venv)], install):
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PeerUnavailable(f"`{' '.join(step)}` failed: {(done.stderr or done.stdout).strip()[-500:]}")
    version = _version(python, peer.module)
    if version is None:
        raise PeerUnavailable(f"{peer.module} does not import after installing {peer.requirement} "
                              f"into {venv}")
    (venv / ".installed").write_text(version + "\n")
    return python, version


def _procs() -> dict[int, tuple[int, int, float, int]]:
    """pid → (parent pid, session id, user + system CPU seconds, start time), for every live process
    (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if fields[0] == "Z":
            continue  # exited, not yet reaped: nothing left to stop
        table[int(entry.name)] = (int(fields[1]), int(fields[3]), (int(fields[11]) + int(fields[12])) / tick,
                                  int(fields[19]))
    return table


def tree(root: int, table: dict[int, tuple[int, int, float, int]]) -> set[int]:
    """The root, its descendants, and anything else left in its session (the root leads one)."""
    pids = {pid for pid, (_, sid, _, _) in table.items() if sid == root}
    pids.add(root)
    grew = True
    while grew:
        more = {pid for pid, (ppid, _, _, _) in table.items() if ppid in pids} - pids
        pids |= more
        grew = bool(more)
    return pids & set(table)


class PeerServer:
    """One peer's server, started in its own session by the bench and stopped by it."""

    def __init__(self, peer: Peer, python: Path, port: int, log: Path) -> None:
        self.peer, self.port, self.log = peer, port, log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(peer.command(python, port), cwd=HERE, stdin=subprocess.PIPE,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                         env={**os.environ, **peer.env})

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu_counter(self) -> Callable[[], dict[int, float]]:
        def snapshot() -> dict[int, float]:
            table = _procs()
            return {pid: table[pid][2] for pid in tree(self.proc.pid, table)}
        return snapshot

    def stop(self, timeout: float = 60.0) -> list[str]:
        """Stops the server and its process tree; returns a line per process that survived (none: clean)."""
        table = _procs()
        before = {(pid, table[pid][3]) for pid in tree(self.proc.pid, table)}  # (pid, start time): no reuse
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        if not self.peer.stops_on_eof and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        for last_resort in (signal.SIGTERM, signal.SIGKILL, None):
            try:
                self.proc.wait(timeout)
                break
            except subprocess.TimeoutExpired:
                if last_resort is not None:
                    self.proc.send_signal(last_resort)
                timeout = 10
        deadline = time.monotonic() + 10
        while True:
            table = _procs()
            left = {pid for pid in table if (pid, table[pid][3]) in before or table[pid][1] == self.proc.pid}
            if not left:
                return []
            if time.monotonic() > deadline:
                return [f"pid {pid}: {_cmdline(pid)}" for pid in sorted(left)]
            time.sleep(0.5)  # a moment to exit by themselves (Ray's die with their parent), then SIGKILL
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return "?"

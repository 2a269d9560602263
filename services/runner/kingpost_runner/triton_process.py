"""The replica's tritonserver: its command line, its start, and what Triton says about loading.

The runner starts it as its own child (same user, same cgroup and limits: contained as the runner
is), on three free loopback ports, loading exactly the repository's models (explicit mode, so that
the artifact's own `.kingpost/` folder is never taken for a model). Readiness is Triton's own: the
repository index reports every model READY. A model Triton cannot load is reported with Triton's
own reason (`LoadFailed`), and the runner exits 1 so that the replica fails with that message.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kingpost.triton_install import STUB_PYTHON, STUB_VERSION, TritonHome

from kingpost_runner.local_http import LocalHttp

POLL_SECONDS = 0.1


class LoadFailed(Exception):
    """Triton did not load the repository; the message is Triton's."""


@dataclass(frozen=True)
class Ports:
    http: int
    grpc: int
    metrics: int


def free_ports(count: int = 3) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def argv(home: TritonHome, repository: Path, models: list[str], ports: Ports) -> list[str]:
    return [
        str(home.binary),
        f"--model-repository={repository}",
        f"--backend-directory={home.backends}",
        f"--cache-directory={home.caches}",
        "--model-control-mode=explicit",
        *(f"--load-model={name}" for name in models),
        "--exit-on-error=false",
        "--strict-readiness=true",
        "--http-address=127.0.0.1", f"--http-port={ports.http}",
        "--grpc-address=127.0.0.1", f"--grpc-port={ports.grpc}",
        "--metrics-address=127.0.0.1", f"--metrics-port={ports.metrics}",
        "--allow-gpu-metrics=false",
        "--pinned-memory-pool-byte-size=0",
        "--log-verbose=0",
    ]


def stub_environment(into: Path, home: TritonHome, requirements: str) -> Path:
    """A virtual environment for the Python backend's stub that sees the deployment's own packages
    (`requirements`: its environment's site-packages, config.yaml's requirements as the builder
    locked them) first, then the node's Triton environment (numpy). The stub embeds the system's
    libpython3.11 and ignores PYTHONPATH: it finds its environment as `python3` on PATH, so this is
    a venv by layout (pyvenv.cfg, bin/python3, a .pth file), made in milliseconds."""
    root = into / "triton-python-env"
    site = root / "lib" / f"python{STUB_VERSION}" / "site-packages"
    site.mkdir(parents=True, exist_ok=True)
    for name in ("python3", "python"):
        link = root / "bin" / name
        link.parent.mkdir(exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(STUB_PYTHON)
    (root / "pyvenv.cfg").write_text(f"home = {Path(STUB_PYTHON).parent}\ninclude-system-site-packages = false\n"
                                     f"version = {STUB_VERSION}\n")
    node_site = home.python_env / "lib" / f"python{STUB_VERSION}" / "site-packages"
    (site / "kingpost-deployment.pth").write_text(f"{requirements}\n{node_site}\n")
    return root


def env(home: TritonHome, base: dict[str, str], python_env: Path | None = None) -> dict[str, str]:
    """The runner's environment, with Triton's libraries and the Python backend's environment
    (`python_env`, else the node's) first on PATH: the backend's stub finds its environment there."""
    out = dict(base)
    out["LD_LIBRARY_PATH"] = ":".join(p for p in (str(home.libs), base.get("LD_LIBRARY_PATH", "")) if p)
    out["PATH"] = f"{(python_env or home.python_env) / 'bin'}:{base.get('PATH', '/usr/bin:/bin')}"
    out.pop("PYTHONHOME", None)
    out.pop("PYTHONPATH", None)
    return out


def start(home: TritonHome, repository: Path, models: list[str], python_env: Path | None = None,
          ) -> tuple[subprocess.Popen[bytes], Ports]:
    """Its output goes where the runner's does (the replica's log)."""
    ports = Ports(*free_ports())
    proc = subprocess.Popen(argv(home, repository, models, ports), env=env(home, dict(os.environ), python_env),
                            stdin=subprocess.DEVNULL, cwd=repository)
    return proc, ports


def load_errors(index: list[dict[str, object]], models: list[str]) -> list[str]:
    """Triton's reasons for the models it did not load (from POST /v2/repository/index)."""
    errors = []
    for entry in index:
        if entry.get("name") in models and entry.get("state") == "UNAVAILABLE":
            errors.append(f"Triton could not load model '{entry.get('name')}' version {entry.get('version', '?')}: "
                          f"{entry.get('reason') or 'no reason given'}")
    return errors


def all_ready(index: list[dict[str, object]], models: list[str]) -> bool:
    ready = {e.get("name") for e in index if e.get("state") == "READY"}
    return all(name in ready for name in models)


async def wait_loaded(proc: subprocess.Popen[bytes], http: LocalHttp, models: list[str]) -> None:
    """Return once every model is READY; LoadFailed with Triton's reasons when one failed, or when
    tritonserver exited."""
    while True:
        if proc.poll() is not None:
            raise LoadFailed(f"tritonserver exited with code {proc.returncode} before its models loaded "
                             "(its messages are in the lines above)")
        try:
            response = await http.request("POST", "/v2/repository/index", b"{}", timeout=5.0)
        except (OSError, asyncio.TimeoutError):
            response = None
        if response is not None and response.status == 200:
            index = json.loads(response.body or b"[]")
            if all_ready(index, models):
                return
            errors = load_errors(index, models)
            if errors:
                raise LoadFailed("; ".join(errors))
        await asyncio.sleep(POLL_SECONDS)

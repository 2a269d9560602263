"""Starting a replica's runner: its Truss, Python and system layer made ready (once per agent, reused
by every restart), the process spawned in its own session writing to the replica's log file (or a
pre-started standby told to become it, see standby.py), under its replica's user, working area and
memory cgroup (containment.py), and its readiness awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kingpost import rpc
from kingpost.errors import KingpostError
from kingpost.v1 import runner_pb2, runner_pb2_grpc

from kingpost_worker_agent import archive, metrics, replica_secrets, runner_env, system_layer, truss_resources
from kingpost_worker_agent.artifacts import ArtifactStore
from kingpost_worker_agent.containment import Containment, Sandbox
from kingpost_worker_agent.environments import EnvironmentStore
from kingpost_worker_agent.runner_process import RunnerProcess
from kingpost_worker_agent.runner_users import NoFreeId, RunAs
from kingpost_worker_agent.standby import StandbyPool, instruction

log = logging.getLogger(__name__)

READY_POLL_SECONDS = 0.05


class CannotStart(Exception):
    """No runner could be started (artifact, environment, process); the message says why."""


@dataclass(frozen=True)
class Launch:
    """What a replica's runners start from."""
    truss_dir: Path
    python: str
    system: Path | None
    # Lines for the replica's log (what the environment could not honour).
    warnings: tuple[str, ...] = ()
    # resources.memory, as written and in bytes.
    memory: str = truss_resources.DEFAULT_MEMORY
    memory_bytes: int = 0
    # The groups that may read the artifact, the environment and the system layer (runner users).
    groups: tuple[int, ...] = ()


async def prepare(artifacts: ArtifactStore, environments: EnvironmentStore, containment: Containment,
                  replica_id: str, digest: str) -> Launch:
    t0 = time.monotonic()
    try:
        artifact_dir = await artifacts.materialise(digest)
    except KingpostError as e:
        raise CannotStart(f"cannot materialise artifact {digest}: {e.message}") from e
    except Exception as e:
        log.exception("replica %s: materialising %s failed", replica_id, digest)
        raise CannotStart(f"cannot materialise artifact {digest}: {e}") from e
    truss_dir = archive.truss_root(artifact_dir)
    warnings: list[str] = []
    try:
        python = await environments.python_for(truss_dir, warnings)
        system = await system_layer.materialise(truss_dir, artifacts)  # system_packages, or None
    except KingpostError as e:
        raise CannotStart(e.message) from e
    except Exception as e:
        log.exception("replica %s: building the environment of %s failed", replica_id, digest)
        raise CannotStart(f"cannot build the model's environment: {e}") from e
    try:
        memory, memory_bytes = truss_resources.memory_of((truss_dir / "config.yaml").read_text())
    except (OSError, truss_resources.BadMemory) as e:
        raise CannotStart(f"cannot read the Truss's resources: {e}") from e
    try:  # its runners' users may read these (none: they run as the agent's user)
        groups = containment.content_groups(artifact_dir, Path(python).parent.parent, system)
    except (OSError, NoFreeId) as e:
        raise CannotStart(f"cannot open the model's files to its runner's user: {e}") from e
    metrics.COLD_START_SECONDS.labels("fetch").observe(time.monotonic() - t0)
    return Launch(truss_dir, python, system, tuple(warnings), memory, memory_bytes, groups)


async def spawn(launch: Launch, truss_dir: Path, *, port: int, host: str, environment: str, log_path: Path,
                standby: StandbyPool, base_python: str, sandbox: Sandbox, http_port: int = 0,
                gpus: tuple[int, ...] = (), secrets: tuple[tuple[str, str], ...] = (),
                request_logging: tuple[float, int] = (0.0, 0)) -> RunnerProcess:
    """Start a runner serving `truss_dir` on `port` (RunnerService) and `http_port` (its HTTP data
    plane; 0: none), its output appended to `log_path`, in `sandbox`, seeing only the GPUs `gpus`,
    with `secrets` in its own secrets directory, logging the share `request_logging` of its
    requests. Raises OSError."""
    secrets_dir = replica_secrets.write(sandbox.work_area, sandbox.uid, secrets)
    argv = ["--truss", str(truss_dir), "--port", str(port), "--host", host, "--secrets-dir", str(secrets_dir),
            *(["--http-port", str(http_port)] if http_port else []), *sandbox.argv()]
    per_replica = ({"KINGPOST_ENVIRONMENT": environment} if environment else {}) | sandbox.env() \
        | runner_env.gpu_env(gpus) | runner_env.request_logging_env(*request_logging)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if launch.python == base_python and launch.system is None:  # a standby's PATH is fixed
        proc = await standby.take(launch.python)
        if proc is not None and proc.stdin is not None:
            try:
                sandbox.join(proc.pid)  # before it reads the Truss: all of that counts
                proc.stdin.write(instruction(argv, per_replica, truss_dir, log_path, sandbox.run_as))
                await proc.stdin.drain()
                proc.stdin.close()
                return RunnerProcess.started(proc)
            except (OSError, ConnectionError):  # it died just now (or cannot join): start a fresh one
                log.info("the standby runner was gone; starting a fresh one for %s", log_path.stem)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
    env = runner_env.runner_env(os.environ, own_user=sandbox.run_as is not None) | per_replica
    if launch.system is not None:
        env.update(system_layer.layer_env(launch.system, env))
    proc = await asyncio.to_thread(_popen, [launch.python, "-m", "kingpost_runner", *argv], truss_dir, env,
                                   log_path, sandbox.run_as)
    try:
        sandbox.join(proc.pid)
    except OSError:
        proc.kill()
        await asyncio.to_thread(proc.wait)
        raise
    return RunnerProcess.spawned(proc)


def _popen(argv: list[str], cwd: Path, env: dict[str, str], log_path: Path, run_as: RunAs | None,
           ) -> subprocess.Popen[bytes]:
    """subprocess, not the event loop's: uvloop's cannot set the user, and subprocess sets it in C
    between fork and exec (no Python runs there, unlike preexec_fn)."""
    with open(log_path, "ab") as output:  # the runner writes here itself, agent or no agent
        return subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True, user=run_as.uid if run_as else None, group=run_as.gid if run_as else None,
            extra_groups=list(run_as.groups) if run_as else None,
        )


async def wait_ready(runner: RunnerProcess, port: int, hint: asyncio.Event,
                     on_port_open: Callable[[], None] = lambda: None) -> bool:
    """Poll until the runner says it is ready (True) or its process ends (False); at once when `hint`
    is set, else every READY_POLL_SECONDS."""
    channel = None
    try:
        while runner.alive:
            if channel is None:
                if await _port_open("127.0.0.1", port):
                    on_port_open()
                    channel = rpc.channel(f"127.0.0.1:{port}")
                    continue
            else:
                stub = runner_pb2_grpc.RunnerServiceStub(channel)
                try:
                    reply = await rpc.call(stub.Ready, runner_pb2.ReadyRequest(), timeout=2.0, attempts=1)
                except KingpostError:
                    reply = None
                if reply is not None and reply.ready:
                    return runner.alive
            hinted = asyncio.ensure_future(hint.wait())
            await asyncio.wait({runner.exited, hinted}, timeout=READY_POLL_SECONDS)
            hinted.cancel()
            hint.clear()
        return False
    finally:
        if channel is not None:
            await channel.close()


async def addresses(advertise_host: str, port: int, http_port: int) -> tuple[str, str]:
    """Where a ready runner is reached: RunnerService, and its HTTP data plane ("" when it serves none:
    a Triton runner does not listen there; a runner opens it before RunnerService answers Ready)."""
    if not http_port or not await _port_open("127.0.0.1", http_port):
        return f"{advertise_host}:{port}", ""
    return f"{advertise_host}:{port}", f"{advertise_host}:{http_port}"


async def _port_open(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=0.5)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True

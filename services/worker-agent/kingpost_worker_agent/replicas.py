"""Runner processes: start, watch, stop — and report each change as a ReplicaEvent.

A replica's life is one task (`_run`): fetch the artifact, start the runner in its own process
group (or hand the instruction to a pre-started standby runner, see standby.py), ask Ready as soon
as the runner logs that it listens / that its model is ready (and every 50 ms regardless), then wait
for the process to end. Its stdout and stderr lines go
to a per-replica log file and to NATS as LogLines. Stopping sends SIGTERM to the whole group,
then SIGKILL after the grace period; runners also get SIGKILL from the kernel if the agent dies
(PR_SET_PDEATHSIG), so no runner outlives its agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from google.protobuf.timestamp_pb2 import Timestamp

from kingpost import rpc
from kingpost.bus import Publisher, subjects
from kingpost.errors import KingpostError, Unavailable
from kingpost.v1 import events_pb2, runner_pb2, runner_pb2_grpc

from kingpost_worker_agent import archive, dev_patch, metrics, runner_log, system_layer
from kingpost_worker_agent.artifacts import ArtifactStore
from kingpost_worker_agent.environments import EnvironmentStore
from kingpost_worker_agent.ports import PortAllocator
from kingpost_worker_agent.standby import StandbyPool, instruction

log = logging.getLogger(__name__)

STARTING = events_pb2.REPLICA_STATE_STARTING
READY = events_pb2.REPLICA_STATE_READY
FAILED = events_pb2.REPLICA_STATE_FAILED
STOPPED = events_pb2.REPLICA_STATE_STOPPED

READY_POLL_SECONDS = 0.05
# Lines the runner logs when its port opens and when its model is ready: ask Ready at once.
READY_HINTS = ("runner listening on", "model ready in")
STREAM_LIMIT = 1 << 20


@dataclass(frozen=True)
class ReplicaSpec:
    replica_id: str
    deployment_id: str
    model_id: str = ""
    artifact_digest: str = ""
    environment: str = ""


@dataclass
class Replica:
    spec: ReplicaSpec
    state: int = STARTING
    phase: str = "fetch"  # fetch → spawn → running → done
    port: int = 0
    # When the runner's port first accepted a connection (monotonic): the process phase ends, load begins.
    port_open_at: float = 0.0
    address: str = ""
    process: asyncio.subprocess.Process | None = None
    exited: asyncio.Task[int] | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=runner_log.TAIL_LINES))
    stopping: bool = False
    task: asyncio.Task[None] | None = None
    stop_task: asyncio.Task[None] | None = None
    # Set when the runner logs one of READY_HINTS.
    hint: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None and self.process.returncode is None else 0


def now_ts() -> Timestamp:
    ts = Timestamp()
    ts.GetCurrentTime()
    return ts


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class ReplicaSupervisor:
    def __init__(
        self,
        *,
        node_id: str,
        artifacts: ArtifactStore,
        publisher: Publisher,
        work_dir: Path,
        runner_python: str = sys.executable,
        advertise_host: str = "127.0.0.1",
        stop_grace_seconds: float = 10.0,
        ports: PortAllocator | None = None,
        environments: EnvironmentStore | None = None,
        standby_runners: int = 0,
    ) -> None:
        self._environments = environments or EnvironmentStore(work_dir / "envs", artifacts, runner_python)
        self._node_id = node_id
        self._artifacts = artifacts
        self._publisher = publisher
        self._logs_dir = work_dir / "logs"
        self._advertise_host = advertise_host
        # Runners listen on loopback unless other machines must reach them.
        self._bind_host = "127.0.0.1" if advertise_host in ("127.0.0.1", "localhost", "::1") else "0.0.0.0"
        self._grace = stop_grace_seconds
        self._ports = ports or PortAllocator()
        self._replicas: dict[str, Replica] = {}
        self._closed = False
        # Pre-started runners in the base environment (Trusses without requirements), filled after
        # the first replica is ready and after each one taken.
        self.standby = StandbyPool(work_dir / "standby", self._runner_env, standby_runners)

    # --- commands ------------------------------------------------------------------------------

    async def start(self, spec: ReplicaSpec) -> None:
        """Begin starting a replica and return; progress arrives as ReplicaEvents. Idempotent."""
        if self._closed:
            raise Unavailable("this agent is shutting down")
        if spec.replica_id in self._replicas:
            return
        replica = Replica(spec=spec)
        self._replicas[spec.replica_id] = replica
        self._update_gauge()
        replica.task = asyncio.create_task(self._run(replica), name=f"replica-{spec.replica_id}")

    async def stop(self, replica_id: str) -> None:
        """Stop a replica and wait until its processes are gone. Unknown ids are a no-op."""
        replica = self._replicas.get(replica_id)
        if replica is None:
            return
        if replica.stop_task is None:
            replica.stop_task = asyncio.create_task(self._stop(replica))
        await asyncio.shield(replica.stop_task)

    async def shutdown(self) -> None:
        """Stop every replica and wait for all of them: the agent leaves no runner behind."""
        self._closed = True
        await asyncio.gather(*(self.stop(rid) for rid in list(self._replicas)), return_exceptions=True)
        await self.standby.close()

    def list(self) -> list[Replica]:
        return list(self._replicas.values())

    def running_ids(self) -> list[str]:
        """Replicas with a runner that is starting or serving."""
        return [r.spec.replica_id for r in self._replicas.values() if r.state in (STARTING, READY)]

    async def patch(
        self, replica_id: str, files: dict[str, bytes], deleted: list[str]
    ) -> runner_pb2.ReloadResponse:
        """Live reload (dev_patch.py): patch the replica's own copy of its Truss, have its runner reload."""
        r = self._replicas.get(replica_id)
        if r is None or r.state != READY or r.port == 0:
            raise Unavailable(f"replica {replica_id} is not running here")
        source = self._artifacts.cached(r.spec.artifact_digest)
        if source is None:
            raise Unavailable(f"the artifact of replica {replica_id} is no longer on this node")
        copy_dir = self._logs_dir.parent / dev_patch.DEV_DIR / replica_id
        await asyncio.to_thread(dev_patch.private_copy, archive.truss_root(source), copy_dir)
        await asyncio.to_thread(dev_patch.apply, copy_dir, files, deleted)
        async with rpc.channel(f"127.0.0.1:{r.port}") as channel:
            stub = runner_pb2_grpc.RunnerServiceStub(channel)
            return await rpc.call(stub.Reload, runner_pb2.ReloadRequest(truss_dir=str(copy_dir)), timeout=600.0,
                                  attempts=1)

    # --- one replica's life --------------------------------------------------------------------

    async def _run(self, r: Replica) -> None:
        spec = r.spec
        await self._event(r, STARTING)
        t0 = time.monotonic()
        try:
            artifact_dir = await self._artifacts.materialise(spec.artifact_digest)
        except asyncio.CancelledError:
            raise
        except KingpostError as e:
            await self._fail(r, f"cannot materialise artifact {spec.artifact_digest}: {e.message}")
            return
        except Exception as e:
            log.exception("replica %s: materialising %s failed", spec.replica_id, spec.artifact_digest)
            await self._fail(r, f"cannot materialise artifact {spec.artifact_digest}: {e}")
            return
        truss_dir = archive.truss_root(artifact_dir)
        warnings: list[str] = []
        try:
            python = await self._environments.python_for(truss_dir, warnings)
            system = await system_layer.materialise(truss_dir, self._artifacts)  # system_packages, or None
        except asyncio.CancelledError:
            raise
        except KingpostError as e:
            await self._fail(r, e.message)
            return
        except Exception as e:
            log.exception("replica %s: building the environment of %s failed", spec.replica_id, spec.artifact_digest)
            await self._fail(r, f"cannot build the model's environment: {e}")
            return
        t1 = time.monotonic()
        metrics.COLD_START_SECONDS.labels("fetch").observe(t1 - t0)

        r.phase = "spawn"
        r.port = self._ports.allocate()
        logfile: IO[bytes] | None = None
        try:
            self._logs_dir.mkdir(parents=True, exist_ok=True)
            logfile = open(self._logs_dir / f"{spec.replica_id}.log", "ab")
            for warning in warnings:
                await self._note(r, logfile, f"kingpost: WARNING {warning}")
            try:
                r.process = await self._spawn(r, truss_dir, python, system)
            except OSError as e:
                await self._fail(r, f"cannot start the runner ({python}): {e}")
                return
            r.exited = asyncio.create_task(r.process.wait())
            r.phase = "running"
            readers = [
                asyncio.create_task(self._pump(r, r.process.stdout, logfile, stderr=False)),
                asyncio.create_task(self._pump(r, r.process.stderr, logfile, stderr=True)),
            ]
            if r.stopping:  # StopReplica arrived while the process was being spawned
                await self._terminate(r)
            ready = await self._wait_ready(r, t1)
            if python == self._environments.base_python and not self._closed:
                self.standby.refill(python)
            if ready:
                r.address = f"{self._advertise_host}:{r.port}"
                metrics.COLD_START_SECONDS.labels("load").observe(time.monotonic() - (r.port_open_at or t1))
                await self._event(r, READY)
            code = await r.exited
            await asyncio.gather(*readers, return_exceptions=True)
            _kill_group(r.process.pid, signal.SIGKILL)  # anything the runner left in its group
            if r.stopping:
                metrics.REPLICA_EXITS.labels("stopped").inc()
                return
            metrics.REPLICA_EXITS.labels("failed" if ready else "failed_to_start").inc()
            reason = (f"runner exited with code {code}" + ("" if ready else " before it was ready")
                      if code >= 0 else f"runner was killed by signal {-code}")
            await self._fail(r, runner_log.failure_message(reason, r.tail))
        finally:
            r.phase = "done"
            self._ports.release(r.port)
            if logfile is not None:
                logfile.close()

    async def _spawn(self, r: Replica, truss_dir: Path, python: str,
                     system: Path | None = None) -> asyncio.subprocess.Process:
        argv = ["--truss", str(truss_dir), "--port", str(r.port), "--host", self._bind_host]
        per_replica = {"KINGPOST_ENVIRONMENT": r.spec.environment} if r.spec.environment else {}
        if python == self._environments.base_python and system is None:  # a standby's PATH is fixed
            standby = await self.standby.take(python)
            if standby is not None and standby.stdin is not None:
                try:
                    standby.stdin.write(instruction(argv, per_replica, truss_dir))
                    await standby.stdin.drain()
                    standby.stdin.close()
                    return standby
                except (OSError, ConnectionError):  # it died just now: start a fresh one
                    log.info("replica %s: the standby runner was gone; starting a fresh one", r.spec.replica_id)
        env = self._runner_env(python)
        env.update(per_replica)
        if system is not None:
            env.update(system_layer.layer_env(system, env))
        return await asyncio.create_subprocess_exec(
            python, "-m", "kingpost_runner", *argv,
            cwd=truss_dir, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True, limit=STREAM_LIMIT,
        )

    def _runner_env(self, python: str) -> dict[str, str]:
        """A runner's environment, less what is per replica (KINGPOST_ENVIRONMENT)."""
        env = dict(os.environ)
        for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):  # the model's own environment: nothing leaks in
            env.pop(name, None)
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("KINGPOST_ENVIRONMENT", None)
        # The runner asks the kernel to kill it when this agent dies (PR_SET_PDEATHSIG). It does so
        # itself: a preexec_fn would run Python between fork and exec in a process full of gRPC
        # threads, which crashed runners (SIGSEGV before they wrote a line).
        env["KINGPOST_PARENT_PID"] = str(os.getpid())
        return env

    async def _wait_ready(self, r: Replica, spawned_at: float) -> bool:
        """Poll until the runner says it is ready (True) or its process ends (False)."""
        assert r.exited is not None
        channel = None
        try:
            while not r.exited.done():
                if channel is None:
                    if await _port_open("127.0.0.1", r.port):
                        r.port_open_at = time.monotonic()
                        metrics.COLD_START_SECONDS.labels("process").observe(r.port_open_at - spawned_at)
                        channel = rpc.channel(f"127.0.0.1:{r.port}")
                        continue
                else:
                    stub = runner_pb2_grpc.RunnerServiceStub(channel)
                    try:
                        reply = await rpc.call(stub.Ready, runner_pb2.ReadyRequest(), timeout=2.0, attempts=1)
                    except KingpostError:
                        reply = None
                    if reply is not None and reply.ready:
                        return not r.exited.done()
                hint = asyncio.ensure_future(r.hint.wait())
                await asyncio.wait({r.exited, hint}, timeout=READY_POLL_SECONDS)
                hint.cancel()
                r.hint.clear()
            return False
        finally:
            if channel is not None:
                await channel.close()

    async def _pump(self, r: Replica, stream: asyncio.StreamReader | None, logfile: IO[bytes], *,
                    stderr: bool) -> None:
        """Every line the runner writes: to the log file, the failure tail, and NATS."""
        if stream is None:
            return
        subject = subjects.replica_log_subject(r.spec.deployment_id, r.spec.replica_id)
        while True:
            try:
                raw = await stream.readline()
            except (ValueError, asyncio.LimitOverrunError):
                raw = await stream.read(STREAM_LIMIT)
            if not raw:
                return
            logfile.write(raw if raw.endswith(b"\n") else raw + b"\n")
            logfile.flush()
            text = runner_log.clip(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
            r.tail.append(text)
            if any(h in text for h in READY_HINTS):
                r.hint.set()
            line = events_pb2.LogLine(
                at=now_ts(), source="replica", deployment_id=r.spec.deployment_id,
                replica_id=r.spec.replica_id, level=runner_log.level_of(text, stderr=stderr), text=text,
            )
            try:
                await self._publisher.publish_fast(subject, line)
            except Exception:  # a NATS hiccup must never block the runner's pipe
                log.debug("dropping a log line of %s", r.spec.replica_id, exc_info=True)

    async def _note(self, r: Replica, logfile: IO[bytes], text: str) -> None:
        """A line of the agent's own in the replica's log (file and NATS)."""
        logfile.write(text.encode() + b"\n")
        line = events_pb2.LogLine(at=now_ts(), source="replica", deployment_id=r.spec.deployment_id,
                                  replica_id=r.spec.replica_id, level="WARNING", text=text)
        with contextlib.suppress(Exception):
            await self._publisher.publish_fast(
                subjects.replica_log_subject(r.spec.deployment_id, r.spec.replica_id), line)

    # --- stopping ------------------------------------------------------------------------------

    async def _stop(self, r: Replica) -> None:
        r.stopping = True
        if r.phase == "fetch" and r.task is not None:
            r.task.cancel()
        elif r.process is not None and r.exited is not None and not r.exited.done():
            await self._terminate(r)
        if r.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({r.task})
        self._replicas.pop(r.spec.replica_id, None)
        shutil.rmtree(self._logs_dir.parent / dev_patch.DEV_DIR / r.spec.replica_id, ignore_errors=True)
        r.address = ""
        await self._event(r, STOPPED)

    async def _terminate(self, r: Replica) -> None:
        """SIGTERM the runner's group, SIGKILL it after the grace period; return once it has exited."""
        assert r.process is not None and r.exited is not None
        pgid = r.process.pid
        _kill_group(pgid, signal.SIGTERM)
        done, _ = await asyncio.wait({r.exited}, timeout=self._grace)
        if not done:
            log.warning("replica %s did not stop within %.1fs of SIGTERM; killing it",
                        r.spec.replica_id, self._grace)
            _kill_group(pgid, signal.SIGKILL)
            await asyncio.wait({r.exited})
        _kill_group(pgid, signal.SIGKILL)

    # --- events --------------------------------------------------------------------------------

    async def _fail(self, r: Replica, message: str) -> None:
        if r.stopping:
            return
        log.warning("replica %s failed: %s", r.spec.replica_id, message.splitlines()[0] if message else "")
        await self._event(r, FAILED, message)

    async def _event(self, r: Replica, state: int, message: str = "") -> None:
        r.state = state
        self._update_gauge()
        event = events_pb2.ReplicaEvent(
            replica_id=r.spec.replica_id, deployment_id=r.spec.deployment_id, node_id=self._node_id,
            state=state, address=r.address if state == READY else "", message=message, at=now_ts(),
        )
        try:
            await self._publisher.publish(subjects.replica_subject(r.spec.replica_id), event)
        except Exception:
            log.exception("cannot publish %s for replica %s", events_pb2.ReplicaState.Name(state),
                          r.spec.replica_id)

    def _update_gauge(self) -> None:
        counts = {name: 0 for name in ("STARTING", "READY", "FAILED")}
        for r in self._replicas.values():
            name = events_pb2.ReplicaState.Name(r.state).removeprefix("REPLICA_STATE_")
            if name in counts:
                counts[name] += 1
        for name, n in counts.items():
            metrics.REPLICAS.labels(name.lower()).set(n)


async def _port_open(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=0.5)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True

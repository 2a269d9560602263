"""Runner processes: start, watch, restart, adopt, stop — and report each change as a ReplicaEvent.

A replica's life is one task (`_run`): fetch the artifact and make its environment, start the runner
(runner_launch.py), ask Ready as soon as the runner logs that it listens / that its model is ready
(and every 50 ms regardless), then wait for the process to end. A runner that ends after its replica
was READY is started again (restart_backoff.py: at once, then backing off while it keeps ending);
one that ends before its replica was ever READY FAILS it (the model does not load).

Runners outlive the agent, as containers outlive a kubelet: each writes its stdout and stderr straight
into its replica's log file, which the agent follows into NATS LogLines (runner_output.py), and each
replica with a runner has a record on disk (replica_records.py). An agent that dies (kill -9) leaves
its runners serving; the next agent on the same work dir adopts them (`adopt`) before its first
heartbeat. A clean shutdown stops them all. Idle standby runners still die with the agent. Each
runner starts contained: its replica's own user, working area and memory cgroup (containment.py).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from kingpost import rpc
from kingpost.bus import Publisher, subjects
from kingpost.errors import Unavailable
from kingpost.v1 import events_pb2, runner_pb2, runner_pb2_grpc

from kingpost_worker_agent import archive, dev_patch, metrics, runner_launch, runner_log
from kingpost_worker_agent.artifacts import ArtifactStore
from kingpost_worker_agent.containment import Containment
from kingpost_worker_agent.environments import EnvironmentStore
from kingpost_worker_agent.ports import PortAllocator
from kingpost_worker_agent.replica_events import FAILED, READY, RESTARTING, STARTING, STOPPED, replica_event
from kingpost_worker_agent.replica_events import runner_exit, update_gauge
from kingpost_worker_agent.replica_records import ReplicaRecords, lock_work_dir
from kingpost_worker_agent.replica_state import Replica, ReplicaSpec
from kingpost_worker_agent.restart_backoff import DEFAULT_POLICY, Backoff, RestartPolicy, next_restart
from kingpost_worker_agent.runner_launch import CannotStart, Launch
from kingpost_worker_agent.runner_output import RunnerOutput, end_of, now_ts
from kingpost_worker_agent.runner_process import RunnerProcess, describe_exit
from kingpost_worker_agent.runner_users import NoFreeId
from kingpost_worker_agent.standby import StandbyPool

__all__ = ["Publisher", "Replica", "ReplicaSpec", "ReplicaSupervisor", "now_ts"]

log = logging.getLogger(__name__)

# How often the agent reads a runner's log file: often while it starts (the ready hints), less after.
FOLLOW_STARTING_SECONDS = 0.01
FOLLOW_SECONDS = 0.1
# How often, at most, a replica's record notes how far its output has been shipped.
CHECKPOINT_SECONDS = 1.0


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
        restart_policy: RestartPolicy = DEFAULT_POLICY,
        clock: Callable[[], float] = time.time,
        containment: Containment | None = None,
    ) -> None:
        self._environments = environments or EnvironmentStore(work_dir / "envs", artifacts, runner_python)
        self._node_id = node_id
        self._artifacts = artifacts
        self._publisher = publisher
        self._work_dir = work_dir
        self._records = ReplicaRecords(work_dir / "replicas")
        self._advertise_host = advertise_host
        # Runners listen on loopback unless other machines must reach them.
        self._bind_host = "127.0.0.1" if advertise_host in ("127.0.0.1", "localhost", "::1") else "0.0.0.0"
        self._grace = stop_grace_seconds
        self._ports = ports or PortAllocator()
        self._policy = restart_policy
        self._clock = clock
        self._replicas: dict[str, Replica] = {}
        self._closed = False
        self._work_dir_lock: IO[str] | None = None
        self._containment = containment or Containment.none(work_dir)
        # Pre-started runners in the base environment (Trusses without requirements), filled after
        # the first replica is ready and after each one taken.
        self.standby = StandbyPool(work_dir / "standby", self._containment.runner_env, standby_runners)

    # --- commands ------------------------------------------------------------------------------

    async def start(self, spec: ReplicaSpec) -> None:
        """Begin starting a replica and return; progress arrives as ReplicaEvents. Idempotent."""
        if self._closed:
            raise Unavailable("this agent is shutting down")
        if spec.replica_id in self._replicas:
            return
        self._track(Replica(spec=spec, output=self._output(spec, end_of(self._log_path(spec.replica_id)))), None)

    async def adopt(self) -> list[str]:
        """Take over the replicas the agent before this one left on this work dir: a runner that is
        alive and is the one recorded is watched again (READY once it answers); a replica whose runner
        has gone is started again (a restart when it had been READY, else a first start). Call once,
        before the first heartbeat, so that it lists them. Returns the ids of the runners adopted."""
        self._work_dir_lock = lock_work_dir(self._work_dir)
        adopted = []
        for rec in self._records.read_all():
            spec = ReplicaSpec(rec.replica_id, rec.deployment_id, rec.model_id, rec.artifact_digest,
                               rec.environment, tuple(rec.gpus), request_logging=rec.request_logging_settings())
            r = Replica(spec=spec, output=self._output(spec, rec.log_offset), ready_once=rec.ready_once,
                        ready_since=rec.ready_since, backoff=Backoff(rec.restarts, rec.streak), uid=rec.uid,
                        cgroup=Path(rec.cgroup) if rec.cgroup else None, memory=rec.memory)
            runner = RunnerProcess.adopt(rec.pid, rec.start_ticks)
            if runner is not None:
                r.runner, r.port, r.http_port, r.phase = runner, rec.port, rec.http_port, "running"
                r.oom_kills = self._containment.oom_kills(r.cgroup)
                self._ports.reserve(rec.port, rec.http_port)
                adopted.append(spec.replica_id)
            log.info("replica %s: %s", spec.replica_id,
                     f"adopted its runner (pid {rec.pid})" if runner else "its runner is gone; starting it again")
            self._track(r, runner)
        return adopted

    async def stop(self, replica_id: str) -> None:
        """Stop a replica and wait until its processes are gone. Unknown ids are a no-op."""
        replica = self._replicas.get(replica_id)
        if replica is None:
            return
        if replica.stop_task is None:
            replica.stop_task = asyncio.create_task(self._stop(replica))
        await asyncio.shield(replica.stop_task)

    async def shutdown(self) -> None:
        """Stop every replica and wait for all of them: a clean shutdown leaves no runner behind."""
        self._closed = True
        await asyncio.gather(*(self.stop(rid) for rid in list(self._replicas)), return_exceptions=True)
        await self.standby.close()
        self._release_work_dir()

    async def detach(self) -> None:
        """Stop watching every replica but leave its runner serving, as an agent that dies does; the
        next agent on this work dir adopts them. Idle standby runners are stopped."""
        self._closed = True
        replicas, self._replicas = list(self._replicas.values()), {}
        tasks = [t for r in replicas for t in (r.task, r.follow_task) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for r in replicas:
            if r.runner is not None:
                r.runner.exited.cancel()
            if r.runner is not None or r.ready_once:
                self._save(r)
            r.output.close()
        await self.standby.close()
        self._release_work_dir()

    def list(self) -> list[Replica]:
        return list(self._replicas.values())

    def running_ids(self) -> list[str]:
        """Replicas this node runs: starting, serving, or being restarted (all but FAILED)."""
        return [r.spec.replica_id for r in self._replicas.values() if r.state in (STARTING, READY, RESTARTING)]

    async def patch(
        self, replica_id: str, files: dict[str, bytes], deleted: list[str]
    ) -> runner_pb2.ReloadResponse:
        """Live reload (dev_patch.py): patch the replica's own copy of its Truss, have its runner reload.
        A restarted runner starts from that copy."""
        r = self._replicas.get(replica_id)
        if r is None or r.state != READY or r.port == 0:
            raise Unavailable(f"replica {replica_id} is not running here")
        source = self._artifacts.cached(r.spec.artifact_digest)
        if source is None:
            raise Unavailable(f"the artifact of replica {replica_id} is no longer on this node")
        copy_dir = self._dev_copy(replica_id)
        await asyncio.to_thread(dev_patch.private_copy, archive.truss_root(source), copy_dir)
        self._containment.open_to(copy_dir, r.uid)
        await asyncio.to_thread(dev_patch.apply, copy_dir, files, deleted)
        async with rpc.channel(f"127.0.0.1:{r.port}") as channel:
            stub = runner_pb2_grpc.RunnerServiceStub(channel)
            return await rpc.call(stub.Reload, runner_pb2.ReloadRequest(truss_dir=str(copy_dir)), timeout=600.0,
                                  attempts=1)

    # --- one replica's life --------------------------------------------------------------------

    def _track(self, r: Replica, runner: RunnerProcess | None) -> None:
        self._replicas[r.spec.replica_id] = r
        self._update_gauge()
        r.follow_task = asyncio.create_task(self._follow(r), name=f"replica-output-{r.spec.replica_id}")
        r.task = asyncio.create_task(self._run(r, runner), name=f"replica-{r.spec.replica_id}")

    async def _run(self, r: Replica, runner: RunnerProcess | None) -> None:
        """`runner`: one adopted from the agent before, else None (start one)."""
        launch: Launch | None = None
        try:
            if runner is None and r.ready_once:  # adopted, but its runner ended while no agent watched
                await r.output.drain(final=True)
                await self._restart_later(r, "runner ended while the agent was away", None,
                                          ready_since=r.ready_since or None)
            elif runner is None:
                await self._event(r, STARTING)
            while not r.stopping:
                spawned_at = None  # an adopted runner has no cold start to time
                if runner is None:
                    try:
                        if launch is None:
                            launch = await runner_launch.prepare(self._artifacts, self._environments,
                                                                 self._containment, r.spec.replica_id,
                                                                 r.spec.artifact_digest)
                            for warning in launch.warnings:
                                r.output.note(f"kingpost: WARNING {warning}")
                        spawned_at = time.monotonic()
                        runner = await self._start_runner(r, launch)
                    except CannotStart as e:
                        if not r.ready_once:
                            await self._fail(r, str(e))
                            return
                        r.output.tail.append(f"kingpost: {e}")
                        await self._restart_later(r, "the runner could not be started", None, ready_since=None)
                        continue
                ready_since = await self._serve(r, runner, launch, spawned_at)
                code = runner.exited.result()
                runner.kill_group(signal.SIGKILL)  # anything the runner left in its group
                self._containment.sweep(r.cgroup, r.uid)  # or in its cgroup, or as its user
                runner = r.runner = None
                why = describe_exit(code) + self._containment.out_of_memory(r.cgroup, r.oom_kills, r.memory)
                self._ports.release(r.port, r.http_port)
                await r.output.drain(final=True)
                if r.stopping:
                    metrics.REPLICA_EXITS.labels("stopped").inc()
                    return
                if not r.ready_once:
                    metrics.REPLICA_EXITS.labels("failed_to_start").inc()
                    await self._fail(r, runner_log.failure_message(
                        f"{why} before it was ready", r.output.tail))
                    return
                metrics.REPLICA_EXITS.labels("restarted").inc()
                await self._restart_later(r, why, code, ready_since=ready_since)
        finally:
            r.phase = "done"
            self._ports.release(r.port, r.http_port)

    async def _start_runner(self, r: Replica, launch: Launch) -> RunnerProcess:
        r.phase = "spawn"
        await r.output.drain()
        r.output.tail.clear()  # from here on, the lines of this runner
        r.port, r.http_port = self._ports.allocate(), self._ports.allocate()  # RunnerService, HTTP data plane
        dev_copy = self._dev_copy(r.spec.replica_id)  # a development replica keeps its live edits
        try:
            sandbox = self._containment.sandbox(  # its user (kept across restarts), working area, cgroup
                r.spec.replica_id, r.uid, r.cgroup, {x.uid for x in self._replicas.values()}, launch.groups,
                launch.memory, launch.memory_bytes, own=[dev_copy] if dev_copy.is_dir() else [])
            r.uid, r.cgroup, r.memory = sandbox.uid, sandbox.cgroup, launch.memory
            r.output.note(f"kingpost: {sandbox.describe()}")
            runner = await runner_launch.spawn(
                launch, dev_copy if dev_copy.is_dir() else launch.truss_dir, port=r.port, http_port=r.http_port,
                host=self._bind_host, environment=r.spec.environment, gpus=r.spec.gpus, secrets=r.spec.secrets,
                request_logging=r.spec.request_logging, log_path=self._log_path(r.spec.replica_id),
                standby=self.standby, base_python=self._environments.base_python, sandbox=sandbox)
        except (OSError, NoFreeId) as e:
            self._ports.release(r.port, r.http_port)
            raise CannotStart(f"cannot start the runner ({launch.python}): {e}") from e
        r.runner, r.phase, r.port_open_at = runner, "running", 0.0
        r.oom_kills = self._containment.oom_kills(r.cgroup)
        self._save(r)
        if r.stopping:  # StopReplica arrived while the process was being spawned
            await runner.terminate(self._grace)
        return runner

    async def _serve(self, r: Replica, runner: RunnerProcess, launch: Launch | None,
                     spawned_at: float | None) -> float | None:
        """Until the runner ends: READY once it answers. Returns since when it was ready (None: never)."""

        def port_open() -> None:
            r.port_open_at = time.monotonic()
            if spawned_at is not None:
                metrics.COLD_START_SECONDS.labels("process").observe(r.port_open_at - spawned_at)

        ready = await runner_launch.wait_ready(runner, r.port, r.output.hint, port_open)
        if launch is not None and launch.python == self._environments.base_python and not self._closed:
            self.standby.refill(launch.python)
        if not ready:
            return None
        r.address, r.http_address = await runner_launch.addresses(self._advertise_host, r.port, r.http_port)
        r.ready_once, r.ready_since = True, self._clock()
        if spawned_at is not None:
            metrics.COLD_START_SECONDS.labels("load").observe(time.monotonic() - (r.port_open_at or spawned_at))
        self._save(r)
        await self._event(r, READY)
        await asyncio.wait({runner.exited})
        return r.ready_since

    async def _restart_later(self, r: Replica, reason: str, code: int | None, *,
                             ready_since: float | None) -> None:
        """The runner ended (`code`: its returncode, None when unknown) after its replica was READY
        once: RESTARTING now, the next runner when the backoff says (StopReplica cancels the wait)."""
        now = self._clock()
        restart = next_restart(self._policy, r.backoff, ready_since=ready_since, now=now)
        tail = r.output.tail
        r.backoff, r.next_restart_at, r.ready_since = restart.backoff, restart.at, 0.0
        r.address = r.http_address = ""
        r.last_exit = runner_exit(code, now, list(tail))
        self._save(r)
        delay = restart.at - now
        log.warning("replica %s: %s; restart %d in %.1f s", r.spec.replica_id, reason, r.backoff.restarts, delay)
        await self._event(r, RESTARTING, runner_log.failure_message(reason, tail), at=now)
        r.output.note(f"kingpost: WARNING {reason}; restart {r.backoff.restarts} in {delay:.1f} s")
        r.phase = "backoff"
        await asyncio.sleep(max(0.0, restart.at - self._clock()))

    # --- output and records --------------------------------------------------------------------

    def _output(self, spec: ReplicaSpec, offset: int) -> RunnerOutput:
        return RunnerOutput(self._log_path(spec.replica_id), offset, self._publisher, spec.deployment_id,
                            spec.replica_id)

    async def _follow(self, r: Replica) -> None:
        """Ship the runner's output as it arrives, for the replica's whole life on this agent."""
        try:
            while True:
                await r.output.drain()
                if r.runner is not None and r.output.shipped != r.saved_offset \
                        and time.monotonic() - r.saved_at >= CHECKPOINT_SECONDS:
                    self._save(r)
                starting = r.phase in ("spawn", "running") and r.state != READY
                await asyncio.sleep(FOLLOW_STARTING_SECONDS if starting else FOLLOW_SECONDS)
        finally:
            r.output.close()

    def _save(self, r: Replica) -> None:
        """Write the replica's record: what the next agent needs to adopt it."""
        self._records.write(r.record())
        r.saved_at, r.saved_offset = time.monotonic(), r.output.shipped

    def _log_path(self, replica_id: str) -> Path:
        return self._work_dir / "logs" / f"{replica_id}.log"

    def _dev_copy(self, replica_id: str) -> Path:
        return self._work_dir / dev_patch.DEV_DIR / replica_id

    def _release_work_dir(self) -> None:
        self._containment.close()
        if self._work_dir_lock is not None:
            self._work_dir_lock.close()
            self._work_dir_lock = None

    # --- stopping ------------------------------------------------------------------------------

    async def _stop(self, r: Replica) -> None:
        r.stopping = True
        if r.runner is not None and r.runner.alive:
            await r.runner.terminate(self._grace)
        elif r.phase != "spawn" and r.task is not None:  # no runner to stop (mid-spawn, `_run` stops it)
            r.task.cancel()
        if r.task is not None:
            await asyncio.wait({r.task})
        if r.follow_task is not None:
            r.follow_task.cancel()
            await asyncio.wait({r.follow_task})
        self._replicas.pop(r.spec.replica_id, None)
        self._records.remove(r.spec.replica_id)
        await self._containment.release(r.spec.replica_id, r.cgroup, r.uid)
        r.address = r.http_address = ""
        await self._event(r, STOPPED)

    # --- events --------------------------------------------------------------------------------

    async def _fail(self, r: Replica, message: str) -> None:
        self._records.remove(r.spec.replica_id)  # nothing left to adopt
        await self._containment.release(r.spec.replica_id, r.cgroup, r.uid)
        if r.stopping:
            return
        log.warning("replica %s failed: %s", r.spec.replica_id, message.splitlines()[0] if message else "")
        await self._event(r, FAILED, message)

    async def _event(self, r: Replica, state: int, message: str = "", at: float | None = None) -> None:
        r.state = state
        self._update_gauge()
        event = replica_event(
            replica_id=r.spec.replica_id, deployment_id=r.spec.deployment_id, node_id=self._node_id, state=state,
            at=self._clock() if at is None else at, address=r.address, http_address=r.http_address, message=message,
            restarts=r.backoff.restarts, last_exit=r.last_exit, next_restart_at=r.next_restart_at)
        try:
            await self._publisher.publish(subjects.replica_subject(r.spec.replica_id), event)
        except Exception:
            log.exception("cannot publish %s for replica %s", events_pb2.ReplicaState.Name(state),
                          r.spec.replica_id)

    def _update_gauge(self) -> None:
        update_gauge(r.state for r in self._replicas.values())

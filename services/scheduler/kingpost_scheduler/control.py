"""The scheduler's shell around its pure core: the one writer, the route feed, the reconcile loop,
and the NATS event handlers.

Every change goes through `Control.write`: one transaction, under one lock (the scheduler is
the only writer, and serialising writes keeps SQLite happy and reasoning simple), that ends with a
reconcile pass planned by `reconcile.plan` and applied in the same transaction. After the commit
the route table is rebuilt and, if it differs, sent to every watcher; the RPC dispatcher wakes to
send StartReplica/StopReplica for what the pass decided.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kingpost.auth import KeyCache, key_digest, key_prefix
from kingpost.errors import DeadlineExceeded, KingpostError, Unavailable
from kingpost.ids import new_id
from kingpost.v1 import agent_pb2, events_pb2
from kingpost_scheduler import canary, facts, lifecycle, metrics, placement, promotion, reconcile, store
from kingpost_scheduler.clients import AgentCommands, BuildInfo, build_state_name
from kingpost_scheduler.db import translate_errors
from kingpost_scheduler.route_table import RouteTable, build_route_table
from kingpost_scheduler.tables import DeploymentRecord, EnvironmentRecord, ReplicaRecord

log = logging.getLogger(__name__)

T = TypeVar("T")

# A replica to command: its id, its node's address, and what to start (None: stop it).
_Command = tuple[str, str, agent_pb2.StartReplicaRequest | None]

# A replica whose state changed this recently may be newer than the heartbeat that omits it.
HEARTBEAT_GRACE = timedelta(seconds=3)


def utcnow() -> datetime:
    return datetime.now(UTC)


class RouteFeed:
    """The current route table with a version, and a condition watchers wait on."""

    def __init__(self) -> None:
        self.table: RouteTable | None = None
        # Versions start at the wall clock in ms, so they keep rising across scheduler restarts.
        self.version = int(time.time() * 1000)
        self._changed = asyncio.Condition()

    async def update(self, table: RouteTable) -> bool:
        if table == self.table:
            return False
        async with self._changed:
            self.table = table
            self.version += 1
            metrics.ROUTE_TABLE_VERSION.set(self.version)
            self._changed.notify_all()
        return True

    async def watch(self) -> AsyncIterator[tuple[int, RouteTable]]:
        """The current table at once, then each new one (intermediate versions may be skipped)."""
        sent = 0
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: self.table is not None and self.version > sent)
                version, table = self.version, self.table
            sent = version
            assert table is not None
            yield version, table


class Control:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        agents: AgentCommands,
        node_timeout: timedelta = timedelta(seconds=15),
        start_timeout: timedelta = timedelta(seconds=300),
        interval: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
        drain: timedelta = promotion.DRAIN,
    ) -> None:
        self.sessions = sessions
        self.drain = drain
        self.agents = agents
        self.node_timeout = node_timeout
        self.start_timeout = start_timeout
        self.interval = interval
        self.clock = clock
        self.keys = KeyCache()
        self.routes = RouteFeed()
        self.started_at = clock()
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._inflight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._transactions: set[asyncio.Future[Any]] = set()
        # Latest BuildEvent per build: covers an event that lands between GetBuild and the insert.
        self._builds: dict[str, BuildInfo] = {}

    # --- transactions -------------------------------------------------------------------------

    async def write(self, doing: str, fn: Callable[[AsyncSession], Awaitable[T]], *, wake: bool = True) -> T:
        return await self._to_the_end(self._write(doing, fn, wake))

    async def read(self, doing: str, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        return await self._to_the_end(self._read(doing, fn))

    def _to_the_end(self, transaction: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Run a transaction to its end even when its caller is cancelled (a client that gave up, a
        shutdown); the caller still sees the cancellation. A transaction cut off mid-query leaves a
        connection the driver must tear down: on SQLite its write lock then stalls every other writer
        for the busy timeout, and aiosqlite's teardown can wait forever. `close` waits for these."""
        task = asyncio.ensure_future(transaction)
        self._transactions.add(task)
        task.add_done_callback(self._transactions.discard)
        return asyncio.shield(task)

    async def _write(self, doing: str, fn: Callable[[AsyncSession], Awaitable[T]], wake: bool) -> T:
        async with self._lock:
            async with translate_errors(doing):
                async with self.sessions.begin() as session:
                    result = await fn(session)
                    await self._reconcile_in(session)
            await self._publish_routes()
        if wake:
            self._wake.set()
        return result

    async def _read(self, doing: str, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async with translate_errors(doing):
            async with self.sessions() as session:
                return await fn(session)

    async def start(self) -> None:
        """Load the first route table (and so the valid keys) before serving."""
        await self.write("starting", _nothing, wake=True)

    async def _publish_routes(self) -> None:
        async with self.sessions() as session:
            inputs = await store.route_inputs(session)
        table = build_route_table(*inputs)
        self.keys.replace(table.api_key_sha256)
        await self.routes.update(table)

    async def _reconcile_in(self, session: AsyncSession) -> None:
        started = time.perf_counter()
        now = self.clock()
        deployments = {d.id: d for d in await store.live_deployments(session)}
        replicas = await store.all_replicas(session)
        nodes = [store.node_facts(n) for n in await store.all_nodes(session)]
        for d in deployments.values():
            if promotion.drained(d.demoted_at, now, self.drain):
                # Demoted by a promotion and drained: it scales to zero (the autoscaler can wake it).
                d.min_replica, d.desired_replicas, d.demoted_at = 0, 0, None
        desired = {d.id: lifecycle.desired_replicas(store.deployment_facts(d)) for d in deployments.values()}
        plan = reconcile.plan(desired, [store.replica_facts(r) for r in replicas], nodes, now=now,
                              node_timeout=self.node_timeout, start_timeout=self.start_timeout)
        if not plan.empty:
            log.info("reconcile: start %s, stop %s, forget %s, failed %s",
                     [(s.deployment_id, s.node_id) for s in plan.starts], list(plan.stops),
                     list(plan.forget), [f.deployment_id for f in plan.failures])
            by_id = {r.id: r for r in replicas}
            await store.delete_replicas(session, plan.forget)
            for replica_id in plan.stops:
                await store.set_replica_state(session, by_id[replica_id], facts.STOPPING, now)
            for failure in plan.failures:
                d = deployments.get(failure.deployment_id)
                if d is not None and d.status != lifecycle.FAILED:
                    d.status, d.status_reason = lifecycle.FAILED, failure.reason
            for s in plan.starts:
                await store.add_replica(session, new_id("rep"), s.deployment_id, s.node_id, facts.PENDING,
                                        now)
            replicas = await store.all_replicas(session)
        own: dict[str, list[facts.Replica]] = defaultdict(list)
        for r in replicas:
            own[r.deployment_id].append(store.replica_facts(r))
        for d in deployments.values():
            status = lifecycle.deployment_status(store.deployment_facts(d), own[d.id])
            if (d.status, d.status_reason) != (status.status, status.reason):
                d.status, d.status_reason = status.status, status.reason
        ready = Counter(r.deployment_id for r in replicas if r.state == facts.READY)
        await self._promote_in(session, deployments, now, ready)
        await store.purge_deleted_models(session)
        await session.flush()
        self._gauges(deployments.values(), replicas)
        metrics.RECONCILE_SECONDS.observe(time.perf_counter() - started)

    async def _promote_in(self, session: AsyncSession, deployments: dict[str, DeploymentRecord],
                          now: datetime, ready: Mapping[str, int]) -> None:
        """Each promotion in progress takes its next step: swap once the candidate is ACTIVE (this
        transaction's route table carries the swap) or, for a canary, once its window has passed
        (each stage it reaches changes the route table's split); end with the reason if it cannot
        succeed."""
        for env in await store.environments(session):
            if not env.candidate_deployment_id:
                continue
            candidate = deployments.get(env.candidate_deployment_id)
            step = promotion.promotion_step(
                store.deployment_facts(candidate) if candidate else None, candidate.status if candidate else "")
            if step.abort:
                log.warning("promotion to %s of model %s ended: %s", env.name, env.model_id, step.abort)
                env.candidate_deployment_id, env.promotion_failure = "", step.abort
                end_canary(env)
            elif step.swap and candidate is not None:
                previous = deployments.get(env.deployment_id or "")
                if env.canary_duration_seconds and previous is not None and previous.id != candidate.id \
                        and not self._canary_step(env, previous, candidate, now, ready):
                    continue
                end_canary(env)
                if previous is not None and previous.id != candidate.id:
                    previous.environment = ""
                    previous.demoted_at = now
                env.deployment_id, env.candidate_deployment_id, env.promotion_failure = candidate.id, "", ""
                candidate.environment, candidate.demoted_at = env.name, None
                log.info("model %s: %s now serves %s (was %s)", env.model_id, candidate.id, env.name,
                         previous.id if previous else "none")

    @staticmethod
    def _canary_step(env: EnvironmentRecord, previous: DeploymentRecord, candidate: DeploymentRecord,
                     now: datetime, ready: Mapping[str, int]) -> bool:
        """Advance a canary promotion's stage; True once its window has passed (swap)."""
        if env.canary_started_at is None:
            if not canary.eligible(ready.get(candidate.id, 0), previous.min_replica):
                return False
            env.canary_started_at = now
        progress = canary.progress(env.canary_duration_seconds, env.canary_started_at, now)
        if progress.stage != env.canary_stage and not progress.done:
            log.info("model %s: canary to %s at stage %d/%d: %d %% to %s", env.model_id, env.name, progress.stage,
                     canary.STAGES, progress.candidate_weight, candidate.id)
            env.canary_stage = progress.stage
        return progress.done

    @staticmethod
    def _gauges(deployments: Iterable[DeploymentRecord], replicas: Iterable[ReplicaRecord]) -> None:
        by_state = Counter(r.state for r in replicas)
        for state in facts.REPLICA_STATES:
            metrics.REPLICAS.labels(state).set(by_state.get(state, 0))
        by_status = Counter(d.status for d in deployments)
        for status in (lifecycle.BUILDING, lifecycle.DEPLOYING, lifecycle.ACTIVE, lifecycle.SCALED_TO_ZERO,
                       lifecycle.INACTIVE, lifecycle.FAILED):
            metrics.DEPLOYMENTS.labels(status).set(by_status.get(status, 0))

    # --- the reconcile loop and its RPCs ------------------------------------------------------

    async def run(self) -> None:
        """Reconcile every `interval` and whenever something changed; send the agents their commands."""
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives as the event is set, and then the loop would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.write("reconciling", _nothing, wake=False)
                await self.dispatch()
            except KingpostError as e:
                log.warning("reconcile pass failed: %s", e)

    async def reconcile_once(self) -> None:
        """One pass and the agent calls it decides, awaited to the end (for tools and tests)."""
        await self.write("reconciling", _nothing, wake=False)
        await self.dispatch()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def dispatch(self) -> None:
        """Send StartReplica/StopReplica for each PENDING/STOPPING replica with no call in flight."""

        async def commands(session: AsyncSession) -> list[_Command]:
            nodes = {n.id: n.address for n in await store.all_nodes(session)}
            deployments = {d.id: d for d in await store.live_deployments(session)}
            # A promotion's candidate starts its replicas with the environment's name already.
            promoting = {e.candidate_deployment_id: e.name for e in await store.environments(session)
                         if e.candidate_deployment_id}
            out = []
            for r in await store.all_replicas(session):
                if r.id in self._inflight or r.state not in (facts.PENDING, facts.STOPPING):
                    continue
                address = nodes.get(r.node_id, "")
                if r.state == facts.STOPPING:
                    out.append((r.id, address, None))
                elif (d := deployments.get(r.deployment_id)) is not None:
                    out.append((r.id, address, agent_pb2.StartReplicaRequest(
                        replica_id=r.id, deployment_id=d.id, model_id=d.model_id,
                        artifact_digest=d.artifact_digest,
                        environment=d.environment or promoting.get(d.id, ""))))
            return out

        for replica_id, address, request in await self.read("listing replica commands", commands):
            self._inflight.add(replica_id)
            coro = self._start(address, request) if request is not None else self._stop(replica_id, address)
            task = asyncio.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._finished(replica_id))

    def _finished(self, replica_id: str) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            self._inflight.discard(replica_id)

        return done

    async def _start(self, address: str, request: agent_pb2.StartReplicaRequest) -> None:
        refused: KingpostError | None = None
        try:
            await self.agents.start_replica(address, request)
        except (Unavailable, DeadlineExceeded) as e:
            metrics.AGENT_CALLS.labels("StartReplica", "error").inc()
            log.warning("StartReplica %s on %s failed (%s); will retry", request.replica_id, address, e)
            return
        except KingpostError as e:
            # The agent understood and said no (a bad digest, say): retrying cannot help.
            metrics.AGENT_CALLS.labels("StartReplica", "refused").inc()
            refused = e
        else:
            metrics.AGENT_CALLS.labels("StartReplica", "ok").inc()

        async def record(session: AsyncSession) -> None:
            replica = await store.get_replica(session, request.replica_id)
            if replica is None or replica.state != facts.PENDING:
                return
            if refused is None:
                await store.set_replica_state(session, replica, facts.STARTING, self.clock())
            else:
                await store.set_replica_state(session, replica, facts.FAILED, self.clock(),
                                              message=f"the node refused to start the replica: {refused}")

        await self.write("recording a started replica", record, wake=refused is not None)

    async def _stop(self, replica_id: str, address: str) -> None:
        if address:
            try:
                await self.agents.stop_replica(address, replica_id)
            except KingpostError as e:
                metrics.AGENT_CALLS.labels("StopReplica", "error").inc()
                log.warning("StopReplica %s on %s failed (%s); will retry", replica_id, address, e)
                return
            metrics.AGENT_CALLS.labels("StopReplica", "ok").inc()
        await self.write("forgetting a stopped replica", lambda s: store.delete_replicas(s, [replica_id]),
                         wake=False)

    async def close(self, timeout: float = 30.0) -> None:
        """Cancel the agent calls in flight, then let the transactions in flight commit."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._transactions:
            await asyncio.wait(set(self._transactions), timeout=timeout)

    # --- builds -------------------------------------------------------------------------------

    def known_build(self, build_id: str) -> BuildInfo | None:
        return self._builds.get(build_id)

    async def on_build_event(self, event: events_pb2.BuildEvent) -> None:
        info = BuildInfo(event.build_id, build_state_name(event.state), event.artifact_digest, event.message)
        if info.finished or event.build_id not in self._builds:
            self._builds[event.build_id] = info

        async def apply(session: AsyncSession) -> None:
            for d in await store.deployments_for_build(session, event.build_id):
                apply_build(d, info)

        await self.write(f"applying build {event.build_id}", apply)
        metrics.EVENTS.labels("build", "ok").inc()

    # --- replicas -----------------------------------------------------------------------------

    async def on_replica_event(self, event: events_pb2.ReplicaEvent) -> None:
        async def apply(session: AsyncSession) -> None:
            replica = await store.get_replica(session, event.replica_id)
            if replica is None or replica.state == facts.STOPPING:
                return  # not ours, or on its way out: nothing to learn
            now = self.clock()
            if event.state == events_pb2.REPLICA_STATE_READY and event.address:
                if replica.state in (facts.PENDING, facts.STARTING):
                    _cold_start(replica, now)
                await store.set_replica_state(session, replica, facts.READY, now, address=event.address)
            elif event.state == events_pb2.REPLICA_STATE_FAILED:
                await store.set_replica_state(session, replica, facts.FAILED, now,
                                              message=event.message or f"replica {replica.id} failed")
            elif event.state == events_pb2.REPLICA_STATE_STOPPED:
                await store.delete_replicas(session, [replica.id])
            elif event.state == events_pb2.REPLICA_STATE_STARTING and replica.state == facts.PENDING:
                await store.set_replica_state(session, replica, facts.STARTING, now)

        await self.write(f"applying replica event for {event.replica_id}", apply)
        metrics.EVENTS.labels("replica", "ok").inc()

    # --- nodes --------------------------------------------------------------------------------

    async def on_heartbeat(self, beat: events_pb2.NodeHeartbeat) -> None:
        if not beat.node_id or not beat.address:
            metrics.EVENTS.labels("heartbeat", "ignored").inc()
            return

        async def apply(session: AsyncSession) -> None:
            now = self.clock()
            await store.upsert_node(
                session, node_id=beat.node_id, address=beat.address, cpu_count=beat.cpu_count,
                memory_bytes=beat.memory_bytes,
                gpus=[{"name": g.name, "memory_bytes": g.memory_bytes} for g in beat.gpus], now=now)
            ours = [store.replica_facts(r) for r in await store.replicas_on_node(session, beat.node_id)]
            gone = placement.missing_from_heartbeat(beat.replica_ids, ours, now, HEARTBEAT_GRACE,
                                                    settled_before=self.started_at)
            if gone:
                log.info("node %s no longer runs %s; replacing them", beat.node_id, gone)
                await store.delete_replicas(session, gone)

        await self.write(f"applying heartbeat of {beat.node_id}", apply)
        metrics.EVENTS.labels("heartbeat", "ok").inc()

    # --- keys ---------------------------------------------------------------------------------

    async def ensure_admin_key(self, key: str) -> None:
        """Store the admin key's digest (named "admin") unless a key with that digest exists."""
        if not key:
            return
        digest = key_digest(key)

        async def apply(session: AsyncSession) -> None:
            existing = await store.api_key_by_digest(session, digest)
            if existing is None:
                await store.add_api_key(session, prefix=key_prefix(key), name="admin", sha256=digest,
                                        now=self.clock())

        await self.write("storing the admin key", apply)


def end_canary(env: EnvironmentRecord) -> None:
    """Forget the canary state of `env`'s promotion (it swapped, failed or was cancelled)."""
    env.canary_duration_seconds, env.canary_started_at, env.canary_stage = 0, None, 0


def apply_build(d: DeploymentRecord, info: BuildInfo) -> None:
    outcome = lifecycle.after_build(store.deployment_facts(d), info.state, info.artifact_digest, info.message)
    d.status, d.status_reason, d.artifact_digest = outcome.status, outcome.reason, outcome.artifact_digest
    if info.predict_concurrency > 0:
        d.predict_concurrency = info.predict_concurrency


def _cold_start(replica: ReplicaRecord, now: datetime) -> None:
    """Log and export a replica's cold start as the scheduler saw it: `schedule` from its placement
    to the agent's STARTING (the agent's own histogram splits the rest into fetch, process, load)."""
    total = (now - replica.created_at).total_seconds()
    starting = replica.state == facts.STARTING
    schedule = (replica.updated_at - replica.created_at).total_seconds() if starting else 0.0
    metrics.COLD_START_SECONDS.labels("schedule").observe(schedule)
    metrics.COLD_START_SECONDS.labels("total").observe(total)
    log.info("cold start of deployment %s replica %s: %.2f s (schedule %.2f s, start and load %.2f s)",
             replica.deployment_id, replica.id, total, schedule, total - schedule)


async def _nothing(_session: AsyncSession) -> None:
    return None

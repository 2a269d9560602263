"""The async queue's workers: per deployment, take jobs by priority and run each at most a few at once.

    workers = AsyncWorkers(bus, kv, router, webhooks, ...)
    workers.apply(snapshot)          # a worker per active deployment of the route table
    await workers.counts(dep_id)     # (queued, in progress) for async_queue_status

Per deployment and priority there is one durable JetStream pull consumer,
`async-<deployment>-<priority>`, shared by every router, so a router that dies leaves its jobs
to the others or to itself restarted: a job not acked within `ack_wait` is handed out again. A
fetcher per priority keeps a small local buffer full; the dispatcher starts the next job from the
lowest-numbered priority that has one, so priority 0 overtakes a backlog of 2. At most `limit`
model calls run at once: twice the ready replicas' `predict_concurrency` (so the router's slot
queue shows the autoscaler a backlog), one while the deployment is at zero (which wakes it).
Every job held here, buffered, running or delivering its webhook, is kept from redelivery by
`in_progress` pings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable

from kingpost.bus import Bus, Job, Publisher, WorkQueue
from kingpost.bus.subjects import ASYNC_PRIORITIES, async_request_subject, concurrency_subject
from kingpost.errors import KingpostError
from kingpost.v1 import inference_pb2
from kingpost_router import sampling
from kingpost_router.async_job import JobRunner
from kingpost_router.routes import Deployment, RouteSnapshot

log = logging.getLogger(__name__)
MAX_DELIVERIES = 10_000  # redelivery after a crash, or a nak while the model is not ready
FETCH_WAIT_SECONDS = 5.0


def concurrency_limit(deployment: Deployment, cap: int) -> int:
    """Model calls this router starts at once for one deployment's async queue."""
    per_replica = deployment.predict_concurrency or cap
    capacity = per_replica * len(deployment.replicas)
    return max(1, min(cap, 2 * capacity))


class _DeploymentWorker:
    def __init__(self, deployment_id: str, queues: list[WorkQueue[inference_pb2.AsyncJob]],
                 runner: JobRunner, limit: Callable[[], int], ack_wait: float) -> None:
        self.deployment_id = deployment_id
        self.queues = queues
        self._runner = runner
        self._limit = limit
        self._ack_wait = ack_wait
        self.buffers: list[deque[Job[inference_pb2.AsyncJob]]] = [deque() for _ in queues]
        self.held: set[Job[inference_pb2.AsyncJob]] = set()
        # Request id → copies of it delivered again while this router runs it.
        self._active: dict[str, list[Job[inference_pb2.AsyncJob]]] = {}
        self.running = 0
        self._fetched_since_backlog = True
        self.last_backlog = 0
        self._changed = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []
        self._runs: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._fetch(p)) for p in range(len(self.queues))]
        self._tasks += [asyncio.create_task(self._dispatch()), asyncio.create_task(self._ping())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _fetch(self, priority: int) -> None:
        queue, buffer = self.queues[priority], self.buffers[priority]
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: len(buffer) < self._limit())
                room = self._limit() - len(buffer)
            try:
                jobs = await queue.fetch(room, timeout=FETCH_WAIT_SECONDS)
            except KingpostError as e:  # NATS away: try again (its jobs wait in the stream)
                log.warning("async queue %s/%d: %s", self.deployment_id, priority, e)
                await asyncio.sleep(1.0)
                continue
            if jobs:
                self._fetched_since_backlog = True
                buffer.extend(jobs)
                self.held.update(jobs)
                await self._notify()

    async def _dispatch(self) -> None:
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: self.running < self._limit() and any(self.buffers))
                job = next(b for b in self.buffers if b).popleft()
                self._changed.notify_all()  # its buffer has room again
                twins = self._active.get(job.message.request_id)
                if twins is not None:  # handed out again while this router still works on it
                    twins.append(job)
                    continue
                self._active[job.message.request_id] = []
                self.running += 1
            task = asyncio.create_task(self._run(job))
            self._runs.add(task)
            task.add_done_callback(self._runs.discard)

    async def _run(self, job: Job[inference_pb2.AsyncJob]) -> None:
        try:
            await self._runner.run(job, self._model_call_done)
        except KingpostError as e:  # NATS away mid-job: unacked, so it is handed out again
            log.warning("async request %s: %s; it will be handed out again after ack_wait",
                        job.message.request_id, e)
        except Exception:
            log.exception("async request %s: a bug in the worker; it will be handed out again",
                          job.message.request_id)
        finally:
            self.held.discard(job)
            # A copy JetStream handed out again meanwhile (a ping that came late, or a delivery of
            # an expired fetch that waited in the client) goes back: on its next delivery it finds
            # the request settled, or runs it if this one could not.
            for twin in self._active.pop(job.message.request_id, []):
                self.held.discard(twin)
                with contextlib.suppress(KingpostError):
                    await twin.nak(0)

    async def _model_call_done(self) -> None:
        """The model call is over (the webhook may still be going): the next job can start."""
        self.running -= 1
        await self._notify()

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self._ack_wait / 3)
            for job in list(self.held):
                with contextlib.suppress(KingpostError):
                    await job.in_progress()

    async def backlog(self) -> int:
        """Requests queued here and in NATS, not yet handed to a replica. Asks NATS only when it
        may have changed: while there was a backlog, after a fetch, or with a buffer full (an
        idle deployment's fetchers are waiting, and would have taken anything that came)."""
        full = any(len(b) >= self._limit() for b in self.buffers)
        if self.last_backlog or self._fetched_since_backlog or full:
            self._fetched_since_backlog = False
            self.last_backlog = (await self.counts())[0]
        return self.last_backlog

    async def counts(self) -> tuple[int, int]:
        waiting = fetched = 0
        for queue in self.queues:
            w, f = await queue.pending()
            waiting, fetched = waiting + w, fetched + f
        buffered = sum(len(b) for b in self.buffers)
        return waiting + buffered, max(0, fetched - buffered)


class AsyncWorkers:
    def __init__(self, bus: Bus, runner: JobRunner, snapshot: Callable[[], RouteSnapshot], *,
                 cap: int, ack_wait: float) -> None:
        self._bus = bus
        self._runner = runner
        self._snapshot = snapshot
        self._cap = cap
        self._ack_wait = ack_wait
        self._workers: dict[str, _DeploymentWorker] = {}
        self._starting: dict[str, asyncio.Task[_DeploymentWorker]] = {}

    def apply(self, snapshot: RouteSnapshot) -> None:
        """Start a worker for each active deployment it has not got yet (stopping none: a
        deployment that leaves the table keeps its queue, to be drained if it comes back)."""
        for deployment in snapshot.deployments():
            did = deployment.deployment_id
            if deployment.active and did not in self._workers and did not in self._starting:
                self._starting[did] = asyncio.create_task(self._start(did))

    async def worker(self, deployment_id: str) -> _DeploymentWorker:
        if deployment_id in self._workers:
            return self._workers[deployment_id]
        if deployment_id not in self._starting:
            self._starting[deployment_id] = asyncio.create_task(self._start(deployment_id))
        return await asyncio.shield(self._starting[deployment_id])

    async def _start(self, deployment_id: str) -> _DeploymentWorker:
        try:
            queues = [await self._bus.work_queue(
                async_request_subject(deployment_id, p), f"async-{deployment_id}-{p}", inference_pb2.AsyncJob,
                max_deliveries=MAX_DELIVERIES, ack_wait=self._ack_wait) for p in ASYNC_PRIORITIES]
        except BaseException:
            del self._starting[deployment_id]
            raise

        def limit() -> int:
            deployment = self._snapshot().by_deployment.get(deployment_id)
            return concurrency_limit(deployment, self._cap) if deployment else 1

        worker = _DeploymentWorker(deployment_id, queues, self._runner, limit, self._ack_wait)
        worker.start()
        self._workers[deployment_id] = worker
        del self._starting[deployment_id]
        return worker

    async def counts(self, deployment_id: str) -> tuple[int, int]:
        return await (await self.worker(deployment_id)).counts()

    def last_counts(self) -> dict[str, tuple[int, int]]:
        """Each deployment's (queued, as the backlog loop last counted it; taken by a worker now)."""
        return {did: (w.last_backlog, w.running) for did, w in list(self._workers.items())}

    async def publish_backlog(self, bus: Publisher, router_id: str, *, interval: float = 1.0,
                              clock: Callable[[], float] = time.time) -> None:
        """Every `interval` seconds, each deployment's backlog as a sample for the autoscaler, so
        that a queue of thousands scales a deployment up at once (sampling.backlog_sample)."""
        subject = concurrency_subject(router_id)
        while True:
            try:
                backlogs = {did: await w.backlog() for did, w in list(self._workers.items())}
                await bus.publish_fast(subject, sampling.backlog_sample(backlogs, clock()))
            except KingpostError as e:  # a lost sample is superseded by the next one
                log.warning("cannot publish the async backlog: %s", e)
            await asyncio.sleep(interval)

    async def close(self) -> None:
        for task in self._starting.values():
            task.cancel()
        for worker in self._workers.values():
            await worker.stop()

"""The waiting room around the slot queue (`slots.py`): requests that wait for a free slot, for a
first replica (hold at zero, as Knative's activator does) or for a crashed runner to come back.

    replica = await activator.acquire(deployment, timeout)   # after slots.take() found no free slot
    activator.release(deployment_id, replica_id)             # a runner call ended (the hot path)
    activator.apply(snapshot)                                # a new route table
    activator.mark_unreachable(replica, why)                 # a runner refused a connection

The decisions are the slot queue's; this layer only waits: one future per waiting request,
resolved when the queue hands it a slot or fails it, and a timer to its `wake_at`. While requests
wait for a deployment that has no replica at all, it tells the autoscaler (`ScalePoke`, once
per `poke_interval`), which decides at once instead of at its next tick. A runner marked
unreachable is watched (`probe`, the runner channel's own reconnects) until it answers again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from kingpost.bus import Publisher
from kingpost.bus.subjects import scale_poke_subject
from kingpost.v1 import events_pb2
from kingpost_router.routes import Deployment, Replica, RouteSnapshot
from kingpost_router.sampling import timestamp
from kingpost_router.slots import SlotQueue, Ticket

log = logging.getLogger(__name__)

Waiter = asyncio.Future[None]


class Activator:
    def __init__(self, slots: SlotQueue[Waiter], *, probe: Callable[[str], Awaitable[bool]],
                 poke_interval: float = 1.0, wall_clock: Callable[[], float] = time.time) -> None:
        """`probe(address)` returns True once the runner there accepts connections (False: it
        is gone from the table)."""
        self.slots = slots
        self.snapshot = RouteSnapshot.empty()
        # Where hold-at-zero pokes go; set by main once NATS is up (None in some tests: no pokes).
        self.bus: Publisher | None = None
        self.poke_interval = poke_interval
        self._probe = probe
        self._wall_clock = wall_clock
        self._poking: dict[str, asyncio.Task[None]] = {}
        self._probing: dict[str, asyncio.Task[None]] = {}

    @property
    def poking(self) -> frozenset[str]:
        """Deployments whose held requests are poking the autoscaler now."""
        return frozenset(self._poking)

    def release(self, deployment_id: str, replica_id: str) -> None:
        decided = self.slots.release(deployment_id, replica_id)
        if decided:
            _wake(decided)

    async def acquire(self, deployment: Deployment, timeout: float) -> Replica:
        """Wait in the deployment's queue until it hands over a slot: the replica, slot taken.
        Raises the queue's error (429 full, 503 not ready in time, 504 deadline, 404 removed)."""
        loop = asyncio.get_running_loop()
        ticket = self.slots.enqueue(deployment, loop.create_future(), now=loop.time(), timeout=timeout)
        if ticket.held and not deployment.replicas:
            self._poke(deployment.deployment_id)
            for companion in deployment.wake_with:  # a chain: its Chainlets start together
                self._poke_once(companion)
        try:
            while ticket.state == "waiting":
                await asyncio.wait((ticket.handle,), timeout=max(0.0, ticket.wake_at - loop.time()))
                self.slots.expire(ticket, loop.time())
            return self.slots.claim(ticket)
        except BaseException:
            # Cancelled (the client hung up) or failed: a slot handed over at this very moment
            # goes to the next in line.
            _wake(self.slots.withdraw(ticket))
            raise

    def apply(self, snapshot: RouteSnapshot) -> None:
        """A new route table: held requests get the replicas that came; runners no longer in
        the table are no longer watched."""
        self.snapshot = snapshot
        _wake(self.slots.set_routes(snapshot))
        unreachable = self.slots.unreachable()
        for address in [a for a in self._probing if a not in unreachable]:
            self._probing.pop(address).cancel()

    def mark_unreachable(self, replica: Replica, why: str) -> None:
        """No request goes to `replica`'s runner until it accepts connections again."""
        address = replica.address
        self.slots.mark_unreachable(address, why)
        if address not in self._probing:
            log.warning("runner unreachable, holding its requests until it answers: %s", why)
            self._probing[address] = asyncio.get_running_loop().create_task(self._watch(address))

    async def _watch(self, address: str) -> None:
        try:
            if await self._probe(address):
                log.info("runner at %s answers again", address)
                _wake(self.slots.mark_reachable(address))
        finally:
            if self._probing.get(address) is asyncio.current_task():
                del self._probing[address]

    def close(self) -> None:
        for task in (*self._poking.values(), *self._probing.values()):
            task.cancel()

    # -- pokes -------------------------------------------------------------------------------

    async def wake(self, deployment: Deployment) -> None:
        """One poke for a deployment with no ready replica and no request (Baseten's `wake`): the
        autoscaler counts it as one request waiting, and starts a replica."""
        if self.bus is None or deployment.replicas:
            return
        poke = events_pb2.ScalePoke(deployment_id=deployment.deployment_id, queued=1)
        poke.at.CopyFrom(timestamp(self._wall_clock()))
        await self.bus.publish_fast(scale_poke_subject(deployment.deployment_id), poke)

    def _poke(self, deployment_id: str) -> None:
        if self.bus is None or deployment_id in self._poking:
            return
        task = asyncio.get_running_loop().create_task(self._poke_while_held(deployment_id, self.bus))
        self._poking[deployment_id] = task
        task.add_done_callback(lambda _: self._poking.pop(deployment_id, None))

    def _poke_once(self, deployment_id: str) -> None:
        """One poke for a deployment nothing waits for yet, when it has no replica: the autoscaler
        starts one (its own requests, arriving later, poke while they wait)."""
        deployment = self.snapshot.by_deployment.get(deployment_id)
        if self.bus is None or deployment is None or deployment.replicas or deployment_id in self._poking:
            return
        poke = events_pb2.ScalePoke(deployment_id=deployment_id, queued=1)
        poke.at.CopyFrom(timestamp(self._wall_clock()))
        task = asyncio.get_running_loop().create_task(self.bus.publish_fast(scale_poke_subject(deployment_id), poke))
        task.add_done_callback(_log_poke_failure)

    async def _poke_while_held(self, deployment_id: str, bus: Publisher) -> None:
        """Tell the autoscaler, once a poke_interval, that requests wait for a first replica."""
        subject = scale_poke_subject(deployment_id)
        while True:
            deployment = self.snapshot.by_deployment.get(deployment_id)
            queued = self.slots.queued(deployment_id)
            if not queued or deployment is None or deployment.replicas:
                return
            poke = events_pb2.ScalePoke(deployment_id=deployment_id, queued=queued)
            poke.at.CopyFrom(timestamp(self._wall_clock()))
            try:
                await bus.publish_fast(subject, poke)
            except Exception as e:  # the next poke, or the autoscaler's own tick, covers it
                log.warning("cannot poke the autoscaler for %s: %s", deployment_id, e)
            await asyncio.sleep(self.poke_interval)


def _log_poke_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:  # the autoscaler's own tick covers it
        log.warning("cannot poke the autoscaler: %s", task.exception())


def _wake(decided: Iterable[Ticket[Waiter]]) -> None:
    for ticket in decided:
        if not ticket.handle.done():
            ticket.handle.set_result(None)

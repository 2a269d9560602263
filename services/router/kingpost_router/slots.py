"""The slot queue: which request gets which replica, and when. Decisions only: no I/O, no clock.

A replica takes at most `predict_concurrency` requests from this router at once (0: no limit). A
request holds one *slot* of its replica (`outstanding[replica_id]`) from the moment it is given the
replica until its runner call ends (`release`). When no replica of its deployment has a free slot,
or requests already wait for it, or it has no reachable replica, a request waits in the
deployment's FIFO queue as a `Ticket`, and is handed a slot the moment one frees:

    replica = slots.take(deployment)                  # the fast path: a free slot, or None
    ticket = slots.enqueue(deployment, handle, now=t, timeout=600)   # or TooManyRequests (429)
    for ticket in slots.release(deployment_id, replica_id): ...      # these were handed a slot (or failed)
    slots.expire(ticket, now)                         # its time came: keep waiting, or fail it
    replica = slots.claim(ticket)                     # the waiter takes what it was handed (or the error)
    slots.withdraw(ticket)                            # it gave up: out of the queue, a slot handed
                                                      # to it at that moment goes to the next in line

Every call that can hand out slots returns the tickets it decided (granted or failed), so that
the caller, which owns the waiting (`activator.py`), wakes them; `handle` is the caller's, never
read here. Slots cannot leak: a ticket is granted once, and either claimed (the caller then
releases the slot when its call ends) or withdrawn (the slot is released here).

Holding (Knative's activator): a deployment with no reachable replica — scaled to zero, waking up,
or each of its runners refusing connections because it crashed — keeps requests in the same queue,
each for at most its cold-start timeout, until a route table or a runner that answers again
(`mark_reachable`) gives it one. A request that joins a queue while its deployment has a reachable
replica (all busy) waits until its deadline. Time in the queue counts toward the deadline.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Generic, Literal, TypeVar

from kingpost import autoscaling_settings
from kingpost.errors import DeadlineExceeded, KingpostError, NotFound, TooManyRequests, Unavailable
from kingpost_router.balancer import choose
from kingpost_router.routes import Deployment, Replica, RouteSnapshot

H = TypeVar("H")
State = Literal["waiting", "granted", "failed", "claimed", "withdrawn"]
_NOTHING: tuple[()] = ()


class Ticket(Generic[H]):
    """One request waiting in a deployment's queue; `handle` is whatever its waiter needs to be woken."""

    __slots__ = ("cold_start_timeout", "deadline_at", "deployment_id", "error", "handle", "hold_until",
                 "replica", "state", "timeout")

    def __init__(self, deployment_id: str, handle: H, *, timeout: float, deadline_at: float,
                 hold_until: float, cold_start_timeout: float) -> None:
        self.deployment_id = deployment_id
        self.handle = handle
        self.timeout = timeout
        self.deadline_at = deadline_at
        # When a request held for a first reachable replica gives up; inf when it waits for a busy one.
        self.hold_until = hold_until
        self.cold_start_timeout = cold_start_timeout
        self.state: State = "waiting"
        self.replica: Replica | None = None  # set when granted
        self.error: KingpostError | None = None  # set when failed

    @property
    def wake_at(self) -> float:
        """When `expire` must look at it, unless it is decided first."""
        return min(self.deadline_at, self.hold_until)

    @property
    def held(self) -> bool:
        """True while it waits for a first reachable replica (bounded by the cold-start timeout)."""
        return self.hold_until != math.inf

    def __repr__(self) -> str:
        return f"Ticket({self.deployment_id!r}, {self.state}, replica={self.replica!r})"


class SlotQueue(Generic[H]):
    def __init__(self, *, max_queue: int, cold_start_timeout: float, randrange: Callable[[int], int]) -> None:
        """`max_queue`: requests that may wait per deployment (then 429); `cold_start_timeout`: how
        long a request is held for a deployment that sets none; `randrange(n)`: an int in [0, n)."""
        self.max_queue = max_queue
        self.cold_start_timeout = cold_start_timeout
        self._randrange = randrange
        # Requests holding a slot, per replica id (the balancer's input); absent = 0.
        self.outstanding: dict[str, int] = {}
        # Waiting tickets per deployment id; a deployment is absent when none wait.
        self._queues: dict[str, deque[Ticket[H]]] = {}
        self._deployments: Mapping[str, Deployment] = MappingProxyType({})
        # Runner addresses that refused a connection, with why; their replicas get no request
        # until `mark_reachable` or a route table without that address.
        self._unreachable: dict[str, str] = {}

    # -- reading -----------------------------------------------------------------------------

    def queued(self, deployment_id: str) -> int:
        """Requests waiting for a slot of this deployment now."""
        return len(self._queues.get(deployment_id, ()))

    def total_queued(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def waiting_deployments(self) -> list[str]:
        return list(self._queues)

    def unreachable(self) -> Mapping[str, str]:
        """Runner addresses marked unreachable, with why."""
        return MappingProxyType(self._unreachable)

    def reachable(self, replicas: Sequence[Replica]) -> Sequence[Replica]:
        if not self._unreachable:
            return replicas
        return tuple(r for r in replicas if r.address not in self._unreachable)

    # -- the fast path -----------------------------------------------------------------------

    def take(self, deployment: Deployment) -> Replica | None:
        """A replica with a free slot, its slot taken; None when every reachable one is full, or
        requests already wait for this deployment (first come, first served)."""
        if deployment.deployment_id in self._queues:
            return None
        return self._take(deployment)

    def release(self, deployment_id: str, replica_id: str) -> Sequence[Ticket[H]]:
        """A call on `replica_id` ended: its slot frees, and goes to the oldest waiting request."""
        outstanding = self.outstanding
        left = outstanding[replica_id] - 1
        if left:
            outstanding[replica_id] = left
        else:
            del outstanding[replica_id]
        if deployment_id in self._queues:
            return self._dispatch(deployment_id)
        return _NOTHING

    def _take(self, deployment: Deployment) -> Replica | None:
        replicas = deployment.replicas
        if self._unreachable:
            replicas = self.reachable(replicas)
        replica = choose(replicas, self.outstanding, self._randrange, deployment.predict_concurrency)
        if replica is not None:
            rid = replica.replica_id
            self.outstanding[rid] = self.outstanding.get(rid, 0) + 1
        return replica

    # -- waiting -----------------------------------------------------------------------------

    def enqueue(self, deployment: Deployment, handle: H, *, now: float, timeout: float) -> Ticket[H]:
        """Join the deployment's queue, for at most `timeout` seconds from `now`; TooManyRequests
        when its policy is `reject` and a replica is merely busy, or when its queue is full."""
        did = deployment.deployment_id
        current = self._deployments.get(did)
        if current is None or not current.active:  # a request that started on an older table
            raise NotFound(f"deployment '{did}' was removed or deactivated while requests waited for it")
        reachable = self.reachable(deployment.replicas)
        if reachable and deployment.reject_on_full:
            raise TooManyRequests(
                f"deployment '{did}' is at its limit: every replica runs {deployment.predict_concurrency} "
                f"requests at once (predict_concurrency) and its back-pressure policy is "
                f"{autoscaling_settings.REJECT!r}")
        queue = self._queues.get(did)
        waiting = len(queue) if queue else 0
        if waiting >= self.max_queue:
            raise TooManyRequests(
                f"deployment '{did}' is at its limit: {waiting} requests already wait for a replica "
                f"(queue limit {self.max_queue})")
        cold = deployment.cold_start_timeout_seconds or self.cold_start_timeout
        ticket = Ticket(did, handle, timeout=timeout, deadline_at=now + timeout,
                        hold_until=math.inf if reachable else now + cold, cold_start_timeout=cold)
        if queue is None:
            queue = self._queues[did] = deque()
        queue.append(ticket)
        return ticket

    def expire(self, ticket: Ticket[H], now: float) -> None:
        """Its `wake_at` has come: past its deadline it fails; past its hold it fails unless a
        reachable replica has come meanwhile (all busy: then it waits on, until its deadline)."""
        if ticket.state != "waiting":
            return
        did = ticket.deployment_id
        deployment = self._deployments.get(did)
        reachable = self.reachable(deployment.replicas) if deployment is not None else ()
        if now >= ticket.deadline_at:
            if reachable:
                error: KingpostError = DeadlineExceeded(f"no replica of deployment '{did}' was free within "
                                                        f"{ticket.timeout:g} s (waited in the queue)")
            elif deployment is not None and deployment.replicas:
                error = Unavailable(f"deployment '{did}' had no reachable replica within the request timeout "
                                    f"of {ticket.timeout:g} s ({self._why_unreachable(deployment)})")
            else:
                error = Unavailable(f"deployment '{did}' had no ready replica within the request timeout "
                                    f"of {ticket.timeout:g} s")
        elif now >= ticket.hold_until:
            if reachable:
                ticket.hold_until = math.inf  # a replica came, all busy: wait as any queued request does
                return
            if deployment is not None and deployment.replicas:
                error = Unavailable(f"deployment '{did}' had no reachable replica within the cold-start "
                                    f"timeout of {ticket.cold_start_timeout:g} s "
                                    f"({self._why_unreachable(deployment)})")
            else:
                why = f" ({deployment.why_not_serving()})" if deployment is not None else ""
                error = Unavailable(f"deployment '{did}' was not ready within the cold-start timeout "
                                    f"of {ticket.cold_start_timeout:g} s{why}")
        else:
            return
        self._remove(ticket)
        ticket.state, ticket.error = "failed", error

    def claim(self, ticket: Ticket[H]) -> Replica:
        """The waiter takes the replica it was handed, and with it the slot (to `release` when its
        call ends); raises the error a failed ticket carries."""
        if ticket.state == "granted" and ticket.replica is not None:
            ticket.state = "claimed"
            return ticket.replica
        if ticket.state == "failed" and ticket.error is not None:
            raise ticket.error
        raise RuntimeError(f"{ticket!r} has nothing to claim")

    def withdraw(self, ticket: Ticket[H]) -> Sequence[Ticket[H]]:
        """Its request gave up (cancelled, or failed for another reason): it leaves the queue, and a
        slot it was handed at that moment goes to the next in line."""
        state = ticket.state
        ticket.state = "withdrawn" if state in ("waiting", "granted") else state
        if state == "waiting":
            self._remove(ticket)
        elif state == "granted" and ticket.replica is not None:
            return self.release(ticket.deployment_id, ticket.replica.replica_id)
        return _NOTHING

    # -- what the route table and the runners say ---------------------------------------------

    def set_routes(self, snapshot: RouteSnapshot) -> list[Ticket[H]]:
        """A new route table: waiting requests get the replicas that came, and fail when their
        deployment was removed, deactivated or can no longer serve (BUILDING, FAILED)."""
        self._deployments = snapshot.by_deployment
        if self._unreachable:
            addresses = snapshot.addresses()
            for address in [a for a in self._unreachable if a not in addresses]:
                del self._unreachable[address]
        return self._dispatch_all()

    def mark_unreachable(self, address: str, why: str) -> None:
        """A runner refused a connection: no request goes to it until it is marked reachable again."""
        self._unreachable[address] = why

    def mark_reachable(self, address: str) -> list[Ticket[H]]:
        """The runner answers again (it restarted): requests held for it go."""
        if self._unreachable.pop(address, None) is None:
            return []
        return self._dispatch_all()

    # -- inside ------------------------------------------------------------------------------

    def _dispatch_all(self) -> list[Ticket[H]]:
        decided: list[Ticket[H]] = []
        for deployment_id in list(self._queues):
            decided.extend(self._dispatch(deployment_id))
        return decided

    def _dispatch(self, deployment_id: str) -> list[Ticket[H]]:
        """Hand free slots to the waiting requests, oldest first (after a release, a new table, a
        runner that answers again)."""
        queue = self._queues.get(deployment_id)
        if queue is None:
            return []
        deployment = self._deployments.get(deployment_id)
        if deployment is None or not deployment.active:
            return self._fail_all(deployment_id, NotFound(
                f"deployment '{deployment_id}' was removed or deactivated while requests waited for it"))
        if not deployment.replicas and not deployment.holds:
            return self._fail_all(deployment_id, Unavailable(
                f"deployment '{deployment_id}' is not ready ({deployment.why_not_serving()})"))
        decided = []
        while queue:
            replica = self._take(deployment)
            if replica is None:
                break
            ticket = queue.popleft()
            ticket.state, ticket.replica = "granted", replica
            decided.append(ticket)
        if not queue:
            del self._queues[deployment_id]
        return decided

    def _fail_all(self, deployment_id: str, error: KingpostError) -> list[Ticket[H]]:
        failed = list(self._queues.pop(deployment_id, ()))
        for ticket in failed:
            ticket.state, ticket.error = "failed", error
        return failed

    def _remove(self, ticket: Ticket[H]) -> None:
        queue = self._queues.get(ticket.deployment_id)
        if queue is None:
            return
        try:
            queue.remove(ticket)
        except ValueError:
            return
        if not queue:
            del self._queues[ticket.deployment_id]

    def _why_unreachable(self, deployment: Deployment) -> str:
        whys = [self._unreachable[r.address] for r in deployment.replicas if r.address in self._unreachable]
        return "; ".join(whys) or "no replica is reachable"

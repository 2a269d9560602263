"""The slot queue, with no sockets and no event loop: limits, FIFO hand-over, holding at zero and for
an unreachable runner, timeouts on a hand-stepped clock, table changes, and no slot ever leaked."""

from __future__ import annotations

import random

import pytest

from kingpost.errors import DeadlineExceeded, NotFound, TooManyRequests, Unavailable
from kingpost.v1 import scheduler_pb2 as s
from kingpost_router.routes import Replica, RouteSnapshot
from kingpost_router.slots import SlotQueue, Ticket

ACTIVE = s.DEPLOYMENT_STATUS_ACTIVE
SCALED_TO_ZERO = s.DEPLOYMENT_STATUS_SCALED_TO_ZERO
FAILED = s.DEPLOYMENT_STATUS_FAILED


def replica(n: int) -> s.ReplicaRoute:
    return s.ReplicaRoute(replica_id=f"rep_{n}", address=f"10.0.0.{n}:9000")


def snapshot(*deployments: s.DeploymentRoute) -> RouteSnapshot:
    return RouteSnapshot.from_table(s.RouteTable(version=1, models=[
        s.ModelRoute(model_id="mdl_a", name="a", deployments=deployments)]))


def queue_over(*deployments: s.DeploymentRoute, max_queue: int = 100, seed: int = 1,
               ) -> tuple[SlotQueue[str], RouteSnapshot]:
    slots: SlotQueue[str] = SlotQueue(max_queue=max_queue, cold_start_timeout=300.0,
                                      randrange=random.Random(seed).randrange)
    snap = snapshot(*deployments)
    assert slots.set_routes(snap) == []
    return slots, snap


ONE = s.DeploymentRoute(deployment_id="dep_one", active=True, status=ACTIVE, predict_concurrency=1,
                        replicas=[replica(1)])
TWO = s.DeploymentRoute(deployment_id="dep_two", active=True, status=ACTIVE, predict_concurrency=2,
                        replicas=[replica(1), replica(2)])
ZERO = s.DeploymentRoute(deployment_id="dep_zero", active=True, status=SCALED_TO_ZERO, predict_concurrency=1,
                         status_reason="no replica runs; the next request wakes it")


def test_a_replica_takes_requests_up_to_its_limit_and_a_release_frees_a_slot() -> None:
    slots, snap = queue_over(TWO)
    dep = snap.by_deployment["dep_two"]
    taken = [slots.take(dep) for _ in range(4)]
    assert sorted(r.replica_id for r in taken) == ["rep_1", "rep_1", "rep_2", "rep_2"]
    assert slots.take(dep) is None
    assert slots.outstanding == {"rep_1": 2, "rep_2": 2}
    assert slots.release("dep_two", "rep_2") == ()
    assert slots.take(dep) == Replica("rep_2", "10.0.0.2:9000")


def test_no_limit_means_every_request_gets_a_slot_at_once() -> None:
    unlimited = s.DeploymentRoute(deployment_id="dep_free", active=True, status=ACTIVE, replicas=[replica(1)])
    slots, snap = queue_over(unlimited)
    assert all(slots.take(snap.by_deployment["dep_free"]) is not None for _ in range(1000))
    assert slots.outstanding == {"rep_1": 1000}


def test_waiting_requests_are_handed_freed_slots_first_come_first_served() -> None:
    slots, snap = queue_over(ONE)
    dep = snap.by_deployment["dep_one"]
    assert slots.take(dep) is not None
    tickets = [slots.enqueue(dep, f"request {i}", now=0.0, timeout=60) for i in range(3)]
    assert slots.queued("dep_one") == 3 and not any(t.held for t in tickets)
    for expected in tickets:
        [granted] = slots.release("dep_one", "rep_1")
        assert granted is expected and granted.state == "granted"
        assert slots.claim(granted) == Replica("rep_1", "10.0.0.1:9000")
        # The slot went to the waiter: a newcomer does not overtake it.
        assert slots.take(dep) is None
    assert slots.queued("dep_one") == 0
    assert slots.release("dep_one", "rep_1") == () and slots.outstanding == {}


def test_beyond_the_queue_bound_requests_are_refused_with_429() -> None:
    slots, snap = queue_over(ONE, max_queue=2)
    dep = snap.by_deployment["dep_one"]
    slots.take(dep)
    slots.enqueue(dep, "a", now=0.0, timeout=60)
    slots.enqueue(dep, "b", now=0.0, timeout=60)
    with pytest.raises(TooManyRequests) as caught:
        slots.enqueue(dep, "c", now=0.0, timeout=60)
    assert str(caught.value) == ("deployment 'dep_one' is at its limit: 2 requests already wait for a "
                                 "replica (queue limit 2)")
    assert slots.queued("dep_one") == 2


def test_reject_on_full_refuses_at_once_when_replicas_are_busy_but_holds_at_zero() -> None:
    reject = s.DeploymentRoute(deployment_id="dep_reject", active=True, status=ACTIVE, predict_concurrency=1,
                               backpressure_policy="reject", replicas=[replica(1)])
    reject_zero = s.DeploymentRoute(deployment_id="dep_reject_zero", active=True, status=SCALED_TO_ZERO,
                                    backpressure_policy="reject")
    slots, snap = queue_over(reject, reject_zero)
    slots.take(snap.by_deployment["dep_reject"])
    with pytest.raises(TooManyRequests) as caught:
        slots.enqueue(snap.by_deployment["dep_reject"], "refused", now=0.0, timeout=60)
    assert str(caught.value) == ("deployment 'dep_reject' is at its limit: every replica runs 1 requests at "
                                 "once (predict_concurrency) and its back-pressure policy is 'reject'")
    assert slots.queued("dep_reject") == 0
    held = slots.enqueue(snap.by_deployment["dep_reject_zero"], "held", now=0.0, timeout=60)
    assert held.held and slots.queued("dep_reject_zero") == 1


def test_a_request_that_gives_up_leaves_the_queue_and_is_never_handed_a_slot() -> None:
    slots, snap = queue_over(ONE)
    dep = snap.by_deployment["dep_one"]
    slots.take(dep)
    gone = slots.enqueue(dep, "gone", now=0.0, timeout=60)
    stays = slots.enqueue(dep, "stays", now=0.0, timeout=60)
    assert slots.withdraw(gone) == ()
    assert gone.state == "withdrawn" and slots.queued("dep_one") == 1
    assert slots.release("dep_one", "rep_1") == [stays]
    assert gone.replica is None


def test_a_slot_handed_over_as_its_request_gives_up_goes_to_the_next_in_line() -> None:
    slots, snap = queue_over(ONE)
    dep = snap.by_deployment["dep_one"]
    slots.take(dep)
    first = slots.enqueue(dep, "first", now=0.0, timeout=60)
    second = slots.enqueue(dep, "second", now=0.0, timeout=60)
    assert slots.release("dep_one", "rep_1") == [first]
    # The first request is cancelled before it could claim what it was handed.
    assert slots.withdraw(first) == [second]
    assert slots.claim(second) == Replica("rep_1", "10.0.0.1:9000")
    assert slots.outstanding == {"rep_1": 1}
    with pytest.raises(RuntimeError):
        slots.claim(first)


def test_a_slot_handed_over_as_its_request_gives_up_is_freed_when_nobody_else_waits() -> None:
    slots, snap = queue_over(ONE)
    dep = snap.by_deployment["dep_one"]
    slots.take(dep)
    ticket = slots.enqueue(dep, "only", now=0.0, timeout=60)
    assert slots.release("dep_one", "rep_1") == [ticket]
    assert slots.withdraw(ticket) == ()
    assert slots.outstanding == {}
    assert slots.withdraw(ticket) == () and slots.outstanding == {}  # twice is harmless


def test_a_claimed_slot_is_released_by_its_call_only() -> None:
    slots, snap = queue_over(ONE)
    dep = snap.by_deployment["dep_one"]
    slots.take(dep)
    ticket = slots.enqueue(dep, "mine", now=0.0, timeout=60)
    slots.release("dep_one", "rep_1")
    slots.claim(ticket)
    assert slots.withdraw(ticket) == ()  # a cancellation after the claim: the call releases, not this
    assert slots.outstanding == {"rep_1": 1}


def test_a_request_waiting_for_a_busy_replica_fails_at_its_deadline_with_504() -> None:
    slots, snap = queue_over(ONE)
    dep = snap.by_deployment["dep_one"]
    slots.take(dep)
    ticket = slots.enqueue(dep, "late", now=100.0, timeout=0.5)
    assert (ticket.held, ticket.wake_at) == (False, 100.5)
    slots.expire(ticket, 100.4)  # an early wake-up changes nothing
    assert ticket.state == "waiting"
    slots.expire(ticket, 100.5)
    assert ticket.state == "failed" and slots.queued("dep_one") == 0
    with pytest.raises(DeadlineExceeded) as caught:
        slots.claim(ticket)
    assert str(caught.value) == ("no replica of deployment 'dep_one' was free within 0.5 s "
                                 "(waited in the queue)")
    assert slots.release("dep_one", "rep_1") == ()  # the failed request is not handed the slot


def test_a_deployment_at_zero_holds_requests_for_its_cold_start_timeout_then_503() -> None:
    own = s.DeploymentRoute(deployment_id="dep_own", active=True, status=SCALED_TO_ZERO,
                            cold_start_timeout_seconds=5)
    slots, snap = queue_over(ZERO, own)
    by_default = slots.enqueue(snap.by_deployment["dep_zero"], "a", now=10.0, timeout=600)
    by_own = slots.enqueue(snap.by_deployment["dep_own"], "b", now=10.0, timeout=600)
    assert (by_default.held, by_default.wake_at) == (True, 310.0)  # the router's default
    assert by_own.wake_at == 15.0  # the deployment's own
    slots.expire(by_own, 15.0)
    with pytest.raises(Unavailable) as caught:
        slots.claim(by_own)
    assert str(caught.value) == ("deployment 'dep_own' was not ready within the cold-start timeout of 5 s "
                                 "(status: SCALED_TO_ZERO)")
    slots.expire(by_default, 310.0)
    assert "(status: SCALED_TO_ZERO: no replica runs; the next request wakes it)" in str(by_default.error)


def test_a_held_request_is_shorter_than_the_cold_start_timeout_when_its_deadline_is() -> None:
    slots, snap = queue_over(ZERO)
    ticket = slots.enqueue(snap.by_deployment["dep_zero"], "a", now=0.0, timeout=2)
    assert ticket.wake_at == 2
    slots.expire(ticket, 2)
    assert isinstance(ticket.error, Unavailable)
    assert str(ticket.error) == "deployment 'dep_zero' had no ready replica within the request timeout of 2 s"


def test_a_table_with_ready_replicas_releases_held_requests_in_order_up_to_the_limit() -> None:
    slots, snap = queue_over(ZERO)
    tickets = [slots.enqueue(snap.by_deployment["dep_zero"], f"r{i}", now=0.0, timeout=600) for i in range(3)]
    woke = s.DeploymentRoute(deployment_id="dep_zero", active=True, status=ACTIVE, predict_concurrency=1,
                             replicas=[replica(1), replica(2)])
    assert slots.set_routes(snapshot(woke)) == tickets[:2]
    assert {slots.claim(t).replica_id for t in tickets[:2]} == {"rep_1", "rep_2"}
    assert tickets[2].state == "waiting"
    # At its hold's end a replica exists, all busy: it waits on like any queued request.
    slots.expire(tickets[2], 300.0)
    assert tickets[2].state == "waiting" and tickets[2].wake_at == 600
    assert slots.release("dep_zero", "rep_2") == [tickets[2]]


GONE = "deployment 'dep_one' was removed or deactivated while requests waited for it"


@pytest.mark.parametrize(("change", "error", "message"), [
    (None, NotFound, GONE),
    ({"active": False}, NotFound, GONE),
    ({"status": FAILED, "status_reason": "the model crashed at load", "replicas": []}, Unavailable,
     "deployment 'dep_one' is not ready (status: FAILED: the model crashed at load)"),
], ids=["removed", "deactivated", "failed"])
def test_waiting_requests_fail_when_a_table_takes_their_deployment_away(change, error, message) -> None:
    slots, snap = queue_over(ONE)
    dep = snap.by_deployment["dep_one"]
    slots.take(dep)
    tickets = [slots.enqueue(dep, f"r{i}", now=0.0, timeout=60) for i in range(2)]
    routes = []
    if change is not None:
        serving = {"deployment_id": "dep_one", "active": True, "status": ACTIVE, "predict_concurrency": 1,
                   "replicas": [replica(1)]}
        routes = [s.DeploymentRoute(**{**serving, **change})]
    assert slots.set_routes(snapshot(*routes)) == tickets
    for ticket in tickets:
        with pytest.raises(error) as caught:
            slots.claim(ticket)
        assert str(caught.value) == message
    assert slots.queued("dep_one") == 0
    assert slots.release("dep_one", "rep_1") == () and slots.outstanding == {}  # the running call ends


def test_a_request_from_an_older_table_cannot_wait_for_a_deployment_since_removed() -> None:
    slots, snap = queue_over(ONE)
    dep = snap.by_deployment["dep_one"]
    slots.take(dep)
    slots.set_routes(snapshot())  # removed while the request was on its way (a retry, say)
    with pytest.raises(NotFound) as caught:
        slots.enqueue(dep, "late", now=0.0, timeout=60)
    assert str(caught.value) == GONE
    assert slots.queued("dep_one") == 0


def test_a_removed_replica_finishes_its_calls_and_waiters_go_to_the_new_one() -> None:
    slots, snap = queue_over(ONE)
    dep = snap.by_deployment["dep_one"]
    assert slots.take(dep).replica_id == "rep_1"
    waiting = slots.enqueue(dep, "w", now=0.0, timeout=60)
    replaced = s.DeploymentRoute(deployment_id="dep_one", active=True, status=ACTIVE, predict_concurrency=1,
                                 replicas=[replica(3)])
    assert slots.set_routes(snapshot(replaced)) == [waiting]
    assert slots.claim(waiting).replica_id == "rep_3"
    assert slots.release("dep_one", "rep_1") == ()
    assert slots.outstanding == {"rep_3": 1}


def test_an_unreachable_runner_gets_no_request_while_another_replica_serves() -> None:
    slots, snap = queue_over(TWO)
    dep = snap.by_deployment["dep_two"]
    slots.mark_unreachable("10.0.0.1:9000", "replica rep_1 at 10.0.0.1:9000: connection refused")
    assert [slots.take(dep).replica_id for _ in range(2)] == ["rep_2", "rep_2"]
    assert slots.take(dep) is None  # rep_2 full; rep_1's free slots are not offered
    ticket = slots.enqueue(dep, "busy", now=0.0, timeout=60)
    assert not ticket.held  # a reachable replica exists: it waits for a slot, not for a runner


def test_requests_for_a_deployment_whose_runners_all_refuse_are_held_until_one_answers_again() -> None:
    slots, snap = queue_over(ONE)
    dep = snap.by_deployment["dep_one"]
    slots.mark_unreachable("10.0.0.1:9000", "replica rep_1 at 10.0.0.1:9000: connection refused")
    assert slots.take(dep) is None
    ticket = slots.enqueue(dep, "held", now=0.0, timeout=600)
    assert ticket.held and ticket.wake_at == 300.0
    assert slots.mark_reachable("10.0.0.9:9000") == []  # another runner: nothing changes
    assert slots.mark_reachable("10.0.0.1:9000") == [ticket]
    assert slots.claim(ticket).replica_id == "rep_1"


def test_a_runner_that_stays_unreachable_fails_its_held_requests_naming_why() -> None:
    slots, snap = queue_over(ONE)
    dep = snap.by_deployment["dep_one"]
    slots.mark_unreachable("10.0.0.1:9000", "replica rep_1 at 10.0.0.1:9000: connection refused")
    ticket = slots.enqueue(dep, "held", now=0.0, timeout=600)
    slots.expire(ticket, 300.0)
    assert isinstance(ticket.error, Unavailable)
    assert str(ticket.error) == ("deployment 'dep_one' had no reachable replica within the cold-start "
                                 "timeout of 300 s (replica rep_1 at 10.0.0.1:9000: connection refused)")


def test_reject_on_full_holds_rather_than_refuses_when_the_runner_is_unreachable() -> None:
    reject = s.DeploymentRoute(deployment_id="dep_reject", active=True, status=ACTIVE, predict_concurrency=1,
                               backpressure_policy="reject", replicas=[replica(1)])
    slots, snap = queue_over(reject)
    slots.mark_unreachable("10.0.0.1:9000", "refused")
    assert slots.enqueue(snap.by_deployment["dep_reject"], "held", now=0.0, timeout=60).held


def test_a_table_that_moves_the_runner_releases_held_requests_and_forgets_the_old_address() -> None:
    slots, snap = queue_over(ONE)
    slots.mark_unreachable("10.0.0.1:9000", "refused")
    ticket = slots.enqueue(snap.by_deployment["dep_one"], "held", now=0.0, timeout=60)
    restarted = s.DeploymentRoute(deployment_id="dep_one", active=True, status=ACTIVE, predict_concurrency=1,
                                  replicas=[s.ReplicaRoute(replica_id="rep_1", address="10.0.0.1:9001")])
    assert slots.set_routes(snapshot(restarted)) == [ticket]
    assert slots.claim(ticket).address == "10.0.0.1:9001"
    assert dict(slots.unreachable()) == {}


def test_a_table_that_keeps_the_address_keeps_it_unreachable() -> None:
    slots, snap = queue_over(ONE)
    slots.mark_unreachable("10.0.0.1:9000", "refused")
    ticket = slots.enqueue(snap.by_deployment["dep_one"], "held", now=0.0, timeout=60)
    assert slots.set_routes(snapshot(ONE)) == []
    assert ticket.state == "waiting" and dict(slots.unreachable()) == {"10.0.0.1:9000": "refused"}


def test_an_expiry_that_comes_after_the_hand_over_changes_nothing() -> None:
    slots, snap = queue_over(ONE)
    dep = snap.by_deployment["dep_one"]
    slots.take(dep)
    ticket = slots.enqueue(dep, "raced", now=0.0, timeout=1)
    slots.release("dep_one", "rep_1")
    slots.expire(ticket, 5.0)  # its timer fired in the same loop turn as the hand-over
    assert slots.claim(ticket).replica_id == "rep_1"


@pytest.mark.parametrize("seed", range(20))
def test_no_slot_leaks_whatever_the_order_of_events(seed: int) -> None:
    """Requests arrive, wait, are cancelled, time out, finish, while tables and runners come and go.
    At every step the slots taken are exactly the calls running; at the end, none is left."""
    rng = random.Random(seed)
    deployments = [s.DeploymentRoute(deployment_id=f"dep_{d}", active=True, status=ACTIVE,
                                     predict_concurrency=1 + d, replicas=[replica(d), replica(d + 10)])
                   for d in range(3)]
    slots, snap = queue_over(*deployments, max_queue=5, seed=seed)
    running: list[tuple[str, Replica]] = []  # calls holding a slot
    waiting: list[Ticket[str]] = []
    now = 0.0

    def settle(decided) -> None:
        """What the waiters do once the queue decided their tickets."""
        assert all(ticket in waiting for ticket in decided)
        while (ticket := next((t for t in waiting if t.state != "waiting"), None)) is not None:
            waiting.remove(ticket)
            if ticket.state == "granted" and rng.random() < 0.3:  # cancelled at the moment of the hand-over
                decided = slots.withdraw(ticket)
                assert all(t in waiting for t in decided)
            elif ticket.state == "granted":
                running.append((ticket.deployment_id, slots.claim(ticket)))
            else:
                assert ticket.state == "failed"
                with pytest.raises((DeadlineExceeded, Unavailable, NotFound)):
                    slots.claim(ticket)

    for _ in range(400):
        now += rng.random()
        event = rng.random()
        if event < 0.4:
            dep = snap.by_deployment.get(rng.choice(deployments).deployment_id)
            if dep is None:
                continue
            taken = slots.take(dep)
            if taken is not None:
                running.append((dep.deployment_id, taken))
            else:
                try:
                    waiting.append(slots.enqueue(dep, "r", now=now, timeout=rng.choice([0.5, 5, 60])))
                except TooManyRequests:
                    pass
        elif event < 0.7 and running:
            did, rep = running.pop(rng.randrange(len(running)))
            settle(slots.release(did, rep.replica_id))
        elif event < 0.8 and waiting:  # a client hangs up
            ticket = rng.choice(waiting)
            waiting.remove(ticket)
            settle(slots.withdraw(ticket))
        elif event < 0.88:
            for ticket in waiting:
                if ticket.wake_at <= now:
                    slots.expire(ticket, now)
            settle(())
        elif event < 0.94:
            address = f"10.0.0.{rng.randrange(13)}:9000"
            if rng.random() < 0.5:
                slots.mark_unreachable(address, "refused")
            else:
                settle(slots.mark_reachable(address))
        else:
            kept = [d for d in deployments if rng.random() < 0.8]
            snap = snapshot(*kept)
            settle(slots.set_routes(snap))
        held = {}
        for _, rep in running:
            held[rep.replica_id] = held.get(rep.replica_id, 0) + 1
        assert slots.outstanding == held
        assert slots.queued("dep_0") + slots.queued("dep_1") + slots.queued("dep_2") == len(waiting)

    while waiting:
        settle(slots.withdraw(waiting.pop()))
    while running:
        did, rep = running.pop()
        settle(slots.release(did, rep.replica_id))
    assert slots.outstanding == {} and slots.total_queued() == 0 and not waiting

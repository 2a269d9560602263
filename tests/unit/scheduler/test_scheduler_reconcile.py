"""Reconcile: desired counts + existing replicas → starts, stops, forgets and failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kingpost_scheduler.facts import FAILED, PENDING, READY, STARTING, STOPPING, Node, Replica
from kingpost_scheduler.reconcile import Command, Failure, Plan, ReplicaSpec, Start, commands, plan

T0 = datetime(2025, 1, 1, tzinfo=UTC)
NODE_TIMEOUT = timedelta(seconds=15)
START_TIMEOUT = timedelta(seconds=300)


class Clock:
    """A fake clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = T0

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def nodes(*ids: str, at: datetime = T0) -> list[Node]:
    return [Node(i, f"{i}:7000", at) for i in ids]


def rep(rid: str, dep: str, node: str, state: str, since: datetime = T0, message: str = "") -> Replica:
    address = f"{node}:9000" if state == READY else ""
    return Replica(rid, dep, node, state, since, address=address, message=message)


def run(desired: dict[str, int], replicas: list[Replica], ns: list[Node], now: datetime = T0) -> Plan:
    return plan(desired, replicas, ns, now=now, node_timeout=NODE_TIMEOUT, start_timeout=START_TIMEOUT)


def test_a_new_deployment_gets_its_replicas_spread_over_nodes() -> None:
    p = run({"d1": 3}, [], nodes("a", "b"))
    assert p.starts == (Start("d1", "a"), Start("d1", "b"), Start("d1", "a"))
    assert p.stops == () and p.failures == ()


def test_nothing_to_do_when_desired_is_met() -> None:
    p = run({"d1": 1}, [rep("r1", "d1", "a", READY)], nodes("a"))
    assert p.empty


def test_placement_counts_replicas_of_other_deployments() -> None:
    p = run({"d1": 1, "d2": 1}, [rep("r1", "d1", "a", READY)], nodes("a", "b"))
    assert p.starts == (Start("d2", "b"),)


def test_no_live_node_starts_nothing() -> None:
    p = run({"d1": 1}, [], nodes("a", at=T0 - timedelta(seconds=60)))
    assert p.starts == ()


def test_replicas_on_a_dead_node_are_forgotten_and_replaced_elsewhere() -> None:
    clock = Clock()
    replicas = [rep("r1", "d1", "a", READY)]
    ns = [Node("a", "a:7000", T0), Node("b", "b:7000", T0 + timedelta(seconds=20))]
    clock.advance(20)  # node a last heard 20 s ago: gone; b is fresh
    p = run({"d1": 1}, replicas, ns, clock.now)
    assert p.forget == ("r1",)
    assert p.starts == (Start("d1", "b"),)


def test_a_replica_stuck_starting_past_the_timeout_is_stopped_and_replaced() -> None:
    clock = Clock()
    replicas = [rep("r1", "d1", "a", STARTING)]
    clock.advance(299)
    assert run({"d1": 1}, replicas, nodes("a", at=clock.now), clock.now).empty
    clock.advance(2)
    p = run({"d1": 1}, replicas, nodes("a", at=clock.now), clock.now)
    assert p.stops == ("r1",)
    assert p.starts == (Start("d1", "a"),)


def test_a_failed_replica_fails_its_deployment_with_the_reason_and_is_not_retried() -> None:
    replicas = [rep("r1", "d1", "a", FAILED, message="ModuleNotFoundError: No module named 'torch'")]
    p = run({"d1": 1}, replicas, nodes("a"))
    assert p.failures == (Failure("d1", "ModuleNotFoundError: No module named 'torch'"),)
    assert p.stops == ("r1",)
    assert p.starts == ()


def test_failed_deployment_wanting_zero_starts_nothing_after_its_replicas_stopped() -> None:
    replicas = [rep("r1", "d1", "a", STOPPING)]
    assert run({"d1": 0}, replicas, nodes("a")).empty


def test_surplus_stops_not_ready_replicas_first_then_the_newest() -> None:
    replicas = [
        rep("old", "d1", "a", READY, since=T0 - timedelta(seconds=100)),
        rep("new", "d1", "a", READY, since=T0 - timedelta(seconds=10)),
        rep("loading", "d1", "a", STARTING, since=T0 - timedelta(seconds=1)),
    ]
    assert run({"d1": 2}, replicas, nodes("a")).stops == ("loading",)
    assert run({"d1": 1}, replicas, nodes("a")).stops == ("loading", "new")


def test_a_deleted_deployment_absent_from_desired_has_all_replicas_stopped() -> None:
    replicas = [rep("r1", "gone", "a", READY), rep("r2", "gone", "a", PENDING)]
    assert set(run({}, replicas, nodes("a")).stops) == {"r1", "r2"}


def test_stopping_replicas_do_not_count_towards_desired() -> None:
    p = run({"d1": 1}, [rep("r1", "d1", "a", STOPPING)], nodes("a"))
    assert p.starts == (Start("d1", "a"),)


def test_commands_start_pending_replicas_and_stop_stopping_ones() -> None:
    spec = ReplicaSpec("d1", "m1", "sha256:ab", environment="production")
    replicas = [rep("r3", "d1", "b", STOPPING), rep("r1", "d1", "a", PENDING), rep("r2", "d1", "a", READY),
                rep("r4", "gone", "a", PENDING), rep("r5", "d1", "lost", STOPPING)]
    assert commands(replicas, {"d1": spec}, {"a": "a:7000", "b": "b:7000"}) == (
        Command("r1", "a:7000", spec),
        Command("r3", "b:7000"),
        Command("r5", ""),  # its node is unknown: nothing to call, just forget it
    )


# --- capacity, GPUs, draining ------------------------------------------------------------------

from kingpost_scheduler.placement import Demand, Overcommit  # noqa: E402

GiB = 2**30
H100x2 = Demand(cpu_millis=1000, memory_bytes=GiB, gpu_type="H100", gpu_count=2)


def gpu_node(node_id: str, gpus: int, *, draining: bool = False) -> Node:
    return Node(node_id, f"{node_id}:7000", T0, cpu_count=8, memory_bytes=64 * GiB, gpus=("H100",) * gpus,
                name=node_id, draining=draining)


def test_a_gpu_deployment_lands_on_the_node_with_room_and_is_given_its_gpus() -> None:
    p = plan({"d1": 1}, [], [gpu_node("big", 4), gpu_node("small", 2)], now=T0, node_timeout=NODE_TIMEOUT,
             start_timeout=START_TIMEOUT, demands={"d1": H100x2})
    assert p.starts == (Start("d1", "small", (0, 1)),)  # best fit: the 2-GPU node, not the 4


def test_a_replica_that_fits_nowhere_waits_with_the_reason() -> None:
    running = [Replica("r1", "d0", "small", READY, T0, gpus=(0,))]
    p = plan({"d1": 1, "d0": 1}, running, [gpu_node("small", 2)], now=T0, node_timeout=NODE_TIMEOUT,
             start_timeout=START_TIMEOUT, demands={"d1": H100x2, "d0": Demand(gpu_type="H100", gpu_count=1)})
    assert p.starts == ()
    assert p.waiting == (Failure("d1", "needs 2×H100; the most free is 1×H100 on small"),)


def test_cpu_and_memory_are_never_over_promised_unless_over_commit_allows() -> None:
    small = [Node("a", "a:7000", T0, cpu_count=2, memory_bytes=64 * GiB)]
    one_cpu = {"d1": Demand(cpu_millis=1000, memory_bytes=GiB)}
    strict = plan({"d1": 5}, [], small, now=T0, node_timeout=NODE_TIMEOUT, start_timeout=START_TIMEOUT,
                  demands=one_cpu)
    assert len(strict.starts) == 2 and strict.waiting[0].reason.startswith("needs 1 CPU")
    shared = plan({"d1": 5}, [], small, now=T0, node_timeout=NODE_TIMEOUT, start_timeout=START_TIMEOUT,
                  demands=one_cpu, overcommit=Overcommit(cpu=16))
    assert len(shared.starts) == 5 and shared.waiting == ()


def test_a_stopping_replica_still_holds_its_gpus() -> None:
    leaving = [Replica("r1", "d0", "n", STOPPING, T0, gpus=(0, 1))]
    p = plan({"d1": 1}, leaving, [gpu_node("n", 2)], now=T0, node_timeout=NODE_TIMEOUT,
             start_timeout=START_TIMEOUT, demands={"d1": H100x2, "d0": H100x2})
    assert p.starts == () and p.waiting


def test_drain_starts_a_replacement_first_and_stops_the_old_replica_once_it_serves() -> None:
    ns = [gpu_node("old", 2, draining=True), gpu_node("new", 2)]
    on_old = Replica("r1", "d1", "old", READY, T0, address="old:9000", gpus=(0, 1))
    first = plan({"d1": 1}, [on_old], ns, now=T0, node_timeout=NODE_TIMEOUT, start_timeout=START_TIMEOUT,
                 demands={"d1": H100x2})
    assert first.starts == (Start("d1", "new", (0, 1)),) and first.stops == ()
    starting = Replica("r2", "d1", "new", STARTING, T0, gpus=(0, 1))
    waiting = plan({"d1": 1}, [on_old, starting], ns, now=T0, node_timeout=NODE_TIMEOUT,
                   start_timeout=START_TIMEOUT, demands={"d1": H100x2})
    assert waiting.empty  # the old one serves until the new one does
    ready = Replica("r2", "d1", "new", READY, T0, address="new:9000", gpus=(0, 1))
    done = plan({"d1": 1}, [on_old, ready], ns, now=T0, node_timeout=NODE_TIMEOUT, start_timeout=START_TIMEOUT,
                demands={"d1": H100x2})
    assert done.stops == ("r1",) and done.starts == ()

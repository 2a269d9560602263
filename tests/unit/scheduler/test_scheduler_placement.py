"""Placement: live nodes only, fewest replicas first, deterministic ties; heartbeats reveal gone replicas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kingpost_scheduler.facts import PENDING, READY, STARTING, STOPPING, Node, Replica
from kingpost_scheduler.placement import choose_node, live_nodes, missing_from_heartbeat

T0 = datetime(2025, 1, 1, tzinfo=UTC)
TIMEOUT = timedelta(seconds=15)


def node(node_id: str, seen_ago: float = 0.0) -> Node:
    return Node(node_id, f"{node_id}:7000", T0 - timedelta(seconds=seen_ago))


def test_a_node_silent_longer_than_the_timeout_is_not_live() -> None:
    nodes = [node("a", seen_ago=15), node("b", seen_ago=15.1)]
    assert [n.id for n in live_nodes(nodes, T0, TIMEOUT)] == ["a"]


def test_new_replica_goes_to_the_live_node_with_fewest_replicas() -> None:
    nodes = [node("a"), node("b"), node("c", seen_ago=60)]
    assert choose_node(nodes, {"a": 2, "b": 1, "c": 0}, T0, TIMEOUT).id == "b"


def test_ties_go_to_the_smallest_node_id_whatever_the_input_order() -> None:
    assert choose_node([node("n2"), node("n1")], {}, T0, TIMEOUT).id == "n1"
    assert choose_node([node("n1"), node("n2")], {}, T0, TIMEOUT).id == "n1"


def test_no_live_node_means_no_placement() -> None:
    assert choose_node([node("a", seen_ago=100)], {}, T0, TIMEOUT) is None


def replica(rid: str, state: str, since_ago: float = 60.0) -> Replica:
    return Replica(rid, "dep_1", "a", state, T0 - timedelta(seconds=since_ago))


def test_a_replica_the_heartbeat_omits_is_gone() -> None:
    ours = [replica("r1", READY), replica("r2", STARTING), replica("r3", READY)]
    assert missing_from_heartbeat(["r3"], ours, T0, timedelta(seconds=3)) == ["r1", "r2"]


def test_pending_stopping_and_just_started_replicas_are_not_judged_by_a_heartbeat() -> None:
    ours = [replica("p", PENDING), replica("s", STOPPING), replica("new", STARTING, since_ago=1)]
    assert missing_from_heartbeat([], ours, T0, timedelta(seconds=3)) == []


def test_after_a_restart_replicas_from_the_previous_run_are_judged_at_once() -> None:
    previous_run = replica("old", READY, since_ago=1)
    assert missing_from_heartbeat([], [previous_run], T0, timedelta(seconds=3),
                                  settled_before=T0 - timedelta(seconds=0.5)) == ["old"]

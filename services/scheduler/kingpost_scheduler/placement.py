"""Where a replica goes, and which nodes are alive.

A node is live while its last heartbeat is at most `node_timeout` old. A new replica goes to the
live node that runs the fewest replicas; ties go to the smallest node id, so the same state always
gives the same answer (tests and replays depend on that).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from kingpost_scheduler.facts import FAILED, PENDING, STOPPING, Node, Replica


def is_live(node: Node, now: datetime, node_timeout: timedelta) -> bool:
    return now - node.last_seen <= node_timeout


def live_nodes(nodes: Iterable[Node], now: datetime, node_timeout: timedelta) -> list[Node]:
    return sorted((n for n in nodes if is_live(n, now, node_timeout)), key=lambda n: n.id)


def choose_node(
    nodes: Sequence[Node], load: Mapping[str, int], now: datetime, node_timeout: timedelta
) -> Node | None:
    """The live node with the fewest replicas (`load`: node id → replicas on it); None when none is live."""
    live = live_nodes(nodes, now, node_timeout)
    if not live:
        return None
    return min(live, key=lambda n: (load.get(n.id, 0), n.id))


def missing_from_heartbeat(
    reported: Collection[str], ours: Iterable[Replica], heard_at: datetime, grace: timedelta,
    *, settled_before: datetime | None = None,
) -> list[str]:
    """Replicas we think run on a node but that its heartbeat does not list: they are gone.

    PENDING replicas are not on the node yet, STOPPING ones are leaving anyway, and FAILED ones are
    listed by no heartbeat (the reconcile pass stops and replaces them in its time). A replica
    whose state changed within `grace` of the heartbeat may simply be newer than the heartbeat
    (StartReplica acknowledged while the heartbeat was in flight), so it gets the benefit of the doubt
    — unless it changed before `settled_before` (when this scheduler started: a heartbeat heard since
    cannot predate a replica from the previous run, as plain NATS keeps no heartbeat for later).
    """
    reported_ids = set(reported)

    def settled(r: Replica) -> bool:
        return r.since + grace <= heard_at or (settled_before is not None and r.since < settled_before)

    return sorted(
        r.id for r in ours
        if r.state not in (PENDING, STOPPING, FAILED) and r.id not in reported_ids and settled(r)
    )

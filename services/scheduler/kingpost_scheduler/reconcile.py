"""Desired replica counts + the replicas that exist → which replicas to start, stop or forget.

Rules, in order, per deployment:
1. A replica on a node that is not live is gone: forget it (there is nobody to tell).
2. A FAILED replica of a deployment that has never served fails it: the model does not load at its
   first start, so the deployment is reported FAILED with the replica's message and nothing of it
   is started again (no hot loop); its replicas are stopped. In a deployment that has served
   (`served`), a FAILED replica waits `healing.REPLACE_FAILED_AFTER`, then is stopped and replaced.
3. A replica PENDING or STARTING for longer than `start_timeout` is stopped and replaced. A
   RESTARTING one is its node's to heal: it keeps its place (nothing starts in its stead).
4. Then start or stop replicas until the healthy ones match the desired count. Surplus goes
   not-ready first, newest first, so serving replicas are the last to leave.

`commands` turns the replicas the pass leaves behind into what their nodes must be told: start
each PENDING one, stop each STOPPING one (the dispatcher sends them until acknowledged).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from kingpost_scheduler import healing
from kingpost_scheduler.facts import FAILED, PENDING, READY, RESTARTING, STARTING, STOPPING, Node, Replica
from kingpost_scheduler.placement import choose_node, live_nodes

_STOP_FIRST = {FAILED: 0, PENDING: 0, RESTARTING: 1, STARTING: 1, READY: 2}


@dataclass(frozen=True)
class Start:
    deployment_id: str
    node_id: str


@dataclass(frozen=True)
class Failure:
    deployment_id: str
    reason: str


@dataclass(frozen=True)
class Plan:
    starts: tuple[Start, ...] = ()
    # Replica ids to stop (StopReplica on their node).
    stops: tuple[str, ...] = ()
    # Replica ids that are gone already (their node is not live): delete the rows.
    forget: tuple[str, ...] = ()
    failures: tuple[Failure, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.starts or self.stops or self.forget or self.failures)


def plan(
    desired: Mapping[str, int],
    replicas: Sequence[Replica],
    nodes: Sequence[Node],
    *,
    now: datetime,
    node_timeout: timedelta,
    start_timeout: timedelta,
    served: Collection[str] = (),
) -> Plan:
    """`desired`: deployment id → replica count; a deployment not in it wants none. `served`: the
    deployments that have served (a load failure does not fail them)."""
    live = {n.id for n in live_nodes(nodes, now, node_timeout)}
    forget = sorted(r.id for r in replicas if r.node_id not in live)
    present = [r for r in replicas if r.node_id in live]

    load: Counter[str] = Counter(r.node_id for r in present if r.state != STOPPING)
    by_deployment: dict[str, list[Replica]] = defaultdict(list)
    for r in present:
        if r.state != STOPPING:
            by_deployment[r.deployment_id].append(r)

    starts: list[Start] = []
    stops: list[str] = []
    failures: list[Failure] = []
    for deployment_id in sorted(set(desired) | set(by_deployment)):
        own = sorted(by_deployment.get(deployment_id, []), key=lambda r: r.id)
        failed = [r for r in own if r.state == FAILED]
        if failed and deployment_id not in served:
            failures.append(Failure(deployment_id, failed[0].message or f"replica {failed[0].id} failed"))
            stops.extend(r.id for r in own)
            continue
        stuck = [r for r in own if (r.state in (PENDING, STARTING) and now - r.since > start_timeout)
                 or (r.state == FAILED and now >= healing.replace_failed_at(r))]
        stops.extend(r.id for r in stuck)
        healthy = [r for r in own if r not in stuck]
        want = max(0, desired.get(deployment_id, 0))
        if len(healthy) > want:
            surplus = sorted(healthy, key=lambda r: (_STOP_FIRST.get(r.state, 0), -r.since.timestamp(), r.id))
            stops.extend(r.id for r in surplus[: len(healthy) - want])
        for _ in range(want - len(healthy)):
            node = choose_node(nodes, load, now, node_timeout)
            if node is None:
                break
            load[node.id] += 1
            starts.append(Start(deployment_id, node.id))
    return Plan(tuple(starts), tuple(stops), tuple(forget), tuple(failures))


@dataclass(frozen=True)
class ReplicaSpec:
    """What a node needs to start a replica of a deployment."""

    deployment_id: str
    model_id: str
    artifact_digest: str
    # The environment it serves, or is being promoted to: the model reads it at load ("" for none).
    environment: str = ""


@dataclass(frozen=True)
class Command:
    replica_id: str
    address: str  # its node's agent ("" when the node is unknown: a stop needs no call then)
    start: ReplicaSpec | None = None  # None: stop it


def commands(replicas: Iterable[Replica], specs: Mapping[str, ReplicaSpec],
             addresses: Mapping[str, str]) -> tuple[Command, ...]:
    """StartReplica for each PENDING replica of a deployment in `specs`, StopReplica for each STOPPING
    one. `addresses`: node id → its agent's address."""
    out = []
    for r in sorted(replicas, key=lambda r: r.id):
        if r.state == STOPPING:
            out.append(Command(r.id, addresses.get(r.node_id, "")))
        elif r.state == PENDING and (spec := specs.get(r.deployment_id)) is not None:
            out.append(Command(r.id, addresses.get(r.node_id, ""), spec))
    return tuple(out)

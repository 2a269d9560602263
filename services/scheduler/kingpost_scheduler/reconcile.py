"""Desired replica counts + the replicas that exist → which replicas to start, stop or forget.

Rules, in order, per deployment (GPU deployments first, the most GPUs first, so they are packed
before CPU work fills the same nodes):
1. A replica on a node that is not live is gone: forget it (there is nobody to tell).
2. A FAILED replica of a deployment that has never served fails it: the model does not load at its
   first start, so the deployment is reported FAILED with the replica's message and nothing of it
   is started again (no hot loop); its replicas are stopped. In a deployment that has served
   (`served`), a FAILED replica waits `healing.REPLACE_FAILED_AFTER`, then is stopped and replaced.
3. A replica PENDING or STARTING for longer than `start_timeout` is stopped and replaced. A
   RESTARTING one is its node's to heal: it keeps its place (nothing starts in its stead).
4. Then start or stop replicas until the healthy ones on nodes that are not draining match the
   desired count. Surplus goes not-ready first, newest first, so serving replicas are the last to
   leave. New replicas go where `placement.choose` says; one that fits nowhere leaves its
   deployment waiting, with `placement.why_not` as the reason.
5. Replicas on a draining node stop only as their replacements elsewhere become READY (one for
   one), so a drain never leaves a deployment with fewer serving replicas than it wants.

`commands` turns the replicas the pass leaves behind into what their nodes must be told: start
each PENDING one, stop each STOPPING one (the dispatcher sends them until acknowledged).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from kingpost_scheduler import healing
from kingpost_scheduler.facts import FAILED, PENDING, READY, RESTARTING, STARTING, STOPPING, Node, Replica
from kingpost_scheduler.placement import Demand, Overcommit, Placer, Used, live_nodes, why_not

_STOP_FIRST = {FAILED: 0, PENDING: 0, RESTARTING: 1, STARTING: 1, READY: 2}
NO_DEMAND = Demand(cpu_millis=0, memory_bytes=0)


@dataclass(frozen=True)
class Start:
    deployment_id: str
    node_id: str
    gpus: tuple[int, ...] = ()


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
    # Deployments with replicas that fit on no node, and why (not a change: shown in their status).
    waiting: tuple[Failure, ...] = ()

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
    demands: Mapping[str, Demand] | None = None,
    overcommit: Overcommit = Overcommit(),
    served: Collection[str] = (),
) -> Plan:
    """`desired`: deployment id → replica count; a deployment not in it wants none. `demands`:
    deployment id → what each of its replicas needs (none given: it needs nothing). `served`: the
    deployments that have served (a load failure does not fail them)."""
    demands = demands or {}
    live_list = live_nodes(nodes, now, node_timeout)
    live = {n.id for n in live_list}
    draining = {n.id for n in live_list if n.draining}
    accepting = [n for n in live_list if not n.draining]
    forget = sorted(r.id for r in replicas if r.node_id not in live)
    present = [r for r in replicas if r.node_id in live]

    used: dict[str, Used] = defaultdict(Used)
    by_deployment: dict[str, list[Replica]] = defaultdict(list)
    for r in present:
        # A stopping replica still holds its GPUs and memory until its runner is gone.
        used[r.node_id].take(demands.get(r.deployment_id, NO_DEMAND), r.gpus, count=r.state != STOPPING)
        if r.state != STOPPING:
            by_deployment[r.deployment_id].append(r)

    placer = Placer(accepting, used, overcommit)
    starts: list[Start] = []
    stops: list[str] = []
    failures: list[Failure] = []
    waiting: list[Failure] = []
    order = sorted(set(desired) | set(by_deployment),
                   key=lambda d: (-demands.get(d, NO_DEMAND).gpu_count, d))
    for deployment_id in order:
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
        leaving = [r for r in healthy if r.node_id in draining]
        staying = [r for r in healthy if r.node_id not in draining]
        want = max(0, desired.get(deployment_id, 0))
        if len(staying) > want:
            surplus = sorted(staying, key=lambda r: (_STOP_FIRST.get(r.state, 0), -r.since.timestamp(), r.id))
            stops.extend(r.id for r in surplus[: len(staying) - want])
        demand = demands.get(deployment_id, NO_DEMAND)
        same: dict[str, int] = defaultdict(int)
        for r in healthy:
            same[r.node_id] += 1
        for _ in range(want - len(staying)):
            choice = placer.choose(same, demand)
            if choice is None:
                waiting.append(Failure(deployment_id, why_not(accepting, used, demand, overcommit)))
                break
            placer.take(choice.node_id, demand, choice.gpus)
            same[choice.node_id] += 1
            starts.append(Start(deployment_id, choice.node_id, choice.gpus))
        # Off a draining node only as replacements serve: one READY elsewhere for each that stops.
        ready_staying = sum(1 for r in staying if r.state == READY)
        movable = min(len(leaving), max(0, ready_staying + len(leaving) - want))
        leaving.sort(key=lambda r: (_STOP_FIRST.get(r.state, 0), r.id))
        stops.extend(r.id for r in leaving[:movable])
    return Plan(tuple(starts), tuple(stops), tuple(forget), tuple(failures), tuple(waiting))


@dataclass(frozen=True)
class ReplicaSpec:
    """What a node needs to start a replica of a deployment."""

    deployment_id: str
    model_id: str
    artifact_digest: str
    # The environment it serves, or is being promoted to: the model reads it at load ("" for none).
    environment: str = ""
    # Its request logging (autoscaling_settings' kingpost extensions): the runner reads them at start.
    request_logging_sample_rate: float = 0.0
    request_logging_max_bytes: int = 0


@dataclass(frozen=True)
class Command:
    replica_id: str
    address: str  # its node's agent ("" when the node is unknown: a stop needs no call then)
    start: ReplicaSpec | None = None  # None: stop it
    gpus: tuple[int, ...] = ()  # the GPUs a started replica may see


def commands(replicas: Iterable[Replica], specs: Mapping[str, ReplicaSpec],
             addresses: Mapping[str, str]) -> tuple[Command, ...]:
    """StartReplica for each PENDING replica of a deployment in `specs`, StopReplica for each STOPPING
    one. `addresses`: node id → its agent's address."""
    out = []
    for r in sorted(replicas, key=lambda r: r.id):
        if r.state == STOPPING:
            out.append(Command(r.id, addresses.get(r.node_id, "")))
        elif r.state == PENDING and (spec := specs.get(r.deployment_id)) is not None:
            out.append(Command(r.id, addresses.get(r.node_id, ""), spec, r.gpus))
    return tuple(out)

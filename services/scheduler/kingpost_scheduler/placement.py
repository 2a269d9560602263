"""Where a replica goes, and which nodes are alive.

A node is live while its last heartbeat is at most `node_timeout` old. A node that is draining is
live (its replicas still serve) but takes no new replica.

A new replica goes to a live node that has room for what its deployment asks (`Demand`: CPUs,
memory, GPUs of one type) beside what the replicas already there were promised; a node is never
promised more than its agent reported, times the over-commit factors (`Overcommit`: `kingpost up`'s
single node shares its CPUs and memory generously, a cluster's nodes do not). Among the nodes with
room, in order:

1. the one with the fewest replicas of the same deployment (replicas spread over nodes);
2. for a GPU replica, the one left with the fewest free GPUs of that type (best fit: an H100:1
   replica takes the last H100 of a half-full node before it breaks into an empty 8-GPU one);
3. for a replica without GPUs, a node without GPUs (GPU nodes are kept for GPU work);
4. the fewest replicas in all, then the smallest node id, so the same state always gives the same
   answer (tests and replays depend on that).

A replica is given particular GPUs (their indices on the node, which become its
CUDA_VISIBLE_DEVICES): the lowest free ones, never one another replica holds. A replica that fits
nowhere is not placed; `why_not` says what is short, naming the node that came closest.
A node that reported no CPUs or memory (an agent that does not say) has no limit on them.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kingpost_scheduler.facts import FAILED, PENDING, STOPPING, Node, Replica


@dataclass(frozen=True)
class Demand:
    """What one replica of a deployment is promised on its node."""

    cpu_millis: int = 1000
    memory_bytes: int = 2 * 2**30
    gpu_type: str = ""  # an accelerator type ("H100"); "" for none
    gpu_count: int = 0

    def describe(self) -> str:
        parts = [f"{_cpus(self.cpu_millis)} CPU", _gib(self.memory_bytes)]
        if self.gpu_count:
            parts.append(f"{self.gpu_count}×{self.gpu_type}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Overcommit:
    """How many times its real CPUs and memory a node may promise (1: never more than it has)."""

    cpu: float = 1.0
    memory: float = 1.0


@dataclass
class Used:
    """What the replicas on one node were promised."""

    cpu_millis: int = 0
    memory_bytes: int = 0
    gpus: set[int] | None = None
    replicas: int = 0

    def take(self, demand: Demand, gpus: Iterable[int], *, count: bool = True) -> None:
        """A replica's promise; `count`: it counts toward the node's load (a stopping one does not)."""
        self.cpu_millis += demand.cpu_millis
        self.memory_bytes += demand.memory_bytes
        self.gpus = (self.gpus or set()) | set(gpus)
        self.replicas += 1 if count else 0


@dataclass(frozen=True)
class Choice:
    node_id: str
    gpus: tuple[int, ...] = ()


# Accelerator types as Truss names them, matched against the names GPUs report (NVML's
# "NVIDIA H100 80GB HBM3", "Tesla T4", "NVIDIA A100-SXM4-40GB"); longest first, so H100_40GB
# is not read as H100.
_GPU_NAMES = (
    ("RTX_PRO_6000", ("RTX PRO 6000",)), ("A100_40GB", ("A100-SXM4-40GB", "A100-PCIE-40GB", "A100 40GB")),
    ("H100_40GB", ("H100 40GB",)), ("GB300", ("GB300",)), ("B300", ("B300",)), ("B200", ("B200",)),
    ("H200", ("H200",)), ("H100", ("H100",)), ("A100", ("A100",)), ("A10G", ("A10G",)),
    ("L40S", ("L40S",)), ("V100", ("V100",)), ("B10", ("B10",)), ("T4", ("T4",)), ("L4", ("L4",)),
)


def gpu_type(name: str) -> str:
    """The accelerator type a GPU's reported name is ("NVIDIA H100 80GB HBM3" → "H100"); a name
    already a type is itself; an unknown name is itself, upper-cased."""
    upper = name.strip().upper()
    for kind, spellings in _GPU_NAMES:
        if upper == kind:
            return kind
    for kind, spellings in _GPU_NAMES:
        if any(s.upper() in upper for s in spellings):
            return kind
    return upper


def is_live(node: Node, now: datetime, node_timeout: timedelta) -> bool:
    return now - node.last_seen <= node_timeout


def live_nodes(nodes: Iterable[Node], now: datetime, node_timeout: timedelta) -> list[Node]:
    return sorted((n for n in nodes if is_live(n, now, node_timeout)), key=lambda n: n.id)


def _free_gpus(node: Node, used: Used | None, kind: str) -> list[int]:
    taken = (used.gpus or set()) if used else set()
    return [i for i, name in enumerate(node.gpus) if gpu_type(name) == kind and i not in taken]


def _room(node: Node, used: Used | None, over: Overcommit) -> tuple[float, float]:
    """Free CPU millis and memory bytes (infinite where the node reported none)."""
    cpu = node.cpu_count * 1000 * over.cpu - (used.cpu_millis if used else 0) if node.cpu_count else float("inf")
    memory = (node.memory_bytes * over.memory - (used.memory_bytes if used else 0)
              if node.memory_bytes else float("inf"))
    return cpu, memory


def fits(node: Node, used: Used | None, demand: Demand, over: Overcommit) -> tuple[int, ...] | None:
    """The GPUs `demand` would get on `node` (() for none) when it fits there; None when it does not."""
    cpu, memory = _room(node, used, over)
    if demand.cpu_millis > cpu or demand.memory_bytes > memory:
        return None
    if not demand.gpu_count:
        return ()
    free = _free_gpus(node, used, demand.gpu_type)
    return tuple(free[: demand.gpu_count]) if len(free) >= demand.gpu_count else None


def choose(nodes: Sequence[Node], used: Mapping[str, Used], same: Mapping[str, int], demand: Demand,
           over: Overcommit = Overcommit()) -> Choice | None:
    """The node (and GPUs) for one replica of a deployment that has `same[node]` replicas there;
    `nodes`: the candidates (live, not draining). None when it fits on none."""
    best: tuple[tuple[int, int, int, int, str], Choice] | None = None
    for node in nodes:
        u = used.get(node.id)
        gpus = fits(node, u, demand, over)
        if gpus is None:
            continue
        left = len(_free_gpus(node, u, demand.gpu_type)) - len(gpus) if demand.gpu_count else 0
        key = (same.get(node.id, 0), left, 0 if demand.gpu_count or not node.gpus else 1,
               u.replicas if u else 0, node.id)
        if best is None or key < best[0]:
            best = (key, Choice(node.id, gpus))
    return best[1] if best else None


class Placer:
    """`choose`, fast enough for a pass that places 10,000 replicas over 1,000 nodes.

    `choose` looks at every node for every replica. This keeps the nodes in heaps instead — one by
    (prefers-no-GPU, replicas, id) for replicas without GPUs, and one per (GPU type, free GPUs of it)
    by (replicas, id) — and looks at them in `choose`'s order until one has room and no replica of
    the deployment yet: that one is `choose`'s answer too. When none does (a deployment with more
    replicas than nodes, or a full cluster) it asks `choose` itself. A node's entries are replaced,
    not updated, when a replica takes room on it (a version number tells the stale ones).
    """

    def __init__(self, nodes: Sequence[Node], used: dict[str, Used], over: Overcommit = Overcommit()) -> None:
        self._list = list(nodes)
        self.used = used
        self._over = over
        self._built = False  # the heaps are made at the first `choose`: most passes place nothing

    def _build(self) -> None:
        nodes = self._list
        self._nodes = {n.id: n for n in nodes}
        self._version: dict[str, int] = dict.fromkeys(self._nodes, 0)
        self._plain: list[tuple[int, int, str, int]] = []
        self._gpu: dict[tuple[str, int], list[tuple[int, str, int]]] = {}
        self._types: dict[str, tuple[str, ...]] = {n.id: tuple(sorted({gpu_type(g) for g in n.gpus})) for n in nodes}
        self._most = {kind: 0 for types in self._types.values() for kind in types}
        for n in nodes:
            self._index(n)
        self._built = True

    def _index(self, node: Node) -> None:
        u, version = self.used.get(node.id), self._version[node.id]
        load = u.replicas if u else 0
        heapq.heappush(self._plain, (1 if node.gpus else 0, load, node.id, version))
        for kind in self._types[node.id]:
            free = len(_free_gpus(node, u, kind))
            self._most[kind] = max(self._most[kind], free)
            heapq.heappush(self._gpu.setdefault((kind, free), []), (load, node.id, version))

    def take(self, node_id: str, demand: Demand, gpus: tuple[int, ...]) -> None:
        if not self._built:
            self._build()
        self.used.setdefault(node_id, Used()).take(demand, gpus)
        self._version[node_id] += 1
        self._index(self._nodes[node_id])

    def choose(self, same: Mapping[str, int], demand: Demand) -> Choice | None:
        if not self._built:
            self._build()
        if demand.gpu_count:
            for free in range(demand.gpu_count, self._most.get(demand.gpu_type, 0) + 1):
                heap = self._gpu.get((demand.gpu_type, free))
                found = self._first(heap, same, demand, lambda e: (e[1], e[2])) if heap else None
                if found is not None:
                    return found
        else:
            found = self._first(self._plain, same, demand, lambda e: (e[2], e[3]))
            if found is not None:
                return found
        return choose(self._list, self.used, same, demand, self._over)

    def _first(self, heap: list[Any], same: Mapping[str, int], demand: Demand,
               ident: Callable[[Any], tuple[str, int]]) -> Choice | None:
        aside, found = [], None
        while heap:
            entry = heapq.heappop(heap)
            node_id, version = ident(entry)
            if version != self._version[node_id]:
                continue  # stale: the node has a newer entry
            aside.append(entry)
            if same.get(node_id, 0) == 0:
                gpus = fits(self._nodes[node_id], self.used.get(node_id), demand, self._over)
                if gpus is not None:
                    found = Choice(node_id, gpus)
                    break
        for entry in aside:
            heapq.heappush(heap, entry)
        return found


def why_not(nodes: Sequence[Node], used: Mapping[str, Used], demand: Demand,
            over: Overcommit = Overcommit()) -> str:
    """Why a replica with `demand` fits on none of `nodes`, naming what is short and where the most
    of it is free: "needs 2×H100; the most free is 1×H100 on gpu-b"."""
    if not nodes:
        return f"needs {demand.describe()}; no node is live and accepting replicas"
    if demand.gpu_count:
        free = {n.id: len(_free_gpus(n, used.get(n.id), demand.gpu_type)) for n in nodes}
        most = max(sorted(free), key=lambda n: free[n])
        if free[most] < demand.gpu_count:
            where = f"the most free is {free[most]}×{demand.gpu_type} on {_name(nodes, most)}" if free[most] \
                else f"no node has a free {demand.gpu_type}"
            return f"needs {demand.gpu_count}×{demand.gpu_type}; {where}"
        nodes = [n for n in nodes if free[n.id] >= demand.gpu_count]
    rooms = {n.id: _room(n, used.get(n.id), over) for n in nodes}
    cpu_node = max(sorted(rooms), key=lambda n: rooms[n][0])
    if rooms[cpu_node][0] < demand.cpu_millis:
        return (f"needs {_cpus(demand.cpu_millis)} CPU; the most free is {_cpus(rooms[cpu_node][0])} CPU on "
                f"{_name(nodes, cpu_node)}")
    fitting_cpu = [n for n in rooms if rooms[n][0] >= demand.cpu_millis]
    mem_node = max(sorted(fitting_cpu), key=lambda n: rooms[n][1])
    return (f"needs {_gib(demand.memory_bytes)} of memory; the most free is {_gib(rooms[mem_node][1])} "
            f"on {_name(nodes, mem_node)}")


def _name(nodes: Sequence[Node], node_id: str) -> str:
    return next((n.name or n.id for n in nodes if n.id == node_id), node_id)


def _cpus(millis: float) -> str:
    return f"{max(millis, 0) / 1000:g}"


def _gib(size: float) -> str:
    return f"{max(size, 0) / 2**30:.3g} GiB"


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

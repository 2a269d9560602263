"""Instance types, as Baseten's API names them, read off the cluster's nodes.

kingpost places replicas on whatever nodes have joined; each distinct node shape is an instance type
named the way Baseten names its own: `<vCPUs>x<GiB>` for a CPU machine (`4x16`), and
`<GPU>:<vCPUs>x<GiB>` with `<count>x<GPU>` in front when there are several (`2xH100:16x128`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024


@dataclass(frozen=True, order=True)
class InstanceType:
    id: str
    name: str
    memory_limit_mib: int
    millicpu_limit: int
    gpu_count: int = 0
    gpu_type: str = ""
    gpu_memory_limit_mib: int = 0


# What an environment answers before any node has joined: no machine yet.
NO_NODE = InstanceType(id="none", name="none", memory_limit_mib=0, millicpu_limit=0)


def of_node(cpu_count: int, memory_bytes: int, gpus: Sequence[Mapping[str, Any]]) -> InstanceType:
    shape = f"{cpu_count}x{memory_bytes // (1024 * MIB)}"
    if not gpus:
        return InstanceType(id=shape, name=shape, memory_limit_mib=memory_bytes // MIB,
                            millicpu_limit=cpu_count * 1000)
    gpu_type = str(gpus[0].get("name", "GPU"))
    count = f"{len(gpus)}x" if len(gpus) > 1 else ""
    name = f"{count}{gpu_type}:{shape}"
    return InstanceType(id=name, name=name, memory_limit_mib=memory_bytes // MIB,
                        millicpu_limit=cpu_count * 1000, gpu_count=len(gpus), gpu_type=gpu_type,
                        gpu_memory_limit_mib=int(gpus[0].get("memory_bytes", 0)) // MIB)


def catalog(nodes: Iterable[tuple[int, int, Sequence[Mapping[str, Any]]]]) -> list[InstanceType]:
    """The distinct shapes of `nodes` ((cpu_count, memory_bytes, gpus) each), smallest first."""
    return sorted({of_node(*n) for n in nodes}, key=lambda t: (t.gpu_count, t.millicpu_limit, t.memory_limit_mib))


def default(types: Sequence[InstanceType]) -> InstanceType:
    """An environment's instance type: the smallest the cluster has (any node may run it)."""
    return types[0] if types else NO_NODE

"""Placing replicas over simulated nodes: the scheduler's pure reconcile plan, timed.

    .venv/bin/python bench/placement.py [--nodes 1000] [--replicas 10000]

1,000 nodes (half with 8 H100s, a quarter with 4 A10Gs, a quarter CPU-only; 32–96 CPUs, 256–1024
GiB) and deployments of 1–20 replicas each of mixed demands (by replica count about 70 % 1 CPU
without GPU, 9 % A10G:1, 15 % H100:1, 5 % H100:2, 1 % H100:8: the cluster can hold them all)
adding up to 10,000 replicas, placed from nothing in one `reconcile.plan` call; then the same plan
once 9,000 of them run (the pass after a scale-up). The baseline in the same run is main's
placement, the node with the fewest replicas (`--baseline`: `choose` over every node for every
replica, as main did; slow). Checks that no GPU is given twice and no node is promised more than it
has.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "services" / "scheduler")]

from kingpost_scheduler.facts import READY, Node, Replica  # noqa: E402
from kingpost_scheduler.placement import Demand  # noqa: E402
from kingpost_scheduler.reconcile import plan  # noqa: E402

NOW = datetime(2026, 12, 7, tzinfo=UTC)
GiB = 2**30
KINDS = [(0.70, Demand(1000, 4 * GiB)), (0.09, Demand(4000, 16 * GiB, "A10G", 1)),
         (0.15, Demand(4000, 32 * GiB, "H100", 1)), (0.05, Demand(8000, 64 * GiB, "H100", 2)),
         (0.01, Demand(16000, 128 * GiB, "H100", 8))]


def cluster(n: int, rng: random.Random) -> list[Node]:
    nodes = []
    for i in range(n):
        gpus = (("H100",) * 8, ("A10G",) * 4, ("H100",) * 8, ())[i % 4]
        nodes.append(Node(f"node_{i:05d}", f"10.0.{i // 250}.{i % 250}:50070", NOW, cpu_count=rng.choice((32, 64, 96)),
                          memory_bytes=rng.choice((256, 512, 1024)) * GiB, gpus=gpus, name=f"n{i}"))
    return nodes


def deployments(total: int, rng: random.Random) -> tuple[dict[str, int], dict[str, Demand]]:
    desired, demands = {}, {}
    for (share, demand) in KINDS:
        left, i = int(total * share), len(desired)
        while left > 0:
            count = min(left, rng.randint(1, 20) if demand.gpu_count < 8 else 1)
            desired[f"dep_{i:05d}"], demands[f"dep_{i:05d}"] = count, demand
            left -= count
            i += 1
    return desired, demands


def timed(desired, replicas, nodes, demands):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    p = plan(desired, replicas, nodes, now=NOW, node_timeout=timedelta(seconds=15),
             start_timeout=timedelta(seconds=300), demands=demands)
    return time.perf_counter() - start, p


def baseline(desired, nodes) -> float:  # type: ignore[no-untyped-def]
    """main's placement: for each replica, the live node with the fewest replicas, over every node."""
    start = time.perf_counter()
    load: dict[str, int] = defaultdict(int)
    for _deployment, count in sorted(desired.items()):
        for _ in range(count):
            node = min(nodes, key=lambda n: (load[n.id], n.id))
            load[node.id] += 1
    return time.perf_counter() - start


def check(p, nodes, demands) -> None:  # type: ignore[no-untyped-def]
    by_id = {n.id: n for n in nodes}
    cpu: dict[str, int] = defaultdict(int)
    gpus: dict[str, list[int]] = defaultdict(list)
    for s in p.starts:
        cpu[s.node_id] += demands[s.deployment_id].cpu_millis
        gpus[s.node_id].extend(s.gpus)
    for node_id, used in cpu.items():
        assert used <= by_id[node_id].cpu_count * 1000, f"{node_id} over-promised"
    for node_id, held in gpus.items():
        assert len(held) == len(set(held)), f"a GPU of {node_id} given twice"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--replicas", type=int, default=10000)
    parser.add_argument("--baseline", action="store_true", help="also time main's placement (about 20 s)")
    args = parser.parse_args()
    rng = random.Random(7)
    nodes = cluster(args.nodes, rng)
    desired, demands = deployments(args.replicas, rng)

    fresh, p = timed(desired, [], nodes, demands)
    check(p, nodes, demands)
    placed = len(p.starts)
    # 90 % of those running READY; the next pass places the rest.
    running = [Replica(f"rep_{i:06d}", s.deployment_id, s.node_id, READY, NOW, address="x", gpus=s.gpus)
               for i, s in enumerate(p.starts[: placed * 9 // 10])]
    again, p2 = timed(desired, running, nodes, demands)
    print("| plan | nodes | replicas wanted | placed | waiting deployments | seconds |")
    print("|---|---|---|---|---|---|")
    if args.baseline:
        base = baseline(desired, nodes)
        print(f"| baseline (main): fewest replicas, every node scanned per replica | {args.nodes} | {args.replicas} "
              f"| {args.replicas} | 0 | {base:.3f} |")
    print(f"| capacity placement, from nothing | {args.nodes} | {args.replicas} | {placed} | {len(p.waiting)} | {fresh:.3f} |")
    print(f"| capacity placement, 90 % running | {args.nodes} | {args.replicas} | {len(running) + len(p2.starts)} "
          f"| {len(p2.waiting)} | {again:.3f} |")


if __name__ == "__main__":
    main()

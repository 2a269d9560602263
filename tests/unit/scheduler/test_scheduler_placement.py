"""Placement: which nodes are live, where a replica fits (CPUs, memory, GPUs), why one fits nowhere,
and which replicas a heartbeat says are gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from kingpost_scheduler.facts import PENDING, READY, STARTING, STOPPING, Node, Replica
from kingpost_scheduler.placement import (
    Demand,
    Overcommit,
    Placer,
    Used,
    choose,
    fits,
    gpu_type,
    live_nodes,
    missing_from_heartbeat,
    why_not,
)
from kingpost_scheduler.resources import accelerator, cpu_millis, demand, memory_bytes

T0 = datetime(2025, 1, 1, tzinfo=UTC)
TIMEOUT = timedelta(seconds=15)
GiB = 2**30


def node(node_id: str, seen_ago: float = 0.0, *, cpus: int = 0, memory: int = 0, gpus: tuple[str, ...] = (),
         name: str = "") -> Node:
    return Node(node_id, f"{node_id}:7000", T0 - timedelta(seconds=seen_ago), cpu_count=cpus,
                memory_bytes=memory, gpus=gpus, name=name)


def test_only_recently_heard_nodes_are_live() -> None:
    nodes = [node("a"), node("b", seen_ago=30)]
    assert [n.id for n in live_nodes(nodes, T0, TIMEOUT)] == ["a"]


def test_a_replica_goes_to_the_least_loaded_node_then_the_smallest_id() -> None:
    nodes = [node("a"), node("b"), node("c")]
    used = {"a": Used(replicas=2), "b": Used(replicas=1)}
    assert choose(nodes, used, {}, Demand()).node_id == "c"
    assert choose([node("n2"), node("n1")], {}, {}, Demand()).node_id == "n1"


def test_replicas_of_one_deployment_spread_before_load_counts() -> None:
    nodes = [node("a"), node("b")]
    used = {"b": Used(replicas=5)}
    assert choose(nodes, used, {"a": 1}, Demand()).node_id == "b"


def test_a_gpu_replica_goes_where_its_gpu_type_is_and_gets_the_lowest_free_gpus() -> None:
    nodes = [node("cpu", cpus=64, memory=256 * GiB),
             node("a10", cpus=16, memory=64 * GiB, gpus=("NVIDIA A10G",) * 4),
             node("h100", cpus=32, memory=512 * GiB, gpus=("NVIDIA H100 80GB HBM3",) * 4)]
    used = {"h100": Used(gpus={0})}
    choice = choose(nodes, used, {}, Demand(gpu_type="H100", gpu_count=2))
    assert (choice.node_id, choice.gpus) == ("h100", (1, 2))


def test_gpus_are_best_fit_the_fullest_node_that_still_fits() -> None:
    nodes = [node("empty", gpus=("H100",) * 8), node("half", gpus=("H100",) * 8)]
    used = {"half": Used(gpus={0, 1, 2, 3, 4, 5})}
    assert choose(nodes, used, {}, Demand(gpu_type="H100", gpu_count=2)).node_id == "half"
    assert choose(nodes, used, {}, Demand(gpu_type="H100", gpu_count=3)).node_id == "empty"


def test_cpu_work_keeps_off_gpu_nodes_when_it_can() -> None:
    nodes = [node("a-gpu", gpus=("T4",)), node("b-cpu")]
    assert choose(nodes, {}, {}, Demand()).node_id == "b-cpu"


def test_a_node_is_never_promised_more_cpu_or_memory_than_it_has() -> None:
    n = node("a", cpus=4, memory=8 * GiB)
    assert fits(n, Used(cpu_millis=3000), Demand(cpu_millis=1000, memory_bytes=GiB), Overcommit()) == ()
    assert fits(n, Used(cpu_millis=3500), Demand(cpu_millis=1000, memory_bytes=GiB), Overcommit()) is None
    assert fits(n, Used(memory_bytes=7 * GiB), Demand(memory_bytes=2 * GiB), Overcommit()) is None
    # `kingpost up`'s single node over-commits: 16× the CPUs, 4× the memory.
    assert fits(n, Used(cpu_millis=60_000), Demand(cpu_millis=4000, memory_bytes=GiB), Overcommit(16, 4)) == ()


def test_why_not_names_what_is_short_and_where_the_most_is_free() -> None:
    nodes = [node("a", gpus=("H100",), name="gpu-a"), node("b", gpus=("H100",) * 2, name="gpu-b")]
    used = {"b": Used(gpus={0})}
    assert why_not(nodes, used, Demand(gpu_type="H100", gpu_count=2)) == \
        "needs 2×H100; the most free is 1×H100 on gpu-a"
    assert why_not(nodes, used, Demand(gpu_type="A10G", gpu_count=1)) == "needs 1×A10G; no node has a free A10G"
    small = [node("s", cpus=2, memory=4 * GiB, name="small")]
    assert why_not(small, {}, Demand(cpu_millis=4000)) == "needs 4 CPU; the most free is 2 CPU on small"
    assert why_not(small, {}, Demand(memory_bytes=8 * GiB)) == \
        "needs 8 GiB of memory; the most free is 4 GiB on small"
    assert "no node is live" in why_not([], {}, Demand())


def test_gpu_names_as_nvml_reports_them_are_accelerator_types() -> None:
    assert gpu_type("NVIDIA H100 80GB HBM3") == "H100"
    assert gpu_type("NVIDIA A100-SXM4-40GB") == "A100_40GB"
    assert gpu_type("NVIDIA A100-SXM4-80GB") == "A100"
    assert gpu_type("Tesla T4") == "T4"
    assert gpu_type("NVIDIA L40S") == "L40S"
    assert gpu_type("NVIDIA L4") == "L4"
    assert gpu_type("h100") == "H100"


def test_truss_resources_become_a_demand() -> None:
    assert cpu_millis("500m") == 500 and cpu_millis("2.5") == 2500 and cpu_millis("") == 1000
    assert memory_bytes("512Mi") == 512 * 2**20 and memory_bytes("1G") == 10**9
    assert accelerator("H100:2") == ("H100", 2) and accelerator("T4") == ("T4", 1) and accelerator("") == ("", 0)
    assert demand("4", "16Gi", "A10G:2") == Demand(4000, 16 * GiB, "A10G", 2)


GPU_TYPES = ("H100", "A10G", "T4")


@st.composite
def clusters(draw):  # type: ignore[no-untyped-def]
    nodes = [node(f"n{i}", cpus=draw(st.integers(0, 16)), memory=draw(st.integers(0, 64)) * GiB,
                  gpus=tuple(draw(st.lists(st.sampled_from(GPU_TYPES), max_size=8))))
             for i in range(draw(st.integers(1, 6)))]
    demands = [Demand(cpu_millis=draw(st.integers(100, 8000)), memory_bytes=draw(st.integers(1, 16)) * GiB,
                      gpu_type=draw(st.sampled_from(GPU_TYPES)), gpu_count=draw(st.integers(0, 4)))
               for _ in range(draw(st.integers(1, 40)))]
    return nodes, demands


@settings(max_examples=300, deadline=None)
@given(clusters())
def test_property_no_gpu_double_booked_and_nothing_placed_where_it_does_not_fit(cluster) -> None:  # type: ignore[no-untyped-def]
    nodes, demands = cluster
    used: dict[str, Used] = {}
    placed: list[tuple[str, Demand, tuple[int, ...]]] = []
    for d in demands:
        choice = choose(nodes, used, {}, d)
        if choice is None:
            assert why_not(nodes, used, d).startswith("needs ")
            continue
        used.setdefault(choice.node_id, Used()).take(d, choice.gpus)
        placed.append((choice.node_id, d, choice.gpus))
    by_id = {n.id: n for n in nodes}
    for n in nodes:
        mine = [(d, g) for node_id, d, g in placed if node_id == n.id]
        held = [i for _, g in mine for i in g]
        assert len(held) == len(set(held)), "a GPU given to two replicas"
        for d, g in mine:
            assert len(g) == d.gpu_count and all(gpu_type(by_id[n.id].gpus[i]) == d.gpu_type for i in g)
        if n.cpu_count:
            assert sum(d.cpu_millis for d, _ in mine) <= n.cpu_count * 1000
        if n.memory_bytes:
            assert sum(d.memory_bytes for d, _ in mine) <= n.memory_bytes


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


@settings(max_examples=200, deadline=None)
@given(clusters(), st.lists(st.integers(0, 5), min_size=40, max_size=40))
def test_property_the_fast_placer_answers_as_choose_does(cluster, deployments) -> None:  # type: ignore[no-untyped-def]
    """Placer (heaps, for 10,000 replicas a pass) picks exactly the node and GPUs `choose` would."""
    nodes, demands = cluster
    used: dict[str, Used] = {}
    placer = Placer(nodes, used)
    same_of: dict[int, dict[str, int]] = {}
    for d, dep in zip(demands, deployments):
        same = same_of.setdefault(dep, {})
        expected = choose(nodes, used, same, d)
        got = placer.choose(same, d)
        assert got == expected
        if got is not None:
            placer.take(got.node_id, d, got.gpus)
            same[got.node_id] = same.get(got.node_id, 0) + 1

"""The worker agent's Prometheus metrics."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import psutil
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

REPLICAS = Gauge("kingpost_worker_agent_replicas", "Replicas on this node, by state.", ["state"])

# A cold start's phases: fetch (artifact on disk), process (runner started until its port answers),
# load (port answers until Ready says the model has loaded).
COLD_START_SECONDS = Histogram(
    "kingpost_worker_agent_cold_start_seconds", "Time to a ready replica, by phase.", ["phase"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
)

REPLICA_EXITS = Counter(
    "kingpost_worker_agent_replica_exits_total", "Runner processes that ended, by outcome.", ["outcome"]
)

# 1 for what this agent found at start: users "per-replica" (each replica its own uid) or "agent" (the
# agent's user); memory "cgroup2", "cgroup1", "rlimit" (RLIMIT_DATA) or "off". docs/isolation.md.
CONTAINMENT = Gauge(
    "kingpost_worker_agent_containment", "How this node contains its runners.", ["users", "memory"]
)


class NodeUsage(Collector):
    """This node's CPU, memory and GPUs, and each replica's runner, read when scraped:

    kingpost_worker_agent_node_cpu_utilization{node}            0..1, since the previous scrape
    kingpost_worker_agent_node_memory_bytes{node,kind}          total | available | used
    kingpost_worker_agent_gpu_utilization{node,gpu,name}        0..1 (NVML, where a driver answers)
    kingpost_worker_agent_gpu_memory_bytes{node,gpu,name,kind}  total | used
    kingpost_worker_agent_replica_cpu_seconds_total{node,model,deployment,environment,replica}
    kingpost_worker_agent_replica_memory_bytes{...same}         resident set of the runner and its children
    """

    def __init__(self, node_id: str, replicas: Callable[[], Iterable[tuple[str, str, str, str, int]]]) -> None:
        """`replicas()`: (model_id, deployment_id, environment, replica_id, pid) of the runners now."""
        self._node = node_id
        self._replicas = replicas
        self._nvml = _Nvml.open()
        psutil.cpu_percent(interval=None)  # the first call starts the measurement

    def collect(self) -> Iterator[Metric]:
        node = [self._node]
        cpu = GaugeMetricFamily("kingpost_worker_agent_node_cpu_utilization",
                                "Share of this node's CPU time busy since the previous scrape (0 to 1).",
                                labels=["node"])
        cpu.add_metric(node, psutil.cpu_percent(interval=None) / 100.0)
        yield cpu
        vm = psutil.virtual_memory()
        memory = GaugeMetricFamily("kingpost_worker_agent_node_memory_bytes", "This node's memory.",
                                   labels=["node", "kind"])
        for kind, value in (("total", vm.total), ("available", vm.available), ("used", vm.total - vm.available)):
            memory.add_metric([*node, kind], value)
        yield memory
        yield from self._nvml.collect(self._node)
        yield from self._replica_usage()

    def _replica_usage(self) -> Iterator[Metric]:
        labels = ["node", "model", "deployment", "environment", "replica"]
        cpu = CounterMetricFamily("kingpost_worker_agent_replica_cpu_seconds",
                                  "CPU time of a replica's runner and its children.", labels=labels)
        memory = GaugeMetricFamily("kingpost_worker_agent_replica_memory_bytes",
                                   "Resident memory of a replica's runner and its children.", labels=labels)
        for model, deployment, environment, replica, pid in self._replicas():
            try:
                process = psutil.Process(pid)
                processes = [process, *process.children(recursive=True)]
                seconds = rss = 0.0
                for p in processes:
                    with contextlib.suppress(psutil.Error):
                        times = p.cpu_times()
                        seconds += times.user + times.system
                        rss += p.memory_info().rss
            except psutil.Error:  # it ended between the listing and now
                continue
            values = [self._node, model, deployment, environment, replica]
            cpu.add_metric(values, seconds)
            memory.add_metric(values, rss)
        yield cpu
        yield memory


class _Nvml:
    """NVML's view of the GPUs; where there is no driver, the families without samples (not zeros)."""

    def __init__(self, handles: list[tuple[str, Any]]) -> None:
        self._handles = handles

    @classmethod
    def open(cls) -> _Nvml:
        try:
            import pynvml

            pynvml.nvmlInit()
            handles = []
            for index in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                name = pynvml.nvmlDeviceGetName(handle)
                handles.append((name.decode() if isinstance(name, bytes) else str(name), handle))
        except Exception:  # no library, no driver, no device: a node without GPUs
            return cls([])
        return cls(handles)

    def collect(self, node: str) -> Iterator[Metric]:
        utilization = GaugeMetricFamily("kingpost_worker_agent_gpu_utilization",
                                        "Share of time a GPU's kernels ran over NVML's last sample period (0 to 1).",
                                        labels=["node", "gpu", "name"])
        memory = GaugeMetricFamily("kingpost_worker_agent_gpu_memory_bytes", "A GPU's memory.",
                                   labels=["node", "gpu", "name", "kind"])
        for index, (name, handle) in enumerate(self._handles):
            import pynvml

            try:
                rates = pynvml.nvmlDeviceGetUtilizationRates(handle)
                info = pynvml.nvmlDeviceGetMemoryInfo(handle)
            except Exception:  # a GPU that fell off the bus: report the others
                continue
            utilization.add_metric([node, str(index), name], rates.gpu / 100.0)
            memory.add_metric([node, str(index), name, "total"], info.total)
            memory.add_metric([node, str(index), name, "used"], info.used)
        yield utilization
        yield memory


def watch_node(node_id: str, replicas: Callable[[], Iterable[Any]]) -> NodeUsage:
    """Register this node's usage collector; `replicas()` lists the supervisor's replicas."""
    def running() -> Iterator[tuple[str, str, str, str, int]]:
        for r in replicas():
            if r.runner is not None:
                yield r.spec.model_id, r.spec.deployment_id, r.spec.environment, r.spec.replica_id, r.runner.pid

    usage = NodeUsage(node_id, running)
    REGISTRY.register(usage)
    return usage


def advertised(host: str, port: int) -> str:
    """Where the scheduler's scrape-target list sends Prometheus for this agent ("" with no fixed port)."""
    return f"{host}:{port}" if port else ""

"""Replicas' own metrics in the agent's /metrics, each sample labelled with its replica's model,
deployment and replica ids (so that a dashboard reads them beside the platform's):

- a Triton deployment's tritonserver (`nv_inference_*`): its runner writes Triton's metrics port to
  `TRITON_PORT_FILE` in the replica's working area;
- a Truss's own `prometheus_client` metrics (kingpost_runner.model_metrics): its runner writes the
  port serving the model's registry to `MODEL_PORT_FILE`. The runner process's standard `process_*`
  and `python_*` families (`PROCESS_FAMILIES`) are left out (the agent has its own, and reports each replica's CPU and memory).

On each scrape the agent reads /metrics for every replica that has a port file (loopback, a second's
timeout: a replica that does not answer is left out of that scrape) and merges the families of all
replicas into one.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from kingpost_worker_agent.replica_state import ReplicaSpec

TRITON_PORT_FILE = "kingpost-triton-metrics-port"  # the runner's names for them too
MODEL_PORT_FILE = "kingpost-model-metrics-port"
# prometheus_client's default collectors in the runner process (as parsed: counters without _total).
PROCESS_FAMILIES = frozenset({
    "process_virtual_memory_bytes", "process_resident_memory_bytes", "process_start_time_seconds",
    "process_cpu_seconds", "process_open_fds", "process_max_fds", "python_info", "python_gc_objects_collected",
    "python_gc_objects_uncollectable", "python_gc_collections"})
TIMEOUT_SECONDS = 1.0


def fetch(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=TIMEOUT_SECONDS) as response:
            return response.read().decode(errors="replace")
    except (OSError, ValueError):
        return None


def merged(texts: Iterable[tuple[ReplicaSpec, str, frozenset[str]]]) -> list[Metric]:
    """Prometheus text of several replicas as one set of families, labelled (each text's third item:
    the families to leave out)."""
    families: dict[str, Metric] = {}
    for spec, text, skip in texts:
        labels = {"model_id": spec.model_id, "deployment_id": spec.deployment_id, "replica_id": spec.replica_id}
        for family in text_string_to_metric_families(text):
            if family.name in skip:
                continue
            into = families.get(family.name)
            if into is None:
                into = families[family.name] = Metric(family.name, family.documentation, family.type)
            for sample in family.samples:
                into.add_sample(sample.name, {**sample.labels, **labels}, sample.value, sample.timestamp)
    return list(families.values())


class ReplicaMetrics:
    def __init__(self, replicas: Callable[[], Iterable[tuple[ReplicaSpec, Path]]],
                 fetch: Callable[[int], str | None] = fetch) -> None:
        """`replicas()`: each replica's spec and working area, read on each scrape."""
        self._replicas = replicas
        self._fetch = fetch

    def collect(self) -> Iterator[Metric]:
        texts = []
        for spec, area in self._replicas():
            for port_file in (TRITON_PORT_FILE, MODEL_PORT_FILE):
                try:
                    port = int((area / port_file).read_text())
                except (OSError, ValueError):
                    continue  # none of this kind, or a replica still starting
                text = self._fetch(port)
                if text is not None:
                    texts.append((spec, text, PROCESS_FAMILIES if port_file == MODEL_PORT_FILE else frozenset()))
        yield from merged(texts)

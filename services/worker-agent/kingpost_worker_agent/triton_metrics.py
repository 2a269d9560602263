"""Triton's own metrics in the agent's /metrics, each sample labelled with its replica's model,
deployment and replica ids (so that a dashboard reads Triton's `nv_inference_*` beside the platform's).

A Triton deployment's runner writes its tritonserver's metrics port to `PORT_FILE` in its working
area; on each scrape the agent reads Triton's /metrics for every replica that has one (loopback, a
second's timeout: a replica that does not answer is left out of that scrape) and merges the
families of all replicas into one.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from kingpost_worker_agent.replica_state import ReplicaSpec

PORT_FILE = "kingpost-triton-metrics-port"  # the runner's name for it too (kingpost_runner.triton_runner)
TIMEOUT_SECONDS = 1.0


def fetch(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=TIMEOUT_SECONDS) as response:
            return response.read().decode(errors="replace")
    except (OSError, ValueError):
        return None


def merged(texts: Iterable[tuple[ReplicaSpec, str]]) -> list[Metric]:
    """Prometheus text of several replicas' tritonservers as one set of families, labelled."""
    families: dict[str, Metric] = {}
    for spec, text in texts:
        labels = {"model_id": spec.model_id, "deployment_id": spec.deployment_id, "replica_id": spec.replica_id}
        for family in text_string_to_metric_families(text):
            into = families.get(family.name)
            if into is None:
                into = families[family.name] = Metric(family.name, family.documentation, family.type)
            for sample in family.samples:
                into.add_sample(sample.name, {**sample.labels, **labels}, sample.value, sample.timestamp)
    return list(families.values())


class TritonCollector:
    def __init__(self, replicas: Callable[[], Iterable[tuple[ReplicaSpec, Path]]],
                 fetch: Callable[[int], str | None] = fetch) -> None:
        """`replicas()`: each replica's spec and working area, read on each scrape."""
        self._replicas = replicas
        self._fetch = fetch

    def collect(self) -> Iterator[Metric]:
        texts = []
        for spec, area in self._replicas():
            try:
                port = int((area / PORT_FILE).read_text())
            except (OSError, ValueError):
                continue  # a Truss, or a Triton replica still starting
            text = self._fetch(port)
            if text is not None:
                texts.append((spec, text))
        yield from merged(texts)

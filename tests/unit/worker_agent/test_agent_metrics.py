"""The agent's node and replica usage, as a scrape shows it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
from prometheus_client import CollectorRegistry

from kingpost_worker_agent.metrics import NodeUsage


def test_node_cpu_and_memory_and_each_runners_usage_are_labelled_by_node_and_deployment() -> None:
    # A "runner" that burns some CPU in a child process: its tree's CPU time is counted.
    runner = subprocess.Popen([sys.executable, "-c",
                               "import subprocess, sys; subprocess.run([sys.executable, '-c', "
                               "'import time\\nt = time.process_time()\\nwhile time.process_time() - t < 0.3: pass\\n"
                               "time.sleep(30)'])"])
    try:
        registry = CollectorRegistry()
        registry.register(NodeUsage("node_a", lambda: [("mdl_1", "dep_1", "production", "rep_1", runner.pid),
                                                        ("mdl_1", "dep_1", "production", "rep_gone", 2**22 + 7)]))
        sample = registry.get_sample_value
        assert sample("kingpost_worker_agent_node_memory_bytes", {"node": "node_a", "kind": "total"}) == (
            psutil.virtual_memory().total)
        used = sample("kingpost_worker_agent_node_memory_bytes", {"node": "node_a", "kind": "used"})
        assert 0 < used < psutil.virtual_memory().total
        assert 0.0 <= sample("kingpost_worker_agent_node_cpu_utilization", {"node": "node_a"}) <= 1.0
        labels = {"node": "node_a", "model": "mdl_1", "deployment": "dep_1", "environment": "production",
                  "replica": "rep_1"}
        deadline = time.monotonic() + 20
        while (sample("kingpost_worker_agent_replica_cpu_seconds_total", labels) or 0) < 0.25:
            assert time.monotonic() < deadline, "the child's CPU time never showed"
            time.sleep(0.1)
        assert sample("kingpost_worker_agent_replica_memory_bytes", labels) > 1 << 20
        # A replica whose process is gone is left out, not reported as zero.
        assert sample("kingpost_worker_agent_replica_memory_bytes", {**labels, "replica": "rep_gone"}) is None
        # No NVIDIA driver here: no GPU series at all (a GPU machine shows one per device).
        if not os.path.exists("/dev/nvidiactl"):
            assert sample("kingpost_worker_agent_gpu_utilization", {"node": "node_a", "gpu": "0", "name": ""}) is None
    finally:
        for child in psutil.Process(runner.pid).children(recursive=True):
            child.kill()
        runner.kill()
        runner.wait()

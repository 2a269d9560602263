"""The autoscaler's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DESIRED_REPLICAS = Gauge("kingpost_autoscaler_desired_replicas", "The count last decided.", ["deployment_id"])
OBSERVED_CONCURRENCY = Gauge(
    "kingpost_autoscaler_concurrency", "Average concurrency over the window.", ["deployment_id"]
)
SCALE_CALLS = Counter(
    "kingpost_autoscaler_scale_calls_total", "ScaleDeployment calls, by outcome.", ["outcome"]
)
POKE_TO_SCALE_SECONDS = Histogram(
    "kingpost_autoscaler_poke_to_scale_seconds",
    "From a router's scale poke to the scheduler's answer to ScaleDeployment.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)

"""The autoscaler's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

DESIRED_REPLICAS = Gauge("kingpost_autoscaler_desired_replicas", "The count last decided.", ["deployment_id"])
OBSERVED_CONCURRENCY = Gauge(
    "kingpost_autoscaler_concurrency", "Average concurrency over the window.", ["deployment_id"]
)
SCALE_CALLS = Counter(
    "kingpost_autoscaler_scale_calls_total", "ScaleDeployment calls, by outcome.", ["outcome"]
)

"""ManagementService: the platform's scrape targets (Prometheus http_sd) and a deployment's traffic
over a window (request rate, errors, latency percentiles, replicas)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from google.api import httpbody_pb2
from google.protobuf import struct_pb2
from sqlalchemy.ext.asyncio import AsyncSession

from kingpost.errors import InvalidArgument
from kingpost.grpc_status import abort_on_error
from kingpost.v1 import management_pb2
from kingpost_scheduler import deployment_stats, metrics, metrics_targets, store
from kingpost_scheduler.handlers.base import Handlers
from kingpost_scheduler.router_scrape import LONGEST_WINDOW_SECONDS, RouterMetrics

DEFAULT_WINDOW_SECONDS = 300


class Observability(Handlers):
    router_metrics: RouterMetrics

    @abort_on_error
    async def GetMetricsTargets(self, request: management_pb2.GetMetricsTargetsRequest, context: Any) -> Any:
        groups = metrics_targets.http_sd(self.metrics_targets, self.control.heartbeats.metrics_addresses())
        return httpbody_pb2.HttpBody(content_type="application/json", data=json.dumps(groups).encode())

    @abort_on_error
    async def GetDeploymentMetrics(self, request: management_pb2.GetDeploymentMetricsRequest, context: Any) -> Any:
        window = request.window_seconds or DEFAULT_WINDOW_SECONDS
        if not 1 <= window <= LONGEST_WINDOW_SECONDS:
            raise InvalidArgument(f"window_seconds = {window}: must be 1 to {LONGEST_WINDOW_SECONDS}")

        async def find(session: AsyncSession) -> tuple[str, str]:
            model = await store.find_model(session, request.model_id)
            deployment = await store.find_deployment(session, model, request.deployment_id)
            return model.id, deployment.id

        model_id, deployment_id = await self.control.read("finding the deployment", find)
        stats = await self.router_metrics.window(deployment_id, window)
        desired, ready = metrics.DEPLOYMENT_REPLICAS.replicas(deployment_id)
        answer = management_pb2.GetDeploymentMetricsResponse(
            model_id=model_id, deployment_id=deployment_id, window_seconds=window,
            observed_seconds=stats.observed_seconds, requests=stats.requests, errors=stats.errors,
            request_rate=stats.request_rate, latency_p50_seconds=stats.p50 or 0.0,
            latency_p95_seconds=stats.p95 or 0.0, latency_p99_seconds=stats.p99 or 0.0,
            desired_replicas=desired, ready_replicas=ready)
        baseten_summary(answer, stats, self.control.clock(), window)
        return answer


_LATENCY_QUANTILES = ("0.5", "0.95", "0.99")


def baseten_summary(answer: management_pb2.GetDeploymentMetricsResponse, stats: deployment_stats.WindowStats,
                    end: datetime, window: int) -> None:
    """Baseten's SUMMARY shape of the same numbers, filled into `answer` beside kingpost's fields."""
    end_ms = end.timestamp() * 1000 // 1
    start_ms = (end - timedelta(seconds=window)).timestamp() * 1000 // 1
    answer.start_epoch_millis, answer.end_epoch_millis, answer.mode = start_ms, end_ms, "SUMMARY"
    answer.step_seconds.null_value = struct_pb2.NULL_VALUE
    series: list[tuple[str, str, str, list[dict[str, str]], list[float | None]]] = [
        ("requests", "COUNT", "COUNTER", [{}], [stats.requests]),
        ("errors", "COUNT", "COUNTER", [{}], [stats.errors]),
        ("request_rate", "PER_SECOND", "GAUGE", [{}], [stats.request_rate]),
        ("latency", "SECONDS", "HISTOGRAM", [{"quantile": q} for q in _LATENCY_QUANTILES],
         [stats.p50, stats.p95, stats.p99]),  # None (null) where the window holds no request
        ("replicas", "COUNT", "GAUGE", [{"state": "desired"}, {"state": "ready"}],
         [answer.desired_replicas, answer.ready_replicas]),
    ]
    values = answer.metric_values.add(start_epoch_millis=start_ms)
    for name, unit, kind, label_sets, numbers in series:
        descriptor = answer.metric_descriptors.add(name=name, unit_hint=unit, kind=kind)
        for labels in label_sets:
            descriptor.label_sets.add().update(labels)
        values.values.add().extend(numbers)

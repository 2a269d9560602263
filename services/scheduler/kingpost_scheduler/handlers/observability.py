"""ManagementService: the platform's scrape targets (Prometheus http_sd) and a deployment's traffic
over a window (request rate, errors, latency percentiles, replicas)."""

from __future__ import annotations

import json
from typing import Any

from google.api import httpbody_pb2
from sqlalchemy.ext.asyncio import AsyncSession

from kingpost.errors import InvalidArgument
from kingpost.grpc_status import abort_on_error
from kingpost.v1 import management_pb2
from kingpost_scheduler import metrics, metrics_targets, store
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
        return management_pb2.GetDeploymentMetricsResponse(
            model_id=model_id, deployment_id=deployment_id, window_seconds=window,
            observed_seconds=stats.observed_seconds, requests=stats.requests, errors=stats.errors,
            request_rate=stats.request_rate, latency_p50_seconds=stats.p50 or 0.0,
            latency_p95_seconds=stats.p95 or 0.0, latency_p99_seconds=stats.p99 or 0.0,
            desired_replicas=desired, ready_replicas=ready)

"""SchedulerService, internal to the platform: the route table's watch stream (routers, the
autoscaler, the builder), and the autoscaler's two commands."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kingpost.errors import InvalidArgument
from kingpost.grpc_status import abort_on_error
from kingpost.v1 import scheduler_pb2, scheduler_pb2_grpc
from kingpost_scheduler import convert, lifecycle, metrics, records, store
from kingpost_scheduler.control import Control

log = logging.getLogger(__name__)


class SchedulerServicer(scheduler_pb2_grpc.SchedulerServiceServicer):
    def __init__(self, control: Control) -> None:
        self.control = control

    async def WatchRoutes(self, request: scheduler_pb2.WatchRoutesRequest, context: Any) -> Any:
        log.info("route watcher %r connected", request.watcher)
        metrics.ROUTE_WATCHERS.inc()
        try:
            async for version, table in self.control.routes.watch():
                yield scheduler_pb2.WatchRoutesResponse(table=convert.route_table(version, table))
        finally:
            metrics.ROUTE_WATCHERS.dec()

    @abort_on_error
    async def ScaleDeployment(self, request: scheduler_pb2.ScaleDeploymentRequest, context: Any) -> Any:
        if request.replicas < 0:
            raise InvalidArgument(f"replicas = {request.replicas}: must be 0 or more")

        async def scale(session: AsyncSession) -> int:
            d = await store.get_deployment(session, request.deployment_id)
            d.desired_replicas = lifecycle.scale_to(records.deployment_facts(d), request.replicas)
            await session.flush()
            return d.desired_replicas

        replicas = await self.control.write(f"scaling {request.deployment_id}", scale)
        return scheduler_pb2.ScaleDeploymentResponse(replicas=replicas)

    @abort_on_error
    async def DeactivateIdleDeployment(
        self, request: scheduler_pb2.DeactivateIdleDeploymentRequest, context: Any
    ) -> Any:
        async def deactivate(session: AsyncSession) -> bool:
            d = await store.get_deployment(session, request.deployment_id)
            if not lifecycle.idle_deactivates(records.deployment_facts(d)):
                return False
            d.active = False
            await session.flush()
            log.info("deployment %s deactivated: no traffic for %.1f days (activate it to serve again)",
                     d.id, request.idle_seconds / 86400)
            return True

        done = await self.control.write(f"deactivating idle {request.deployment_id}", deactivate)
        return scheduler_pb2.DeactivateIdleDeploymentResponse(deactivated=done)

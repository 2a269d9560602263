"""ManagementService: the platform's status (nodes and what runs on them) and live reload of the
development deployment (`kingpost watch`: files to the agents running its replicas)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kingpost.errors import KingpostError, NotFound, Unavailable
from kingpost.grpc_status import abort_on_error
from kingpost.v1 import agent_pb2, management_pb2
from kingpost_scheduler import convert, facts, lifecycle, store
from kingpost_scheduler.handlers.base import Handlers


class StatusAndDevelopment(Handlers):
    @abort_on_error
    async def GetStatus(self, request: management_pb2.GetStatusRequest, context: Any) -> Any:
        heard = self.control.heartbeats.last_seen  # newer than the stored times (written in batches)

        async def run(session: AsyncSession) -> management_pb2.GetStatusResponse:
            replicas = await store.all_replicas(session)
            nodes = [convert.node_status(n, [r.id for r in replicas if r.node_id == n.id],
                                         max(n.last_seen, heard.get(n.id, n.last_seen)))
                     for n in await store.all_nodes(session)]
            deployments = await store.live_deployments(session)
            return management_pb2.GetStatusResponse(
                nodes=nodes, models=await store.count_models(session),
                active_deployments=sum(1 for d in deployments if d.status == lifecycle.ACTIVE))

        return await self.control.read("reading the status", run)

    @abort_on_error
    async def PatchDevelopment(self, request: management_pb2.PatchDevelopmentRequest, context: Any) -> Any:
        """Live reload: hand the files to the agents running the development deployment's replicas."""

        async def targets(session: AsyncSession) -> tuple[str, list[tuple[str, str]]]:
            model = await store.find_model(session, request.model_id)
            dev = next((d for d in await store.model_deployments(session, model.id) if d.is_development),
                       None)
            if dev is None:
                raise NotFound(f"model {model.name!r} has no development deployment: `kingpost push` first")
            nodes = {n.id: n.address for n in await store.all_nodes(session)}
            return dev.id, [(r.id, nodes[r.node_id]) for r in await store.all_replicas(session)
                            if r.deployment_id == dev.id and r.state == facts.READY and r.node_id in nodes]

        deployment_id, replicas = await self.control.read("finding the development replicas", targets)
        if not replicas:
            raise Unavailable(f"development deployment {deployment_id} has no running replica to reload "
                              "(scaled to zero or still starting): push instead, or wake it with a request")
        patch = getattr(self.control.agents, "patch_replica", None)
        if patch is None:
            raise Unavailable("this scheduler's agent client cannot patch replicas")
        reply = management_pb2.PatchDevelopmentResponse(deployment_id=deployment_id)
        for replica_id, address in replicas:
            try:
                result = await patch(address, agent_pb2.PatchReplicaRequest(
                    replica_id=replica_id, files=dict(request.files), deleted=list(request.deleted)))
            except KingpostError as e:
                reply.errors.append(f"{replica_id}: {e.message}")
                continue
            if result.error:
                reply.errors.append(f"{replica_id}: {result.error}")
            else:
                reply.reloaded += 1
                reply.load_seconds = max(reply.load_seconds, result.load_seconds)
        return reply

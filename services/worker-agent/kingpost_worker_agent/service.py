"""AgentService: the scheduler's commands to this node, over the ReplicaSupervisor."""

from __future__ import annotations

import re

import grpc

from kingpost.errors import InvalidArgument
from kingpost.grpc_status import abort_on_error
from kingpost.v1 import agent_pb2, agent_pb2_grpc

from kingpost_worker_agent.artifacts import digest_hex
from kingpost_worker_agent.replicas import ReplicaSpec, ReplicaSupervisor

REPLICA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


class AgentServicer(agent_pb2_grpc.AgentServiceServicer):
    def __init__(self, supervisor: ReplicaSupervisor) -> None:
        self._supervisor = supervisor

    @abort_on_error
    async def StartReplica(
        self, request: agent_pb2.StartReplicaRequest, context: grpc.aio.ServicerContext
    ) -> agent_pb2.StartReplicaResponse:
        if not request.replica_id or not request.deployment_id:
            raise InvalidArgument("StartReplica needs replica_id and deployment_id")
        if not REPLICA_ID.fullmatch(request.replica_id):  # it names the replica's files on this node
            raise InvalidArgument(f"replica_id {request.replica_id!r} is not a replica id "
                                  "(letters, digits and _ or -)")
        digest_hex(request.artifact_digest)  # refuse a malformed digest now, not in an event later
        await self._supervisor.start(ReplicaSpec(
            replica_id=request.replica_id, deployment_id=request.deployment_id, model_id=request.model_id,
            artifact_digest=request.artifact_digest, environment=request.environment,
            gpus=tuple(request.gpu_indices),
            secrets=tuple(sorted(request.secrets.items())),
            request_logging=(request.request_logging_sample_rate, request.request_logging_max_bytes),
        ))
        return agent_pb2.StartReplicaResponse()

    @abort_on_error
    async def StopReplica(
        self, request: agent_pb2.StopReplicaRequest, context: grpc.aio.ServicerContext
    ) -> agent_pb2.StopReplicaResponse:
        if not request.replica_id:
            raise InvalidArgument("StopReplica needs replica_id")
        await self._supervisor.stop(request.replica_id)
        return agent_pb2.StopReplicaResponse()

    @abort_on_error
    async def ListReplicas(
        self, request: agent_pb2.ListReplicasRequest, context: grpc.aio.ServicerContext
    ) -> agent_pb2.ListReplicasResponse:
        return agent_pb2.ListReplicasResponse(replicas=[
            agent_pb2.ReplicaStatus(replica_id=r.spec.replica_id, deployment_id=r.spec.deployment_id,
                                    state=r.state, address=r.address, pid=r.pid)
            for r in self._supervisor.list()
        ])

    @abort_on_error
    async def PatchReplica(
        self, request: agent_pb2.PatchReplicaRequest, context: grpc.aio.ServicerContext
    ) -> agent_pb2.PatchReplicaResponse:
        if not request.replica_id:
            raise InvalidArgument("PatchReplica needs replica_id")
        reply = await self._supervisor.patch(request.replica_id, dict(request.files), list(request.deleted))
        return agent_pb2.PatchReplicaResponse(error=reply.error, load_seconds=reply.load_seconds)

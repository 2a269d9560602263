"""The scheduler's outgoing commands: GetBuild on the builder, Start/StopReplica on node agents.

Both sit behind small protocols so tests (and other transports) can stand in for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import grpc

from kingpost import rpc
from kingpost.v1 import agent_pb2, agent_pb2_grpc, builder_pb2, builder_pb2_grpc, events_pb2
from kingpost_scheduler import lifecycle

_BUILD_STATES = {
    events_pb2.BUILD_STATE_BUILDING: lifecycle.BUILD_BUILDING,
    events_pb2.BUILD_STATE_SUCCEEDED: lifecycle.BUILD_SUCCEEDED,
    events_pb2.BUILD_STATE_FAILED: lifecycle.BUILD_FAILED,
}


def build_state_name(state: int) -> str:
    return _BUILD_STATES.get(state, lifecycle.BUILD_BUILDING)


@dataclass(frozen=True)
class BuildInfo:
    build_id: str
    state: str
    artifact_digest: str = ""
    message: str = ""
    predict_concurrency: int = 0
    # The Truss's resources as written ("" until the builder parsed its config.yaml).
    cpu: str = ""
    memory: str = ""
    accelerator: str = ""
    # config.yaml's `secrets:` names, and those without a default (which must be set).
    secrets: tuple[str, ...] = ()
    required_secrets: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        return self.state in (lifecycle.BUILD_SUCCEEDED, lifecycle.BUILD_FAILED)


class BuildLookup(Protocol):
    async def get_build(self, build_id: str) -> BuildInfo: ...


class AgentCommands(Protocol):
    async def start_replica(self, address: str, request: agent_pb2.StartReplicaRequest) -> None: ...
    async def stop_replica(self, address: str, replica_id: str) -> None: ...


class BuilderClient:
    """GetBuild on the builder. GetBuild is public there, so the admin key rides along with the token."""

    def __init__(self, address: str, *, internal_token: str = "", api_key: str = "") -> None:
        self._channel = rpc.channel(address)
        self._stub = builder_pb2_grpc.BuildServiceStub(self._channel)
        self._auth = tuple(rpc.internal(internal_token)) + (tuple(rpc.api_key(api_key)) if api_key else ())

    async def get_build(self, build_id: str) -> BuildInfo:
        reply = await rpc.call(self._stub.GetBuild, builder_pb2.GetBuildRequest(build_id=build_id),
                               auth=self._auth, timeout=10.0)
        b = reply.build
        return BuildInfo(b.build_id or build_id, build_state_name(b.state), b.artifact_digest, b.message,
                         b.truss.predict_concurrency, b.truss.cpu, b.truss.memory, b.truss.accelerator,
                         tuple(b.truss.secrets), tuple(b.truss.required_secrets))

    async def close(self) -> None:
        await self._channel.close()


class AgentClient:
    """StartReplica/StopReplica on a node's agent; one channel per node address, kept open."""

    def __init__(self, *, internal_token: str = "", timeout: float = 30.0) -> None:
        self._auth = rpc.internal(internal_token)
        self._timeout = timeout
        self._channels: dict[str, tuple[grpc.aio.Channel, agent_pb2_grpc.AgentServiceStub]] = {}

    def _stub(self, address: str) -> agent_pb2_grpc.AgentServiceStub:
        if address not in self._channels:
            channel = rpc.channel(address)
            self._channels[address] = (channel, agent_pb2_grpc.AgentServiceStub(channel))
        return self._channels[address][1]

    async def start_replica(self, address: str, request: agent_pb2.StartReplicaRequest) -> None:
        await rpc.call(self._stub(address).StartReplica, request, auth=self._auth, timeout=self._timeout,
                       idempotency_key=f"start-{request.replica_id}")

    async def stop_replica(self, address: str, replica_id: str) -> None:
        await rpc.call(self._stub(address).StopReplica, agent_pb2.StopReplicaRequest(replica_id=replica_id),
                       auth=self._auth, timeout=self._timeout, idempotency_key=f"stop-{replica_id}")

    async def patch_replica(
        self, address: str, request: agent_pb2.PatchReplicaRequest
    ) -> agent_pb2.PatchReplicaResponse:
        """Live reload of a development replica; as long as the model's load() takes."""
        return await rpc.call(self._stub(address).PatchReplica, request, auth=self._auth, timeout=600.0,
                              attempts=1)

    async def close(self) -> None:
        for channel, _ in self._channels.values():
            await channel.close()
        self._channels.clear()

"""ManagementService: API keys (create, list, revoke; scoped as Baseten's key types) and logs (a deployment's, a model's, a build's)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kingpost import key_scopes
from kingpost.auth import key_digest, key_prefix, new_key
from kingpost.bus.subjects import build_log_subject, replica_logs_of
from kingpost.errors import InvalidArgument, Unavailable
from kingpost.grpc_status import abort_on_error
from kingpost.ids import is_id
from kingpost.v1 import events_pb2, management_pb2
from kingpost_scheduler import convert, store
from kingpost_scheduler.handlers.base import Handlers
from kingpost_scheduler.tables import ApiKeyRecord, DeploymentRecord

DEFAULT_LOG_LIMIT = 1000


class KeysAndLogs(Handlers):
    @abort_on_error
    async def CreateApiKey(self, request: management_pb2.CreateApiKeyRequest, context: Any) -> Any:
        key_type = key_scopes.check_new_key(request.type, request.model_ids)
        key = new_key()
        now = self.control.clock()

        async def create(session: AsyncSession) -> ApiKeyRecord:
            # Models are named by id or name; the key keeps their ids.
            model_ids = list(dict.fromkeys([(await store.find_model(session, ref)).id for ref in request.model_ids]))
            return await store.add_api_key(session, prefix=key_prefix(key), name=request.name or "key",
                                           sha256=key_digest(key), now=now, key_type=key_type,
                                           model_ids=model_ids)

        made = await self.control.write("creating an API key", create)
        return management_pb2.CreateApiKeyResponse(api_key=key, prefix=made.prefix, name=made.name,
                                                   type=made.type, model_ids=made.model_ids)

    @abort_on_error
    async def ListApiKeys(self, request: management_pb2.ListApiKeysRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> list[management_pb2.ApiKey]:
            return [convert.api_key(k) for k in await store.list_api_keys(session)]

        return management_pb2.ListApiKeysResponse(keys=await self.control.read("listing API keys", run))

    @abort_on_error
    async def RevokeApiKey(self, request: management_pb2.RevokeApiKeyRequest, context: Any) -> Any:
        await self.control.write("revoking an API key", lambda s: store.revoke_api_key(s, request.prefix))
        return management_pb2.RevokeApiKeyResponse(prefix=request.prefix)

    @abort_on_error
    async def GetLogs(self, request: management_pb2.GetLogsRequest, context: Any) -> Any:
        if self.bus is None:
            raise Unavailable("logs are kept in NATS, and this scheduler has no NATS connection")
        if request.build_only and request.replica_only:
            raise InvalidArgument("build_only and replica_only exclude each other")
        if request.build_id and not is_id(request.build_id, "bld"):  # it becomes part of a NATS subject
            raise InvalidArgument(f"{request.build_id!r} is not a build id (bld_ and letters or digits)")

        async def targets(session: AsyncSession) -> Sequence[DeploymentRecord]:
            if not request.model_id:  # every model's
                return await store.live_deployments(session)
            model = await store.find_model(session, request.model_id)
            if request.deployment_id:
                return [await store.find_deployment(session, model, request.deployment_id)]
            return await store.model_deployments(session, model.id)

        # A build's own logs need no model: a push that failed to build has none yet.
        only_build = bool(request.build_id) and not request.model_id
        deployments = [] if only_build else await self.control.read("finding logs", targets)
        limit = request.limit if request.limit > 0 else DEFAULT_LOG_LIMIT
        since = request.since.ToNanoseconds() / 1e9 if request.HasField("since") else None
        lines: list[events_pb2.LogLine] = []
        for subject in _log_subjects(request, deployments):
            lines.extend(await self.bus.read_stream(subject, events_pb2.LogLine, limit=limit, since=since))
        if since is not None:  # a line is stored after it is written: the bus's start is a superset
            lines = [line for line in lines if line.at.ToNanoseconds() >= request.since.ToNanoseconds()]
        lines.sort(key=lambda line: (line.at.seconds, line.at.nanos))
        kept = lines[-limit:]
        return management_pb2.GetLogsResponse(lines=kept, logs=[convert.baseten_log(line) for line in kept])


def _log_subjects(request: management_pb2.GetLogsRequest,
                  deployments: Sequence[DeploymentRecord]) -> list[str]:
    """Where the asked-for lines are: each deployment's build log and replica logs, or one build's."""
    subjects: list[str] = []
    for d in deployments:
        if not request.replica_only and (not request.build_id or request.build_id == d.build_id):
            subjects.append(build_log_subject(d.build_id))
        if not request.build_only and not request.build_id:
            subjects.append(replica_logs_of(d.id))
    if request.build_id and not request.replica_only:
        subjects.append(build_log_subject(request.build_id))
    return list(dict.fromkeys(subjects))

"""ManagementService: secrets (`/v1/secrets`) — upsert, list names, delete. A value goes in once and
comes out only to a replica of a deployment whose Truss declares it; no answer carries it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kingpost import management_shapes
from kingpost.errors import InvalidArgument, NotFound
from kingpost.grpc_status import abort_on_error
from kingpost.ids import new_id
from kingpost.v1 import management_pb2
from kingpost_scheduler import convert
from kingpost_scheduler.handlers.base import Handlers
from kingpost_scheduler.tables import SecretRecord

# A secret's name becomes a file name in the replica's secrets directory, as truss mounts them.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def check_secret_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidArgument(f"secret name {name!r}: use 1 to 128 letters, digits, '_', '.' or '-' "
                              "(not starting with '.' or '-')")
    return name


def secret_message(s: SecretRecord) -> management_pb2.Secret:
    return management_pb2.Secret(id=s.id, name=s.name, created_at=convert.timestamp(s.created_at),
                                 team_name=management_shapes.TEAM_NAME)


class Secrets(Handlers):
    @abort_on_error
    async def UpsertSecret(self, request: management_pb2.UpsertSecretRequest, context: Any) -> Any:
        name = check_secret_name(request.name)
        ciphertext = self.secret_box.seal(request.value)
        now = self.control.clock()

        async def upsert(session: AsyncSession) -> management_pb2.Secret:
            secret = await session.get(SecretRecord, name)
            if secret is None:
                secret = SecretRecord(name=name, id=new_id("sec"), ciphertext=ciphertext, created_at=now,
                                      updated_at=now)
                session.add(secret)
            else:
                secret.ciphertext, secret.updated_at = ciphertext, now
            await session.flush()
            return secret_message(secret)

        return await self.control.write(f"setting secret {name}", upsert)

    @abort_on_error
    async def ListSecrets(self, request: management_pb2.ListSecretsRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> list[management_pb2.Secret]:
            return [secret_message(s) for s in await all_secrets(session)]

        return management_pb2.ListSecretsResponse(secrets=await self.control.read("listing secrets", run))

    @abort_on_error
    async def DeleteSecret(self, request: management_pb2.DeleteSecretRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> None:
            secret = await session.get(SecretRecord, request.secret_name)
            if secret is None:
                raise NotFound(f"secret {request.secret_name!r} not found")
            await session.delete(secret)
            await session.flush()

        await self.control.write(f"deleting secret {request.secret_name}", run)
        return management_pb2.DeleteSecretResponse(name=request.secret_name)


async def all_secrets(session: AsyncSession) -> Sequence[SecretRecord]:
    return (await session.scalars(select(SecretRecord).order_by(SecretRecord.name))).all()

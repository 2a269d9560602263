"""ManagementService: webhook secrets (create, list, delete), which sign async results.

The scheduler owns them and sends them to routers in the route table (newest first), as it sends
API key digests; a router signs each webhook with every active one, so that a rotation is: create
the new one, move receivers to it, delete the old one.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kingpost.grpc_status import abort_on_error
from kingpost.ids import new_id
from kingpost.v1 import management_pb2
from kingpost_scheduler import convert, store
from kingpost_scheduler.handlers.base import Handlers


def new_webhook_secret() -> str:
    """`whsec_` and 32 random URL-safe characters (192 bits), shaped like Baseten's."""
    return "whsec_" + secrets.token_urlsafe(24)


class WebhookSecrets(Handlers):
    @abort_on_error
    async def CreateWebhookSecret(self, request: management_pb2.CreateWebhookSecretRequest, context: Any) -> Any:
        secret = new_webhook_secret()
        now = self.control.clock()

        async def create(session: AsyncSession) -> management_pb2.WebhookSecret:
            return convert.webhook_secret(
                await store.add_webhook_secret(session, id=new_id("whs"), secret=secret, now=now))

        made = await self.control.write("creating a webhook secret", create)
        return made

    @abort_on_error
    async def ListWebhookSecrets(self, request: management_pb2.ListWebhookSecretsRequest, context: Any) -> Any:
        async def run(session: AsyncSession) -> list[management_pb2.WebhookSecret]:
            return [convert.webhook_secret(w) for w in await store.list_webhook_secrets(session)]

        return management_pb2.ListWebhookSecretsResponse(
            webhook_secrets=await self.control.read("listing webhook secrets", run))

    @abort_on_error
    async def DeleteWebhookSecret(self, request: management_pb2.DeleteWebhookSecretRequest, context: Any) -> Any:
        await self.control.write("deleting a webhook secret",
                                 lambda s: store.delete_webhook_secret(s, request.id))
        return management_pb2.DeleteWebhookSecretResponse()

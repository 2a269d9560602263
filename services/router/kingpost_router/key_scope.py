"""What an invoke-only key (Baseten's WORKSPACE_INVOKE) may call: the router's check, per request."""

from __future__ import annotations

import grpc

from kingpost.auth import KeyCache, key_digest, key_from_authorization
from kingpost.errors import PermissionDenied
from kingpost_router.routes import Deployment


def check(keys: KeyCache, context: grpc.aio.ServicerContext, deployment: Deployment) -> None:
    """403 when the caller's key is invoke-only and not for this model. Internal callers (a
    Chainlet's router hop carries the internal token, not a key) are not limited."""
    if not keys.any_limited:
        return
    check_authorization(keys, dict(context.invocation_metadata() or ()).get("authorization"), deployment)


def check_authorization(keys: KeyCache, authorization: str | None, deployment: Deployment) -> None:
    """`check` for a caller's Authorization header value (the websocket route's, not gRPC's)."""
    if not keys.any_limited:
        return
    key = key_from_authorization(authorization)
    if key is None:
        return
    refusal = keys.scope(key_digest(key)).invoke_refusal(deployment.model_id, deployment.model_name)
    if refusal is not None:
        raise PermissionDenied(refusal)

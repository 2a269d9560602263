"""API keys: made here, stored only as sha256 digests, checked by one gRPC interceptor.

A key looks like `kp_<8 chars prefix>_<32 chars secret>`; the prefix names it in listings.
Clients send `Authorization: Api-Key <key>` (or `Bearer <key>`), as Baseten's do; over gRPC
that is the `authorization` metadata key, which Envoy's transcoder fills from the header.
Calls between services carry `x-kingpost-internal: <token>` instead.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import grpc

from kingpost.errors import KingpostError, PermissionDenied, Unauthenticated, Unavailable
from kingpost.grpc_status import grpc_abort
from kingpost.key_scopes import WORKSPACE, Scope

INTERNAL_TOKEN_KEY = "x-kingpost-internal"


def new_key() -> str:
    return f"kp_{secrets.token_hex(4)}_{secrets.token_urlsafe(24)}"


def key_prefix(key: str) -> str:
    return key[:11]


JOIN_TOKEN_PREFIX = "kpjoin_"


def new_join_token() -> str:
    """A token an agent joins with: `kpjoin_<8 chars prefix>_<32 chars secret>`."""
    return f"{JOIN_TOKEN_PREFIX}{secrets.token_hex(4)}_{secrets.token_urlsafe(24)}"


def join_token_prefix(token: str) -> str | None:
    """The part of a join token that names it in the database; None when it is not one."""
    if not token.startswith(JOIN_TOKEN_PREFIX) or token.count("_") < 2:
        return None
    return token[: len(JOIN_TOKEN_PREFIX) + 8]


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_from_authorization(value: str | None) -> str | None:
    """`Api-Key k` or `Bearer k` → k; anything else → None."""
    if not value:
        return None
    scheme, _, key = value.strip().partition(" ")
    if scheme.lower() in ("api-key", "bearer") and key.strip():
        return key.strip()
    return None


class KeyChecker(Protocol):
    @property
    def loaded(self) -> bool: ...

    def is_valid_digest(self, digest: str) -> bool: ...


class KeyCache:
    """The set of valid key digests and what each may do, replaced whole when the scheduler sends
    a new table.

    Until the first table arrives it is not `loaded`, and calls are answered 503 (try again)
    rather than 401: a service that has just started does not yet know any key.
    """

    def __init__(self, digests: Iterable[str] | None = None,
                 invoke_only: Mapping[str, Iterable[str]] | None = None) -> None:
        self._digests = frozenset(digests or ())
        self._scopes = _scopes(invoke_only)
        self.loaded = digests is not None

    def replace(self, digests: Iterable[str], invoke_only: Mapping[str, Iterable[str]] | None = None) -> None:
        """`invoke_only`: digest → the model ids an invoke-only key may call (empty: all); the
        other keys manage and invoke everything."""
        self._digests = frozenset(digests)
        self._scopes = _scopes(invoke_only)
        self.loaded = True

    def is_valid_digest(self, digest: str) -> bool:
        return digest in self._digests

    @property
    def any_limited(self) -> bool:
        """Whether some key may do less than everything (else no call needs its scope looked up)."""
        return bool(self._scopes)

    def scope(self, digest: str) -> Scope:
        return self._scopes.get(digest, WORKSPACE)


def _scopes(invoke_only: Mapping[str, Iterable[str]] | None) -> dict[str, Scope]:
    return {d: Scope(manage=False, model_ids=frozenset(ids)) for d, ids in (invoke_only or {}).items()}


@dataclass(frozen=True)
class Refusal:
    """Why a call with this key is refused, and the HTTP status that says so."""

    http_status: int
    message: str

    def error(self) -> KingpostError:
        if self.http_status == 403:
            return PermissionDenied(self.message)
        return Unauthenticated(self.message) if self.http_status == 401 else Unavailable(self.message)


def key_refusal(keys: KeyChecker, authorization: str | None) -> Refusal | None:
    """None when the `authorization` value carries a valid key; else why not (401, or 503 while the
    key table has not arrived). The one rule, for the interceptor and for Envoy's check alike."""
    key = key_from_authorization(authorization)
    if key is None:
        return Refusal(401, "missing API key: send the header 'Authorization: Api-Key <key>'")
    if not keys.loaded:
        return Refusal(503, "starting: the API key table has not arrived from the scheduler yet")
    if not keys.is_valid_digest(key_digest(key)):
        return Refusal(401, "invalid API key")
    return None


def scope_refusal(keys: KeyCache, authorization: str | None, method: str) -> Refusal | None:
    """403 when the (valid) key may not call a management `method` (an invoke-only key)."""
    if not keys.any_limited:
        return None
    key = key_from_authorization(authorization) or ""
    message = keys.scope(key_digest(key)).management_refusal(method.rpartition("/")[2] or method)
    return None if message is None else Refusal(403, message)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Checks every call: an API key for public methods, the internal token for the rest.

    `public_prefixes` are full-method prefixes: "/kingpost.v1.ManagementService/" for a whole
    service, "/kingpost.v1.BuildService/UploadSource" for one method. `invoke_prefixes`, among
    them, are those an invoke-only key may call (inference); the rest need a key that manages.

    With an empty internal token, internal methods are open: that is the embedded default,
    where internal services listen on loopback only.

    `self_checked` are full method names that carry their own credential in the request and check
    it themselves (NodeService/JoinNode and its join token): no API key, no internal token.
    """

    def __init__(self, keys: KeyCache, *, public_prefixes: Iterable[str], internal_token: str = "",
                 invoke_prefixes: Iterable[str] = (), self_checked: Iterable[str] = ()) -> None:
        self._keys = keys
        self._public = tuple(public_prefixes)
        self._invoke = tuple(invoke_prefixes)
        self._internal_token = internal_token
        self._self_checked = frozenset(self_checked)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = details.method or ""
        metadata = dict(details.invocation_metadata or ())
        token = metadata.get(INTERNAL_TOKEN_KEY)
        if method in self._self_checked:
            return await continuation(details)
        if self._internal_token and token and hmac.compare_digest(token, self._internal_token):
            return await continuation(details)
        if method.startswith(self._public):
            authorization = metadata.get("authorization")
            refusal = key_refusal(self._keys, authorization)
            if refusal is None and not (self._invoke and method.startswith(self._invoke)):
                refusal = scope_refusal(self._keys, authorization, method)
            if refusal is None:
                return await continuation(details)
            return _deny(await continuation(details), refusal.error())
        if self._internal_token:
            return _deny(await continuation(details),
                         PermissionDenied(f"{method} is internal to the platform"))
        return await continuation(details)


def _deny(handler: grpc.RpcMethodHandler | None, err: KingpostError):
    """A handler of the same shape as `handler` that only ends the call with `err`."""
    async def unary(_request, context):
        await grpc_abort(context, err)

    async def streaming(_request, context):
        await grpc_abort(context, err)
        yield  # pragma: no cover - makes this an async generator

    # Always a request-streaming handler, whatever the method's shape: gRPC then calls it without
    # first receiving the request message, so a refused caller's body is never read (a unary
    # handler would make gRPC take in up to the whole message limit before refusing it).
    if handler is not None and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(streaming)
    return grpc.stream_unary_rpc_method_handler(unary)

"""`/sync/{path}`: what of a caller's request reaches the server, and what of its answer comes back.

Pure: plain data in, plain data out. Over REST, Envoy's Lua filter records the request's own method
and path (with its query) in `x-kingpost-sync-method` and `x-kingpost-sync-path` before the
transcoder turns it into a `Sync` call (a POST to a gRPC path, the query stripped so that no query
parameter can set a field of the request message); gRPC clients set `method` and `query` instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

METHOD_KEY = "x-kingpost-sync-method"
PATH_KEY = "x-kingpost-sync-path"
STATUS_KEY = "x-http-status"

# Request headers that are the platform's, not the server's: the caller's key, the hop's own
# headers, what Envoy and gRPC add. Everything else reaches the server as sent.
_PLATFORM = frozenset({
    "authorization", "host", ":authority", "te", "content-length", "content-type", "connection",
    "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "grpc-accept-encoding",
    "grpc-timeout", "accept-encoding-grpc",
})
_PLATFORM_PREFIXES = ("x-kingpost-", "x-envoy-", "grpc-", ":")

# Response headers that belong to the hop between the runner and the router, not to the caller.
_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "content-type", "te",
                  "trailer", "upgrade", "proxy-connection"})

@dataclass(frozen=True, slots=True)
class SyncTarget:
    method: str
    # From the first `/`, with the query string: "/v1/chat/completions?stream=1".
    path: str
    headers: tuple[tuple[str, str], ...]


def target(path: str, method: str, query: str, metadata: Iterable[tuple[str, str | bytes]]) -> SyncTarget:
    """The request the server gets. `path`, `method` and `query` are the `SyncRequest`'s fields;
    the metadata's `x-kingpost-sync-*` keys (set by Envoy for REST callers) win over them."""
    headers = []
    sync_method = sync_path = ""
    for key, value in metadata:
        if isinstance(value, bytes):  # a `-bin` key: not an HTTP header
            continue
        if key == METHOD_KEY:
            sync_method = value
        elif key == PATH_KEY:
            sync_path = value
        elif key not in _PLATFORM and not key.startswith(_PLATFORM_PREFIXES):
            headers.append((key, value))
    if not sync_path:
        sync_path = "/" + path.lstrip("/") + (f"?{query}" if query else "")
    chosen = (sync_method or method or "POST").upper()
    return SyncTarget(chosen, sync_path, tuple(headers))


def response_metadata(metadata: Iterable[tuple[str, str | bytes]]) -> list[tuple[str, str]]:
    """The runner's initial metadata that goes on to the caller: the server's status and headers."""
    return [(k, v) for k, v in metadata
            if isinstance(v, str) and k not in _HOP and not k.startswith(("grpc-", ":"))]

"""API keys checked inside Envoy, with no hop per request: what the router attaches to a direct route.

    route.update(route_key_fields(snapshot, model))   # on each route Envoy sends to a replica of model

(`route_key_fields` returns the route's `metadata` and `typed_per_filter_config`; a route that
already has either merges them.) The listener carries the check once (kingpost.gateway's
`kingpost.api_key` Lua filter, the script src/kingpost/envoy/api_key.lua); it is a no-op on routes
without these fields, which the router serves and checks itself. On a route with them, Envoy hashes
the presented key (sha256, remembered per worker) and looks the digest up in what is built here
from the route table:

- the filter's `filter_context` holds `keys`, every key digest the table knows, as one
  space-separated string (the same on every route);
- the route's metadata, under the filter's name, holds `keys_version` (a digest of that string) and
  the router's 403 message under the digest of each invoke-only key scoped to other models.

Envoy copies a route's filter context and metadata each time the script reads them, so the script
reads the small metadata per request and the big `keys` only when its version is new to the worker:
the cost of a request does not grow with the number of keys. Envoy answers as the router does
(kingpost.auth.key_refusal, then key_scope.check):

- no key, or not `Api-Key <key>` / `Bearer <key>`: 401, "missing API key: ...";
- a digest the table does not know (a revoked key): 401, "invalid API key";
- an invoke-only key for other models: 403, the same message as the router's.

Only digests travel: the router and the files it writes for Envoy never hold a key. A revoked key
stops working when Envoy takes the next route configuration (a file rename or an ADS push; the
integration test measures it); requests in flight finish on the configuration they started with.

The fields also turn the listener's ext_authz hop off: the key is checked before the body is read
here too, as ext_authz did (the script reads headers only), and without leaving Envoy.
"""

from __future__ import annotations

import hashlib
from typing import Any

from kingpost.gateway import API_KEY_FILTER, API_KEY_SOURCE, EXT_AUTHZ_FILTER
from kingpost.key_scopes import Scope
from kingpost_router.routes import Model, RouteSnapshot

LUA_PER_ROUTE = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute"
FILTER_CONFIG = "type.googleapis.com/envoy.config.route.v3.FilterConfig"

Json = dict[str, Any]


def key_context(snapshot: RouteSnapshot) -> dict[str, str]:
    """The filter context of every direct route: `keys`, every digest of the table."""
    return {"keys": " ".join(sorted(snapshot.api_key_sha256))}


def key_metadata(snapshot: RouteSnapshot, model: Model) -> dict[str, str]:
    """A direct route's metadata for the check: the version of `keys`, and digest → the 403
    message for each invoke-only key that may not call `model`."""
    keys = key_context(snapshot)["keys"]
    metadata = {"keys_version": hashlib.sha256(keys.encode()).hexdigest()[:32]}
    for digest in sorted(snapshot.api_key_sha256):
        model_ids = snapshot.invoke_only.get(digest)
        refusal = None if model_ids is None else (
            Scope(manage=False, model_ids=model_ids).invoke_refusal(model.model_id, model.name))
        if refusal is not None:
            metadata[digest] = refusal
    return metadata


def route_key_fields(snapshot: RouteSnapshot, model: Model) -> Json:
    """The fields for each route Envoy sends straight to a replica of `model`: `metadata` and
    `typed_per_filter_config` (the key check with this model's refusals, and the ext_authz hop off)."""
    return {
        "metadata": {"filter_metadata": {API_KEY_FILTER: key_metadata(snapshot, model)}},
        "typed_per_filter_config": {
            API_KEY_FILTER: {"@type": LUA_PER_ROUTE, "name": API_KEY_SOURCE,
                             "filter_context": key_context(snapshot)},
            EXT_AUTHZ_FILTER: {"@type": FILTER_CONFIG, "disabled": True},
        },
    }

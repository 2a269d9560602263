"""Envoy's external authorization (ext_authz) check, answered by the router: the key before the body.

Envoy's gRPC-JSON transcoder buffers a whole request body before it calls the router, so a router
that checks the key on arrival has already made Envoy read (and then itself receive) every byte an
unauthenticated client chose to send. For requests whose body is large or of unknown length, Envoy
first asks `envoy.service.auth.v3.Authorization/Check` here, with the request's headers only; until
the answer comes, Envoy's flow control stops reading the body. Small bodies skip the check (the
hop would cost every request more than reading them does) and are checked on arrival as before.

Only the router knows the keys (as sha256 digests from the scheduler); Envoy never sees one.

The Check messages are Envoy's protobufs, of which this needs three fields: the header map of the
request (CheckRequest.attributes.request.http.headers) in, and a status with a denied HTTP response
out. They are read and written here with a few lines of protobuf wire format rather than by
vendoring Envoy's API protos and their dependencies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import grpc

from kingpost.auth import KeyCache, KeyChecker, key_digest, key_from_authorization, key_refusal

CHECK_METHOD = "/envoy.service.auth.v3.Authorization/Check"

# google.rpc.Code values the CheckResponse status carries.
_OK, _PERMISSION_DENIED, _UNAVAILABLE, _UNAUTHENTICATED = 0, 7, 14, 16
# An allowed request: every field at its default (status OK, no headers to change).
ALLOWED = b""


# --- protobuf wire format: just what the two messages need -----------------------------------------

def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(field number, payload) of each length-delimited field; other wire types are skipped."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        wire_type = key & 7
        if wire_type == 0:
            _, pos = _varint(data, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        elif wire_type == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ValueError("truncated field")
            yield key >> 3, data[pos:pos + size]
            pos += size
        else:
            raise ValueError(f"unsupported wire type {wire_type}")


def _nested(data: bytes, *path: int) -> Iterator[bytes]:
    """Every payload found by following field numbers `path` into nested messages."""
    if not path:
        yield data
        return
    for number, payload in _fields(data):
        if number == path[0]:
            yield from _nested(payload, *path[1:])


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _int_field(number: int, value: int) -> bytes:
    return _encode_varint(number << 3) + _encode_varint(value)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


# --- the two messages ---------------------------------------------------------------------------------

def authorization_header(check_request: bytes) -> str | None:
    """The `authorization` header of a CheckRequest (attributes=1 → request=4 → http=2 → headers=3)."""
    for entry in _nested(check_request, 1, 4, 2, 3):
        fields = dict(_fields(entry))  # a map entry: key=1, value=2
        if fields.get(1, b"").decode(errors="replace").lower() == "authorization":
            return fields.get(2, b"").decode(errors="replace")
    return None


def context_extensions(check_request: bytes) -> dict[str, str]:
    """The route's context_extensions of a CheckRequest (attributes=1 → context_extensions=10): on
    a direct route (data_path "envoy", xds.key_check) they name the model."""
    found = {}
    for entry in _nested(check_request, 1, 10):
        fields = dict(_fields(entry))
        found[fields.get(1, b"").decode(errors="replace")] = fields.get(2, b"").decode(errors="replace")
    return found


def denied(http_status: int, message: str) -> bytes:
    """A CheckResponse that refuses the request with `http_status` and `message` as its body.

    Envoy's local_reply_config on the REST listener turns the body into {"error": "<message>"}.
    """
    code = {503: _UNAVAILABLE, 403: _PERMISSION_DENIED}.get(http_status, _UNAUTHENTICATED)
    status = _int_field(1, code) + _bytes_field(2, message.encode())  # google.rpc.Status
    http = _bytes_field(1, _int_field(1, http_status))  # DeniedHttpResponse.status: HttpStatus.code
    http += _bytes_field(3, message.encode())  # DeniedHttpResponse.body
    return _bytes_field(1, status) + _bytes_field(2, http)


def check(keys: KeyChecker, check_request: bytes) -> bytes:
    """The CheckResponse for one request: allowed, or denied as the router itself would deny it."""
    try:
        authorization = authorization_header(check_request)
    except ValueError:
        authorization = None
    refusal = key_refusal(keys, authorization)
    if refusal is not None:
        return denied(refusal.http_status, refusal.message)
    if isinstance(keys, KeyCache) and keys.any_limited:  # an invoke-only key: for this model only?
        try:
            model = context_extensions(check_request)
        except ValueError:
            model = {}
        if "model_id" in model:
            key = key_from_authorization(authorization) or ""
            message = keys.scope(key_digest(key)).invoke_refusal(model["model_id"], model.get("model_name", ""))
            if message is not None:
                return denied(403, message)
    return ALLOWED


# --- the gRPC face ---------------------------------------------------------------------------------------

class EnvoyAuthzInterceptor(grpc.aio.ServerInterceptor):
    """Answers Check itself, ahead of the AuthInterceptor.

    Check carries the client's key in its message, not in the call's metadata, so the
    AuthInterceptor (which asks the call's metadata for a key, or for the internal token) must not
    see it. Listed first, this interceptor hands gRPC the Check handler without going further.
    Anyone who can reach the router may ask whether a key is valid; calling Predict tells them as much.
    """

    def __init__(self, keys: KeyChecker) -> None:
        async def unary(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
            return check(keys, request)

        self._handler = grpc.unary_unary_rpc_method_handler(
            unary, request_deserializer=None, response_serializer=None)  # raw bytes both ways

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if details.method == CHECK_METHOD:
            return self._handler
        return await continuation(details)

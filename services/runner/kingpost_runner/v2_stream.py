"""What the runner must know of a V2 `ModelStreamInfer` call, read from its serialized messages.

The runner passes a stream's messages to tritonserver as bytes (its environment has no Triton
schema), but it must know where one request's responses end: a decoupled model sends any number.
So it asks Triton for an empty final response (the request parameter
`triton_enable_empty_final_response`, appended to the serialized request: a repeated map field
merges) and watches the responses for `triton_final_response: true`; that empty final response
reaches the client only when the client asked for it itself.

Wire format (Triton's grpc_service.proto): ModelInferRequest.parameters = 4 (map<string,
InferParameter>); ModelStreamInferResponse{error_message = 1; infer_response = 2};
ModelInferResponse.parameters = 4; InferParameter.bool_param = 1.
"""

from __future__ import annotations

from collections.abc import Iterator

ENABLE_FINAL = b"triton_enable_empty_final_response"
FINAL = b"triton_final_response"
_PARAMETERS = 4


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of a message: ints for varints, bytes for length-delimited fields."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
            yield number, value
        elif wire == 2:
            length, i = _varint(data, i)
            yield number, data[i:i + length]
            i += length
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


def asks_final(request: bytes) -> bool:
    return _bool_parameter(request, ENABLE_FINAL)


def with_final_response(request: bytes) -> bytes:
    """The request, asking Triton to end the stream of its responses with an empty final one."""
    entry = _length_delimited(1, ENABLE_FINAL) + _length_delimited(2, b"\x08\x01")
    return request + _length_delimited(_PARAMETERS, entry)


def _bool_parameter(message: bytes, name: bytes) -> bool:
    for number, entry in _fields(message):
        if number != _PARAMETERS or not isinstance(entry, bytes):
            continue
        fields = dict(_fields(entry))
        if fields.get(1) == name and isinstance(value := fields.get(2), bytes):
            return dict(_fields(value)).get(1) == 1
    return False


def is_final(response: bytes) -> bool:
    """True for the response that ends its request's stream (or an error, which ends it too)."""
    for number, value in _fields(response):
        if number == 1 and value:
            return True
        if number == 2 and isinstance(value, bytes) and _bool_parameter(value, FINAL):
            return True
    return False


def has_content(response: bytes) -> bool:
    """An error, or outputs (ModelInferResponse.outputs = 5): not an empty final response."""
    for number, value in _fields(response):
        if number == 1 and value:
            return True
        if number == 2 and isinstance(value, bytes) and any(n in (5, 6) for n, _ in _fields(value)):
            return True
    return False

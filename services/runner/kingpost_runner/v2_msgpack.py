"""The msgpack face of a Triton deployment's predict: numpy arrays in and out, as raw bytes, no base64.

Request (`Content-Type: application/octet-stream`, packed with msgpack_numpy as a Truss client does):

    {"inputs": {"INPUT0": np.ndarray, "INPUT1": np.ndarray}, "model_name": "add_sub"}   # model_name optional

becomes Triton's V2 HTTP request with binary tensors (the JSON header, then each array's bytes), and
Triton's binary answer becomes

    {"model_name": ..., "model_version": ..., "outputs": {"OUTPUT0": np.ndarray, ...}}

Arrays travel as msgpack_numpy's maps (`{b"nd": True, b"type": "<f4", b"kind": b"", b"shape": [...],
b"data": bytes}`), read and written here without numpy (the runner's environment has none).
"""

from __future__ import annotations

import json
from typing import Any

import msgpack

from kingpost import errors

# V2 datatype <-> numpy's array-protocol type string (little-endian, as msgpack_numpy writes them).
V2_TO_NUMPY = {"BOOL": "|b1", "INT8": "|i1", "UINT8": "|u1", "INT16": "<i2", "UINT16": "<u2", "INT32": "<i4",
               "UINT32": "<u4", "INT64": "<i8", "UINT64": "<u8", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8"}
NUMPY_TO_V2 = {v: k for k, v in V2_TO_NUMPY.items()}


def _array(name: str, value: Any) -> tuple[str, list[int], bytes]:
    if not isinstance(value, dict) or value.get(b"nd") is not True:
        raise errors.InvalidArgument(f"inputs.{name}: must be a numpy array (packed with msgpack_numpy)")
    dtype = value.get(b"type")
    datatype = NUMPY_TO_V2.get(dtype if isinstance(dtype, str) else "")
    if datatype is None:
        raise errors.InvalidArgument(f"inputs.{name}: dtype {dtype!r} has no V2 datatype (use one of "
                                     f"{', '.join(sorted(NUMPY_TO_V2))})")
    return datatype, [int(d) for d in value.get(b"shape") or []], bytes(value.get(b"data") or b"")


def request(body: bytes) -> tuple[str | None, bytes, int]:
    """(the model named or None, Triton's V2 HTTP body, the length of its JSON header)."""
    try:
        data = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as e:  # msgpack raises several types for bad input
        raise errors.InvalidArgument(f"the request body is not msgpack: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("inputs"), dict) or not data["inputs"]:
        raise errors.InvalidArgument('a Triton deployment takes msgpack {"inputs": {"NAME": numpy array, ...}}')
    inputs, blobs = [], []
    for name, value in data["inputs"].items():
        datatype, shape, raw = _array(str(name), value)
        inputs.append({"name": str(name), "shape": shape, "datatype": datatype,
                       "parameters": {"binary_data_size": len(raw)}})
        blobs.append(raw)
    header = json.dumps({"inputs": inputs, "parameters": {"binary_data_output": True}}).encode()
    model = data.get("model_name")
    return (str(model) if model else None), header + b"".join(blobs), len(header)


def response(body: bytes, header_length: str | None) -> bytes:
    """Triton's V2 answer (binary outputs after a JSON header) as msgpack with numpy arrays."""
    split = int(header_length) if header_length else len(body)
    header = json.loads(body[:split])
    offset, outputs = split, {}
    for output in header.get("outputs") or []:
        size = (output.get("parameters") or {}).get("binary_data_size")
        dtype = V2_TO_NUMPY.get(output.get("datatype", ""))
        if size is None or dtype is None:  # sent as JSON (BYTES, say): a plain list
            outputs[output["name"]] = output.get("data")
            continue
        outputs[output["name"]] = {b"nd": True, b"type": dtype, b"kind": b"", b"shape": output.get("shape") or [],
                                   b"data": body[offset:offset + size]}
        offset += size
    return msgpack.packb({"model_name": header.get("model_name"), "model_version": header.get("model_version"),
                          "outputs": outputs}, use_bin_type=True)

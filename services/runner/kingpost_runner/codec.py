"""Request bodies in, results out: JSON, or msgpack for `application/octet-stream`, as truss does.

msgpack uses truss's wire format: numpy arrays and scalars as msgpack_numpy's maps
(`{b"nd": True, b"type": dtype.str, b"kind": b"", b"shape": [...], b"data": raw bytes}`), and
datetime/date/time/timedelta/Decimal/UUID as `{b"__dt_datetime_iso__": True, b"data": ...}` etc.
numpy is imported only when such a value appears; object arrays (pickles) are refused.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sys
import uuid
from collections.abc import Iterable
from typing import Any

import msgpack

JSON = "application/json"
OCTET_STREAM = "application/octet-stream"
EVENT_STREAM = "text/event-stream"


class InputError(ValueError):
    """The body cannot be decoded or validated; the message is the one the caller sees (400)."""


def media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def is_binary(content_type: str) -> bool:
    return media_type(content_type) == OCTET_STREAM


# --- msgpack extension maps -------------------------------------------------------------------

def _numpy() -> Any:
    import numpy

    return numpy


def _msgpack_default(obj: Any) -> Any:
    module = type(obj).__module__
    if module == "numpy" or module.startswith("numpy."):
        np = _numpy()
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind in ("O", "V"):
                raise TypeError(f"cannot serialize numpy arrays of dtype {obj.dtype}")
            return {b"nd": True, b"type": obj.dtype.str, b"kind": b"", b"shape": list(obj.shape),
                    b"data": np.ascontiguousarray(obj).tobytes()}
        if isinstance(obj, np.bool_ | np.number):
            return {b"nd": False, b"type": obj.dtype.str, b"data": obj.tobytes()}
    if isinstance(obj, dt.datetime):
        text = obj.isoformat()
        return {b"__dt_datetime_iso__": True, b"data": text[:-6] + "Z" if text.endswith("+00:00") else text}
    if isinstance(obj, dt.date):
        return {b"__dt_date_iso__": True, b"data": obj.isoformat()}
    if isinstance(obj, dt.time):
        if obj.utcoffset() is not None:
            raise ValueError("cannot represent timezone-aware times")
        return {b"__dt_time_iso__": True, b"data": obj.isoformat()}
    if isinstance(obj, dt.timedelta):
        return {b"__dt_timedelta__": True, b"data": [obj.days, obj.seconds, obj.microseconds]}
    if isinstance(obj, decimal.Decimal):
        return {b"__decimal__": True, b"data": str(obj)}
    if isinstance(obj, uuid.UUID):
        return {b"__uuid__": True, b"data": str(obj)}
    if isinstance(obj, complex):
        return {b"complex": True, b"data": repr(obj)}
    dumped = _pydantic_dump(obj, mode="python")
    if dumped is not _NOT_PYDANTIC:
        return dumped
    raise TypeError(f"cannot serialize {type(obj).__name__} to msgpack")


def _msgpack_object_hook(obj: dict[Any, Any]) -> Any:
    if b"nd" in obj:
        if obj.get(b"kind") in (b"O", b"V"):
            raise ValueError("unsupported payload: numpy object/structured arrays are not accepted")
        np = _numpy()
        dtype = np.dtype(obj[b"type"].decode() if isinstance(obj[b"type"], bytes) else obj[b"type"])
        if obj[b"nd"] is True:
            return np.frombuffer(obj[b"data"], dtype=dtype).reshape(obj[b"shape"])
        return np.frombuffer(obj[b"data"], dtype=dtype)[0]
    if b"__dt_datetime_iso__" in obj:
        return dt.datetime.fromisoformat(obj[b"data"])
    if b"__dt_date_iso__" in obj:
        return dt.date.fromisoformat(obj[b"data"])
    if b"__dt_time_iso__" in obj:
        return dt.time.fromisoformat(obj[b"data"])
    if b"__dt_timedelta__" in obj:
        days, seconds, micros = obj[b"data"]
        return dt.timedelta(days=days, seconds=seconds, microseconds=micros)
    if b"__decimal__" in obj:
        return decimal.Decimal(obj[b"data"])
    if b"__uuid__" in obj:
        return uuid.UUID(obj[b"data"])
    if b"complex" in obj:
        return complex(obj[b"data"])
    return obj


def msgpack_dumps(obj: Any) -> bytes:
    return msgpack.packb(obj, default=_msgpack_default)


def msgpack_loads(data: bytes) -> Any:
    return msgpack.unpackb(data, object_hook=_msgpack_object_hook)


# --- JSON -------------------------------------------------------------------------------------

_NOT_PYDANTIC = object()


def _pydantic_dump(obj: Any, mode: str) -> Any:
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(obj, pydantic.BaseModel):
        return obj.model_dump(mode=mode)
    return _NOT_PYDANTIC


def _json_default(obj: Any) -> Any:
    module = type(obj).__module__
    if module == "numpy" or module.startswith("numpy."):
        np = _numpy()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, np.integer):
            return int(obj)
        if isinstance(obj, np.floating):
            return float(obj)
        if isinstance(obj, np.bool_):
            return bool(obj)
    dumped = _pydantic_dump(obj, mode="json")
    if dumped is not _NOT_PYDANTIC:
        return dumped
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


# --- the two directions -----------------------------------------------------------------------

def format_validation_error(exc: Any) -> str:
    """A pydantic ValidationError as truss words it: "Input Parsing Error:\\n  `a.b[0]`: msg."."""
    try:
        errors = exc.errors(include_url=False, include_input=False)
        lines = ["Input Parsing Error:" if len(errors) == 1 else "Input Parsing Errors:"]
        for error in errors:
            loc = "".join(
                f"[{part}]" if isinstance(part, int) else (f".{part}" if i else str(part))
                for i, part in enumerate(error["loc"])
            )
            lines.append(f"  `{loc}`: {error['msg']}.")
        return "\n".join(lines)
    except Exception:
        return f"Input Parsing Error, {exc}"


def decode_body(data: bytes, content_type: str, input_type: type | None = None) -> Any:
    """The model's inputs from a request body; raises InputError with the caller-facing message."""
    pydantic = sys.modules.get("pydantic") if input_type is not None else None
    if is_binary(content_type):
        try:
            inputs = msgpack_loads(data)
        except Exception as e:
            raise InputError(f"Invalid msgpack payload: {e}") from e
        if pydantic is None:
            return inputs
        try:
            return input_type.model_validate(inputs)  # type: ignore[union-attr]
        except pydantic.ValidationError as e:
            raise InputError(format_validation_error(e)) from e
    if pydantic is not None:
        try:
            return input_type.model_validate_json(data)  # type: ignore[union-attr]
        except pydantic.ValidationError as e:
            raise InputError(format_validation_error(e)) from e
    try:
        return json.loads(data)
    except ValueError as e:  # JSONDecodeError, and UnicodeDecodeError for non-UTF-8 bytes
        raise InputError(f"Invalid JSON payload: {e}") from e
    except RecursionError as e:  # ~1,000 nested arrays or objects: past Python's recursion limit
        raise InputError("Invalid JSON payload: nested too deeply") from e


def encode_result(result: Any, binary: bool) -> tuple[bytes, str]:
    """A (non-streaming) result as (body, content type): msgpack if the request was, else JSON."""
    if binary:
        if isinstance(result, bytes | bytearray):
            return bytes(result), OCTET_STREAM
        dumped = _pydantic_dump(result, mode="python")
        return msgpack_dumps(result if dumped is _NOT_PYDANTIC else dumped), OCTET_STREAM
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(result, pydantic.BaseModel):
        return result.model_dump_json().encode(), JSON  # NaN and ±Infinity as null already
    return _json_dumps(result).encode(), JSON


def _json_dumps(result: Any) -> str:
    """JSON text, always valid: NaN and ±Infinity become null.

    truss writes `json.dumps`'s NaN / Infinity tokens, which are not JSON (JavaScript's JSON.parse,
    Go and Rust refuse the whole body); its pydantic results already come out as null, as
    JavaScript's JSON.stringify writes them. The common case pays nothing: only a result that holds
    such a float is written twice.
    """
    try:
        return json.dumps(result, default=_json_default, allow_nan=False)
    except ValueError:  # a non-finite float (or a circular reference, raised again below)
        text = json.dumps(result, default=_json_default)
        return json.dumps(json.loads(text, parse_constant=lambda _: None))


def encode_chunk(chunk: Any) -> bytes:
    """One streamed chunk as bytes: bytes as they are, str as UTF-8."""
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, bytearray | memoryview):
        return bytes(chunk)
    return str(chunk).encode()


def join_chunks(chunks: Iterable[bytes]) -> str:
    """A stream gathered for `accept: application/json`: the joined text (decoded once)."""
    return b"".join(chunks).decode()

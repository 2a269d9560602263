"""Bodies in and out, as a Truss caller sees them: JSON by default, msgpack for octet-stream."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid

import msgpack
import msgpack_numpy
import numpy as np
import pydantic
import pytest

from kingpost_runner import codec


class Item(pydantic.BaseModel):
    name: str
    tags: list[str] = []


def test_json_body_and_result() -> None:
    assert codec.decode_body(b'{"a": [1, 2]}', "application/json") == {"a": [1, 2]}
    assert codec.encode_result({"a": 1}, binary=False) == (b'{"a": 1}', "application/json")


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe", b"[1,]"])
def test_malformed_json_says_invalid_json_payload(body: bytes) -> None:
    with pytest.raises(codec.InputError, match=r"^Invalid JSON payload: "):
        codec.decode_body(body, "application/json")


def test_json_nested_past_the_recursion_limit_is_invalid_input_not_a_crash() -> None:
    with pytest.raises(codec.InputError, match=r"^Invalid JSON payload: nested too deeply$"):
        codec.decode_body(b"[" * 5000 + b"]" * 5000, "application/json")
    with pytest.raises(codec.InputError, match=r"^Invalid JSON payload: nested too deeply$"):
        codec.decode_body(b'{"a":' * 5000 + b"1" + b"}" * 5000, "application/json")


def test_nan_and_infinity_are_accepted_in_and_written_as_null_out() -> None:
    inputs = codec.decode_body(b'{"a": NaN, "b": [Infinity, -Infinity]}', "application/json")  # as truss does
    result = {**inputs, "c": np.array([1.5, np.nan]), "d": "NaN"}
    body, content_type = codec.encode_result(result, binary=False)
    assert content_type == "application/json"
    assert json.loads(body, parse_constant=lambda c: pytest.fail(f"{c} is not JSON")) == {
        "a": None, "b": [None, None], "c": [1.5, None], "d": "NaN"}


def test_a_circular_result_is_still_refused() -> None:
    result: dict[str, object] = {}
    result["self"] = result
    with pytest.raises(ValueError, match="Circular reference"):
        codec.encode_result(result, binary=False)


def test_content_type_parameters_and_case_are_ignored() -> None:
    assert codec.is_binary("Application/Octet-Stream; charset=binary")
    assert not codec.is_binary("application/json")


def test_numpy_array_wire_format_matches_msgpack_numpy_both_ways() -> None:
    array = np.arange(12, dtype=np.int16).reshape(3, 4)
    # Theirs → ours (what a truss client sends) and ours → theirs (what it reads back).
    ours = codec.msgpack_loads(msgpack.packb({"x": array}, default=msgpack_numpy.encode))
    assert ours["x"].dtype == np.int16 and ours["x"].tobytes() == array.tobytes()
    theirs = msgpack.unpackb(codec.msgpack_dumps({"x": array, "s": np.float64(2.5)}),
                             object_hook=msgpack_numpy.decode)
    assert np.array_equal(theirs["x"], array) and theirs["s"] == np.float64(2.5)


def test_non_contiguous_and_zero_dim_arrays_round_trip() -> None:
    array = np.arange(20, dtype=np.float64).reshape(4, 5)[:, ::2]
    back = codec.msgpack_loads(codec.msgpack_dumps([array, np.array(3.0)]))
    assert np.array_equal(back[0], array) and back[1].shape == ()


def test_object_arrays_are_refused_not_unpickled() -> None:
    payload = msgpack.packb({b"nd": True, b"type": "|O", b"kind": b"O", b"shape": [1], b"data": b"x"})
    with pytest.raises(codec.InputError, match="unsupported payload"):
        codec.decode_body(payload, "application/octet-stream")


def test_truss_extension_types_round_trip_over_msgpack() -> None:
    values = [dt.datetime(2024, 1, 2, 3, 4, 5), dt.date(2024, 1, 2), dt.time(3, 4),
              dt.timedelta(days=1, seconds=3),
              decimal.Decimal("1.25"), uuid.UUID(int=5), 1 + 2j]
    assert codec.msgpack_loads(codec.msgpack_dumps(values)) == values


def test_json_result_turns_numpy_into_lists_and_pydantic_into_objects() -> None:
    body, _ = codec.encode_result(
        {"a": np.array([1, 2]), "b": np.int32(3), "c": np.float32(0.5), "d": np.bool_(True),
         "e": Item(name="n")},
        binary=False,
    )
    assert json.loads(body) == {"a": [1, 2], "b": 3, "c": 0.5, "d": True, "e": {"name": "n", "tags": []}}
    expected = (b'{"name":"x","tags":[]}', "application/json")
    assert codec.encode_result(Item(name="x"), binary=False) == expected


def test_binary_result_dumps_pydantic_and_passes_bytes_through() -> None:
    body, content_type = codec.encode_result(Item(name="x", tags=["t"]), binary=True)
    assert content_type == "application/octet-stream"
    assert msgpack.unpackb(body) == {"name": "x", "tags": ["t"]}
    assert codec.encode_result(b"\x00raw", binary=True) == (b"\x00raw", "application/octet-stream")


def test_pydantic_validation_message_matches_truss() -> None:
    with pytest.raises(codec.InputError) as err:
        codec.decode_body(b'{"tags": [1]}', "application/json", Item)
    assert str(err.value) == (
        "Input Parsing Errors:\n  `name`: Field required.\n  `tags[0]`: Input should be a valid string."
    )
    with pytest.raises(codec.InputError, match=r"^Input Parsing Error:\n  `name`: Field required\.$"):
        codec.decode_body(msgpack.packb({}), "application/octet-stream", Item)
    assert codec.decode_body(b'{"name": "a"}', "application/json", Item) == Item(name="a")


def test_chunks_are_bytes_and_gathered_text_decodes_once() -> None:
    assert codec.encode_chunk("é") == "é".encode()
    assert codec.encode_chunk(b"\x00") == b"\x00"
    assert codec.encode_chunk(7) == b"7"
    e = "é".encode()
    assert codec.join_chunks([e[:1], e[1:]]) == "é"  # a code point split across two chunks

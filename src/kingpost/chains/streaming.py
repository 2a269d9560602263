"""`truss_chains.streaming`: pydantic messages over a Chainlet's byte stream, in truss's wire format.

A streaming `run_remote` yields bytes; `stream_writer(types)` frames each message as a 5-byte tag —
`struct.pack(">BI", delimiter, length)`, delimiter HEADER=2, ITEM=3, FOOTER=4 — followed by the
message's JSON (`model_dump_json()`), so a stream written here reads with truss's `stream_reader` and
the other way round. `stream_reader(types, chunks)` reads such frames from any async iterator of bytes
(a dependency's `run_remote`, an HTTP response's chunks), whatever the chunk boundaries:

    types = chains.streaming.stream_types(Item, header_type=Header, footer_type=Footer)

    async def run_remote(self, n: int) -> AsyncIterator[bytes]:         # the producer
        writer = chains.streaming.stream_writer(types)
        yield writer.yield_header(Header(n=n))
        for i in range(n):
            yield writer.yield_item(Item(i=i))
        yield writer.yield_footer(Footer(done=True))

    reader = chains.streaming.stream_reader(types, self._producer.run_remote(n))  # a consumer
    header = await reader.read_header()
    async for item in reader.read_items(): ...
    footer = await reader.read_footer()
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import struct
from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar

import pydantic

ItemT = TypeVar("ItemT", bound=pydantic.BaseModel)
_TAG = struct.Struct(">BI")  # delimiter (uint8), length of the JSON that follows (uint32, big-endian)


class _Delimiter(enum.IntEnum):  # truss's values
    NOT_SET = 1
    HEADER = 2
    ITEM = 3
    FOOTER = 4
    END = 5


@dataclasses.dataclass
class StreamTypes(Generic[ItemT]):
    item_type: type[ItemT]
    header_type: type[pydantic.BaseModel] | None = None
    footer_type: type[pydantic.BaseModel] | None = None


def stream_types(item_type: type[ItemT], *, header_type: type[pydantic.BaseModel] | None = None,
                 footer_type: type[pydantic.BaseModel] | None = None) -> StreamTypes[ItemT]:
    """The message types of a stream: items, and optionally one header before them and one footer after."""
    for name, t in (("item_type", item_type), ("header_type", header_type), ("footer_type", footer_type)):
        if t is not None and not (isinstance(t, type) and issubclass(t, pydantic.BaseModel)):
            raise TypeError(f"stream_types: `{name}` must be a pydantic model class, not {t!r}")
    return StreamTypes(item_type, header_type, footer_type)


class StreamWriter(Generic[ItemT]):
    """Frames messages; each `yield_*` returns the bytes to `yield` from `run_remote`."""

    def __init__(self, types: StreamTypes[ItemT]) -> None:
        self._types = types
        self._last = _Delimiter.NOT_SET

    def _frame(self, obj: pydantic.BaseModel, delimiter: _Delimiter) -> bytes:
        data = obj.model_dump_json().encode()
        self._last = delimiter
        return _TAG.pack(delimiter, len(data)) + data

    def yield_header(self, header: pydantic.BaseModel) -> bytes:
        if self._types.header_type is None:
            raise ValueError("This stream has no header type: pass `header_type=` to stream_types.")
        if self._last != _Delimiter.NOT_SET:
            raise ValueError("Cannot yield header after other data has been sent.")
        return self._frame(header, _Delimiter.HEADER)

    def yield_item(self, item: ItemT) -> bytes:
        if self._last in (_Delimiter.FOOTER, _Delimiter.END):
            raise ValueError("Cannot yield item after sending footer / closing stream.")
        return self._frame(item, _Delimiter.ITEM)

    def yield_footer(self, footer: pydantic.BaseModel) -> bytes:
        if self._types.footer_type is None:
            raise ValueError("This stream has no footer type: pass `footer_type=` to stream_types.")
        if self._last == _Delimiter.END:
            raise ValueError("Cannot yield footer after closing stream.")
        return self._frame(footer, _Delimiter.FOOTER)


class StreamReader(Generic[ItemT]):
    """Reads framed messages back from an async iterator of byte chunks."""

    def __init__(self, types: StreamTypes[ItemT], stream: AsyncIterator[bytes]) -> None:
        self._types = types
        self._source = stream.__aiter__()
        self._buffer = bytearray()
        self._footer: bytes | None = None

    async def _exactly(self, n: int) -> bytes | None:
        """`n` bytes, or None at a clean end of the stream (IncompleteReadError inside a frame)."""
        while len(self._buffer) < n:
            try:
                chunk = await self._source.__anext__()
            except StopAsyncIteration:
                if not self._buffer:
                    return None
                raise asyncio.IncompleteReadError(bytes(self._buffer), n) from None
            self._buffer.extend(chunk.encode() if isinstance(chunk, str) else chunk)
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def _read(self) -> tuple[_Delimiter, bytes]:
        tag = await self._exactly(_TAG.size)
        if tag is None:
            return _Delimiter.END, b""
        value, length = _TAG.unpack(tag)
        try:
            delimiter = _Delimiter(value)
        except ValueError:
            raise ValueError(f"not a chains.streaming stream: frame tag {value} is none of 2 (header), "
                             f"3 (item), 4 (footer)") from None
        if not length:
            return delimiter, b""
        data = await self._exactly(length)
        if data is None:
            raise asyncio.IncompleteReadError(b"", length)
        return delimiter, data

    async def read_header(self) -> Any:
        if self._types.header_type is None:
            raise ValueError("This stream has no header type: pass `header_type=` to stream_types.")
        delimiter, data = await self._read()
        if delimiter != _Delimiter.HEADER:
            raise ValueError("Stream does not contain header.")
        return self._types.header_type.model_validate_json(data)

    async def read_items(self) -> AsyncIterator[ItemT]:
        delimiter, data = await self._read()
        if delimiter == _Delimiter.HEADER:
            raise ValueError("Called `read_items`, but the stream contains header data, which is not "
                             "consumed. Call `read_header` first or remove sending a header.")
        while delimiter == _Delimiter.ITEM:
            yield self._types.item_type.model_validate_json(data)
            delimiter, data = await self._read()
        if delimiter == _Delimiter.FOOTER:
            self._footer = data

    async def read_footer(self) -> Any:
        if self._types.footer_type is None:
            raise ValueError("This stream has no footer type: pass `footer_type=` to stream_types.")
        if self._footer is None:
            delimiter, data = await self._read()
            if delimiter != _Delimiter.FOOTER:
                raise ValueError("Stream does not contain footer.")
            self._footer = data
        footer, self._footer = self._footer, None
        return self._types.footer_type.model_validate_json(footer)


def stream_writer(types: StreamTypes[ItemT]) -> StreamWriter[ItemT]:
    return StreamWriter(types)


def stream_reader(types: StreamTypes[ItemT], stream: AsyncIterator[bytes]) -> StreamReader[ItemT]:
    return StreamReader(types, stream)

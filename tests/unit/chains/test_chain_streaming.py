"""Streaming Chainlets: which `run_remote`s stream (truss's rules, each refusal naming the fault), and
`chains.streaming`'s framed pydantic messages in truss's byte format, read back whatever the chunking."""

import asyncio
import struct
from collections.abc import AsyncIterator, Iterator

import pydantic
import pytest

import kingpost.chains as chains
from kingpost.chains.graph import ChainValidationError, build_graph
from kingpost.chains.signatures import SignatureError, read_endpoint


class Header(pydantic.BaseModel):
    title: str


class Item(pydantic.BaseModel):
    i: int


class Footer(pydantic.BaseModel):
    total: int


TYPES = chains.streaming.stream_types(Item, header_type=Header, footer_type=Footer)


class Words(chains.ChainletBase):
    async def run_remote(self, text: str) -> AsyncIterator[str]:
        for word in text.split():
            yield word


class Framed(chains.ChainletBase):
    async def run_remote(self, n: int) -> AsyncIterator[bytes]:
        writer = chains.streaming.stream_writer(TYPES)
        yield writer.yield_header(Header(title="count"))
        for i in range(n):
            yield writer.yield_item(Item(i=i))
        yield writer.yield_footer(Footer(total=n))


@chains.mark_entrypoint
class Reader(chains.ChainletBase):
    def __init__(self, words: Words = chains.depends(Words), framed: Framed = chains.depends(Framed)) -> None:
        self._words = words
        self._framed = framed

    async def run_remote(self, text: str) -> AsyncIterator[str]:
        async for word in self._words.run_remote(text):
            yield word.upper()
        reader = chains.streaming.stream_reader(TYPES, self._framed.run_remote(len(text.split())))
        header = await reader.read_header()
        items = [item.i async for item in reader.read_items()]
        footer = await reader.read_footer()
        yield f"|{header.title}:{items}:{footer.total}"


class _Plain(chains.ChainletBase):
    async def run_remote(self) -> int:
        return 1


def test_an_async_generator_of_str_or_bytes_is_a_streaming_endpoint():
    words, framed = read_endpoint(Words), read_endpoint(Framed)
    assert (words.is_streaming, words.stream_item, words.is_async) == (True, str, True)
    assert (framed.stream_item, read_endpoint(Reader).stream_item) == (bytes, str)
    assert not read_endpoint(_Plain).is_streaming
    assert build_graph([Words, Framed, Reader]).entrypoint == "Reader"


def test_run_local_streams_between_chainlets_and_structured_messages_round_trip():
    async def collect() -> list[str]:
        with chains.run_local():
            return [chunk async for chunk in Reader().run_remote("a b c")]

    assert asyncio.run(collect()) == ["A", "B", "C", "|count:[0, 1, 2]:3"]


def _refused(run_remote, match: str) -> None:
    cls = type("Bad", (chains.ChainletBase,), {"run_remote": run_remote})
    with pytest.raises(SignatureError, match=match):
        read_endpoint(cls)


def test_streams_that_truss_refuses_are_refused_naming_the_fault():
    def sync_gen(self) -> Iterator[str]:
        yield "x"

    async def ints(self) -> AsyncIterator[int]:
        yield 1

    async def no_annotation(self) -> str:
        yield "x"

    async def no_yield(self) -> AsyncIterator[str]:
        return None

    async def stream_param(self, chunks: AsyncIterator[str]) -> str:
        return ""

    _refused(sync_gen, r"`Bad.run_remote` is a sync generator: .* must be `async def`")
    _refused(ints, r"AsyncIterator\[str\] or AsyncIterator\[bytes\]; for structured data use chains.streaming")
    _refused(no_annotation, r"has `yield` \(it streams\), so its return type must be AsyncIterator")
    _refused(no_yield, r"returns a stream .* but has no `yield`")
    _refused(stream_param, r"parameter `chunks` .* is a stream")


def test_a_chain_file_with_a_bad_stream_is_refused_with_file_and_line():
    class SyncStream(chains.ChainletBase):
        def run_remote(self) -> Iterator[bytes]:
            yield b""

    chains.mark_entrypoint(SyncStream)
    with pytest.raises(ChainValidationError, match=r"SyncStream.*sync generator"):
        build_graph([SyncStream], source="chain.py")


def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        for i in range(0, len(data), size):
            yield data[i:i + size]
    return gen()


def test_frames_are_truss_s_bytes_and_read_back_across_any_chunking():
    writer = chains.streaming.stream_writer(TYPES)
    frames = [writer.yield_header(Header(title="t")), writer.yield_item(Item(i=7)), writer.yield_item(Item(i=8)),
              writer.yield_footer(Footer(total=2))]
    # truss: struct.pack(">BI", delimiter, len(json)) + json; HEADER=2, ITEM=3, FOOTER=4.
    assert frames[1] == struct.pack(">BI", 3, 7) + b'{"i":7}'
    assert frames[0][:1] == b"\x02" and frames[3][:1] == b"\x04"
    data = b"".join(frames)

    async def read(size: int) -> tuple:
        reader = chains.streaming.stream_reader(TYPES, _chunks(data, size))
        header = await reader.read_header()
        items = [item async for item in reader.read_items()]
        return header, items, await reader.read_footer()

    for size in (1, 3, len(data)):
        assert asyncio.run(read(size)) == (Header(title="t"), [Item(i=7), Item(i=8)], Footer(total=2))


def test_misuse_is_named():
    writer = chains.streaming.stream_writer(chains.streaming.stream_types(Item))
    with pytest.raises(ValueError, match="no header type"):
        writer.yield_header(Header(title="x"))
    full = chains.streaming.stream_writer(TYPES)
    full.yield_item(Item(i=1))
    with pytest.raises(ValueError, match="Cannot yield header after other data"):
        full.yield_header(Header(title="x"))
    full.yield_footer(Footer(total=1))
    with pytest.raises(ValueError, match="Cannot yield item after sending footer"):
        full.yield_item(Item(i=2))
    with pytest.raises(TypeError, match="`header_type` must be a pydantic model class"):
        chains.streaming.stream_types(Item, header_type=dict)

    async def read_items_first() -> None:
        reader = chains.streaming.stream_reader(TYPES, _chunks(chains.streaming.stream_writer(TYPES).yield_header(
            Header(title="x")), 4))
        async for _ in reader.read_items():
            pass

    with pytest.raises(ValueError, match="Call `read_header` first"):
        asyncio.run(read_items_first())

    async def truncated() -> None:
        frame = chains.streaming.stream_writer(TYPES).yield_item(Item(i=1))
        async for _ in chains.streaming.stream_reader(TYPES, _chunks(frame[:-1], 2)).read_items():
            pass

    with pytest.raises(asyncio.IncompleteReadError):
        asyncio.run(truncated())

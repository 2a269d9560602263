"""The runner's WebSocket client against a stand-in server on loopback: refusals, fragments, pings, close."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
from collections.abc import Awaitable, Callable

import pytest

from kingpost_runner import ws_client

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[None]]


def frame(opcode: int, data: bytes, fin: bool = True) -> bytes:
    return bytes([(0x80 if fin else 0) | opcode, len(data)]) + data  # unmasked, short: the server's side


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readexactly(2)
    assert head[1] & 0x80, "client frames are masked"
    length = head[1] & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    mask = await reader.readexactly(4)
    data = await reader.readexactly(length)
    return head[0] & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


async def serve(script: Script) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        key = next(line.split(": ", 1)[1] for line in head.split("\r\n") if line.lower().startswith("sec-websocket-key"))
        accept = base64.b64encode(hashlib.sha1(key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        await script(reader, writer, accept)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def upgrade(accept: bytes) -> bytes:
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")


def test_a_refused_upgrade_names_the_status() -> None:
    async def script(reader, writer, accept):
        writer.write(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()

    async def go() -> None:
        server, port = await serve(script)
        async with server:
            with pytest.raises(ws_client.Refused, match="HTTP 405 Method Not Allowed") as refused:
                await ws_client.connect("127.0.0.1", port, "/predict", [], max_size=1 << 20)
            assert refused.value.status == 405

    asyncio.run(go())


def test_fragments_are_joined_pings_answered_and_the_close_code_read() -> None:
    seen: list[tuple[int, bytes]] = []
    done: list[asyncio.Event] = []

    async def script(reader, writer, accept):
        writer.write(upgrade(accept) + frame(ws_client.TEXT, b"hel", fin=False) + frame(ws_client.PING, b"p")
                     + frame(ws_client.CONTINUATION, b"lo"))
        await writer.drain()
        seen.append(await read_frame(reader))  # the pong
        seen.append(await read_frame(reader))  # the client's message
        writer.write(frame(ws_client.CLOSE, struct.pack("!H", 4000) + b"bye"))
        await writer.drain()
        seen.append(await read_frame(reader))  # the closing handshake's answer
        done[0].set()

    async def go() -> list[ws_client.Message]:
        done.append(asyncio.Event())
        server, port = await serve(script)
        async with server:
            conn = await ws_client.connect("127.0.0.1", port, "/predict", [("x-baseten-request-id", "r")],
                                           max_size=1 << 20)
            first = await conn.receive()
            await conn.send(ws_client.BINARY, b"x" * 300)
            closed = await conn.receive()
            await conn.close(closed.close_code)
            await asyncio.wait_for(done[0].wait(), 10)
            return [first, closed]

    first, closed = asyncio.run(go())
    assert (first.opcode, first.data) == (ws_client.TEXT, b"hello")
    assert (closed.opcode, closed.close_code, closed.data) == (ws_client.CLOSE, 4000, b"bye")
    assert seen == [(ws_client.PONG, b"p"), (ws_client.BINARY, b"x" * 300),
                    (ws_client.CLOSE, struct.pack("!H", 4000))]

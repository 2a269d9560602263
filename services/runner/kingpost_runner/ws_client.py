"""A small WebSocket client (RFC 6455) for the one server a runner fronts (a Truss's `docker_server`).

Standard library only, as http1.py, for the same reason: the runner imports only what
`kingpost.runner_packages` declares. It does the client's part and no more: the upgrade, masked
frames out, fragmented messages in, pings answered, the closing handshake. No extensions.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from dataclasses import dataclass

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
NO_STATUS = 1005


class Refused(Exception):
    """The server answered the upgrade with something other than 101."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason}".strip())
        self.status = status


@dataclass(frozen=True)
class Message:
    opcode: int  # TEXT, BINARY or CLOSE
    data: bytes
    close_code: int = NO_STATUS


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_size: int) -> None:
        self._reader = reader
        self._writer = writer
        self._max_size = max_size
        self._sending = asyncio.Lock()
        self._closed = False

    async def send(self, opcode: int, data: bytes) -> None:
        n = len(data)
        header = bytes([0x80 | opcode])
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        async with self._sending:
            self._writer.write(header + mask + _masked(data, mask))
            await self._writer.drain()

    async def close(self, code: int, reason: str = "") -> None:
        """Send a close frame (once) and end the connection."""
        if self._closed:
            return
        self._closed = True
        payload = b"" if code == NO_STATUS else struct.pack("!H", code) + reason.encode()[:123]
        try:
            await self.send(CLOSE, payload)
        except (OSError, RuntimeError):
            pass
        self._writer.close()

    async def receive(self) -> Message:
        """The next whole message; CLOSE (with the server's code) when it closes or the connection ends."""
        opcode, parts, size = None, [], 0
        while True:
            try:
                head = await self._reader.readexactly(2)
            except (asyncio.IncompleteReadError, OSError):
                return Message(CLOSE, b"", 1006)
            fin, op, length = head[0] & 0x80, head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self._reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self._reader.readexactly(8))
            mask = await self._reader.readexactly(4) if head[1] & 0x80 else b""
            size += length
            if size > self._max_size:
                await self.close(1009, "message too big")
                return Message(CLOSE, b"", 1009)
            data = await self._reader.readexactly(length)
            if mask:
                data = _masked(data, mask)
            if op == PING:
                await self.send(PONG, data)
                continue
            if op == PONG:
                continue
            if op == CLOSE:
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else NO_STATUS
                return Message(CLOSE, data[2:], code)
            if op != CONTINUATION:
                opcode = op
            parts.append(data)
            if fin:
                return Message(opcode or BINARY, b"".join(parts))


def _masked(data: bytes, mask: bytes) -> bytes:
    n = len(data)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ key).to_bytes(n, "big")


async def connect(host: str, port: int, path: str, headers: list[tuple[str, str]], *,
                  max_size: int) -> Connection:
    """Upgrade `path` on the server to a WebSocket; `Refused` with its status when it does not."""
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13", *(f"{k}: {v}" for k, v in headers)]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
        writer.close()
        raise Refused(0, "the server closed the connection instead of answering the upgrade") from e
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
    answered = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
    if status != 101 or answered.get("sec-websocket-accept") != accept:
        writer.close()
        raise Refused(status, parts[2] if len(parts) > 2 else "")
    return Connection(reader, writer, max_size)

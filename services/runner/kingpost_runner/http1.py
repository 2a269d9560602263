"""A small HTTP/1.1 client for the one server a runner fronts (a Truss's `docker_server`), on loopback.

Why not httpx: the runner lives in the model's own environment and imports only what
`kingpost.runner_packages` declares; and this path is the whole cost of `/sync` over calling the
server directly, so it does no more than the job: one request per connection at a time, idle
connections kept for the next request, bodies sent with Content-Length, answers read by
Content-Length, chunked or to the end of the connection, streamed as they arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

MAX_HEADER_LINE = 64 * 1024
MAX_HEADERS = 200
_NO_BODY_STATUS = frozenset({204, 304})


class BadResponse(Exception):
    """The server's answer is not HTTP/1.x."""


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]  # names lower-cased, in order, repeats kept
    body: AsyncIterator[bytes]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class Client:
    def __init__(self, host: str, port: int, *, keep_idle: int = 64) -> None:
        self.host = host
        self.port = port
        self._idle: list[_Connection] = []
        self._keep_idle = keep_idle
        self._authority = f"{host}:{port}".encode()

    async def _connect(self) -> tuple[_Connection, bool]:
        while self._idle:
            conn = self._idle.pop()
            if not conn.reader.at_eof() and not conn.writer.is_closing():
                return conn, True
            conn.close()
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=MAX_HEADER_LINE)
        return _Connection(reader, writer), False

    async def request(self, method: str, path: str, headers: Iterable[tuple[str, str]] = (),
                      body: bytes = b"") -> Response:
        """Send one request; the answer's body is read as the caller iterates it (the connection goes
        back to the pool when it has been read to its end). Raises OSError when the server cannot be
        reached, BadResponse for an answer that is not HTTP."""
        head = [f"{method} {path} HTTP/1.1\r\n".encode("latin-1"), b"host: " + self._authority + b"\r\n"]
        for name, value in headers:
            head.append(f"{name}: {value}\r\n".encode("latin-1"))
        if body or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            head.append(b"content-length: %d\r\n" % len(body))
        head.append(b"\r\n")
        data = b"".join(head) + body
        conn, reused = await self._connect()
        try:
            conn.writer.write(data)
            status_line = await conn.reader.readline()
            if not status_line and reused:  # the server closed an idle connection: once more, fresh
                conn.close()
                conn, _ = await self._connect_fresh()
                conn.writer.write(data)
                status_line = await conn.reader.readline()
            status, reason, response_headers = await _read_head(status_line, conn.reader)
        except BaseException:
            conn.close()
            raise
        return Response(status, reason, response_headers, self._body(conn, method, status, response_headers))

    async def _connect_fresh(self) -> tuple[_Connection, bool]:
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=MAX_HEADER_LINE)
        return _Connection(reader, writer), False

    async def _body(self, conn: _Connection, method: str, status: int,
                    headers: list[tuple[str, str]]) -> AsyncIterator[bytes]:
        reusable = False
        try:
            values = dict(headers)
            keep = "close" not in values.get("connection", "").lower()
            if method == "HEAD" or status in _NO_BODY_STATUS or 100 <= status < 200:
                reusable = keep
                return
            if "chunked" in values.get("transfer-encoding", "").lower():
                async for chunk in _chunked(conn.reader):
                    yield chunk
                reusable = keep
            elif (length := values.get("content-length")) is not None:
                left = int(length)
                while left > 0:
                    chunk = await conn.reader.read(min(left, 1 << 16))
                    if not chunk:
                        raise BadResponse(f"the server closed the connection {left} bytes before the body's end")
                    left -= len(chunk)
                    yield chunk
                reusable = keep
            else:
                while chunk := await conn.reader.read(1 << 16):
                    yield chunk
        finally:
            if reusable and len(self._idle) < self._keep_idle:
                self._idle.append(conn)
            else:
                conn.close()

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


async def _read_head(status_line: bytes, reader: asyncio.StreamReader) -> tuple[int, str, list[tuple[str, str]]]:
    if not status_line:
        raise BadResponse("the server closed the connection without answering")
    parts = status_line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise BadResponse(f"not an HTTP/1.x status line: {status_line[:100]!r}")
    headers = []
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n"):
            break
        if not line:
            raise BadResponse("the server closed the connection in the middle of its headers")
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise BadResponse(f"not a header line: {line[:100]!r}")
        headers.append((name.strip().lower(), value.strip()))
        if len(headers) > MAX_HEADERS:
            raise BadResponse(f"more than {MAX_HEADERS} headers")
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers


async def _chunked(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while True:
        line = await reader.readline()
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadResponse(f"bad chunk size line {line[:100]!r}") from None
        if size == 0:
            while (trailer := await reader.readline()) not in (b"\r\n", b"\n", b""):
                del trailer
            return
        data = await reader.readexactly(size)
        await reader.readline()
        yield data

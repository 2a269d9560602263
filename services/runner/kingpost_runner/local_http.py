"""A small HTTP/1.1 client for one server on this machine (the replica's tritonserver): kept-alive
connections, Content-Length or chunked bodies. The runner's environment holds no HTTP client
(kingpost.runner_packages), and this one needs nothing beyond asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


class LocalHttp:
    def __init__(self, host: str, port: int, *, idle_connections: int = 64) -> None:
        self._host = host
        self._port = port
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._max_idle = idle_connections

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None, timeout: float | None = None) -> Response:
        """One request; OSError (or asyncio.TimeoutError) when the server cannot be reached."""
        return await asyncio.wait_for(self._request(method, path, body, headers or {}), timeout)

    async def _request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Response:
        head = [f"{method} {path} HTTP/1.1", f"Host: {self._host}:{self._port}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        reused = bool(self._idle)
        reader, writer = self._idle.pop() if reused else await asyncio.open_connection(self._host, self._port)
        try:
            writer.write(data)
            response, keep = await _read_response(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            writer.close()
            if reused:  # the server closed an idle connection: once more on a new one
                return await self._request_fresh(method, path, body, headers)
            raise
        except BaseException:
            writer.close()
            raise
        if keep and len(self._idle) < self._max_idle:
            self._idle.append((reader, writer))
        else:
            writer.close()
        return response

    async def _request_fresh(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Response:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()
        return await self._request(method, path, body, headers)

    def close(self) -> None:
        for _, writer in self._idle:
            with contextlib.suppress(Exception):
                writer.close()
        self._idle.clear()


async def _read_response(reader: asyncio.StreamReader) -> tuple[Response, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ValueError(f"not an HTTP response: {lines[0]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(chunks)
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    keep = headers.get("connection", "").lower() != "close"
    return Response(status, headers, body), keep

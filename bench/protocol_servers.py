"""The no-op upstreams of bench/runner_protocols.py, one per protocol/server, each echoing the body
with its content type: `python bench/protocol_servers.py KIND PORT` (KIND below). Run with an
interpreter that has uvicorn, httptools, uvloop, granian and hypercorn (the bench makes that venv).
"""

from __future__ import annotations

import asyncio
import sys


async def app(scope, receive, send):  # a raw ASGI app: no framework
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"application/json")
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class EchoProtocol(asyncio.Protocol):
    """HTTP/1.1 on asyncio's Protocol with httptools' parser: the least a Python server can do."""

    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpRequestParser(self)
        self.body: list[bytes] = []
        self.content_type = b"application/json"

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.parser.feed_data(data)

    def on_header(self, name, value):
        if name.lower() == b"content-type":
            self.content_type = value

    def on_body(self, body):
        self.body.append(body)

    def on_message_complete(self):
        body = b"".join(self.body)
        self.body = []
        self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: " + self.content_type
                             + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def main(kind: str, port: int) -> None:
    if kind == "uvicorn":
        import uvicorn

        uvicorn.run(app, host="127.0.0.1", port=port, http="httptools", loop="uvloop", lifespan="off",
                    access_log=False, log_level="warning")
    elif kind in ("granian-h1", "granian-h2"):
        from granian import Granian
        from granian.constants import HTTPModes, Interfaces, Loops

        Granian("protocol_servers:app", address="127.0.0.1", port=port, interface=Interfaces.ASGI,
                workers=1, runtime_threads=1, loop=Loops.uvloop,
                http=HTTPModes.http1 if kind == "granian-h1" else HTTPModes.http2,
                log_enabled=False).serve()
    elif kind == "hypercorn-h2":
        from hypercorn.asyncio import serve
        from hypercorn.config import Config
        import uvloop

        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.accesslog = None
        uvloop.run(serve(app, config))
    elif kind == "protocol":
        import uvloop

        async def run() -> None:
            server = await asyncio.get_running_loop().create_server(EchoProtocol, "127.0.0.1", port)
            await server.serve_forever()

        uvloop.run(run())
    else:
        sys.exit(f"unknown kind {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

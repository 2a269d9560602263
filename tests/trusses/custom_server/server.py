"""A custom server for the tests: echoes requests, streams events, crashes or never gets ready on demand,
and echoes WebSocket messages at /predict (text "close" makes it close with 4000).

    python server.py --port N [--never-ready] [--exit-at-start]   (--listen N: the same as --port N)
"""

import argparse
import base64
import hashlib
import json
import os
import struct
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = argparse.Namespace()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet: the tests read the server's own prints
        pass

    def _json(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _any(self):
        body = self._body()
        path = self.path.split("?", 1)[0]
        if path == "/health":
            if ARGS.never_ready:
                print("server: not ready yet, still warming up", flush=True)
                return self._json(503, {"ready": False})
            return self._json(200, {"ready": True})
        if path == "/pid":
            return self._json(200, {"pid": os.getpid()})
        if path == "/crash":
            print("server: crashing on purpose", flush=True)
            os._exit(3)
        if path == "/predict" and self.headers.get("upgrade", "").lower() == "websocket":
            return self._websocket()
        if path == "/predict":
            return self._json(200, {"predict": json.loads(body or b"null")})
        if path == "/sse":
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for i in range(3):
                event = f"data: {i}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                self.wfile.flush()
                time.sleep(0.3)
            self.wfile.write(b"0\r\n\r\n")
            return None
        if path.startswith("/echo"):
            return self._json(201, {"method": self.command, "path": self.path, "body": body.decode(),
                                    "headers": {k.lower(): v for k, v in self.headers.items()}},
                              headers=[("x-server", "custom"), ("set-cookie", "a=1"), ("set-cookie", "b=2")])
        return self._json(404, {"detail": f"no route {self.command} {path}"})

    def _websocket(self):
        key = self.headers["sec-websocket-key"].encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
        self.send_response(101)
        self.send_header("upgrade", "websocket")
        self.send_header("connection", "Upgrade")
        self.send_header("sec-websocket-accept", base64.b64encode(hashlib.sha1(key).digest()).decode())
        self.end_headers()
        self.wfile.flush()
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self.rfile.read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self.rfile.read(8))
            mask = self.rfile.read(4)
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            if opcode == 0x8:  # the client's close: answered, done
                self._frame(0x8, data[:2])
                return
            if opcode == 0x1 and data == b"close":
                self._frame(0x8, struct.pack("!H", 4000) + b"server closing")
                return
            self._frame(opcode, data)

    def _frame(self, opcode, data):
        n = len(data)
        head = bytes([0x80 | opcode]) + (bytes([n]) if n < 126 else bytes([126]) + struct.pack("!H", n)
                                         if n < 1 << 16 else bytes([127]) + struct.pack("!Q", n))
        self.wfile.write(head + data)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", "--listen", type=int, required=True)
    parser.add_argument("--never-ready", action="store_true")
    parser.add_argument("--exit-at-start", action="store_true")
    parser.parse_args(namespace=ARGS)
    if ARGS.exit_at_start:
        print("server: cannot open the weights file /models/missing.bin", flush=True)
        sys.exit(7)
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    print(f"server: listening on {ARGS.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

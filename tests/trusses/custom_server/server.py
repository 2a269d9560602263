"""A custom server for the tests: echoes requests, streams events, crashes or never gets ready on demand.

    python server.py --port N [--never-ready] [--exit-at-start]   (--listen N: the same as --port N)
"""

import argparse
import json
import os
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

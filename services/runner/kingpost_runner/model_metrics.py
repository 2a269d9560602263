"""A model's own Prometheus metrics (Truss's: counters a model.py declares with `prometheus_client`),
for the worker agent to scrape.

The runner imports no prometheus_client itself: when the model has imported it by the end of load(),
the process's default registry is served at `http://127.0.0.1:PORT/metrics` (a free port, a daemon
thread) and PORT is written to `PORT_FILE` in the replica's working area (TMPDIR, set by the agent),
where the agent finds it (kingpost_worker_agent.replica_metrics) and serves the samples in its own
/metrics labelled with the replica's model, deployment and replica.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

log = logging.getLogger(__name__)
PORT_FILE = "kingpost-model-metrics-port"  # the agent's name for it too


def serve(environ: Mapping[str, str]) -> int | None:
    """The port serving the model's metrics, or None when the model uses no prometheus_client or
    there is no working area to announce it in."""
    area = environ.get("TMPDIR")
    client = sys.modules.get("prometheus_client")
    if not area or client is None:
        return None
    generate, registry = client.generate_latest, client.REGISTRY

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = generate(registry) if self.path.split("?")[0] == "/metrics" else b""
            self.send_response(200 if body else 404)
            self.send_header("content-type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="model-metrics", daemon=True).start()
    port = server.server_address[1]
    Path(area, PORT_FILE).write_text(str(port))
    log.info("the model's prometheus_client metrics: http://127.0.0.1:%d/metrics", port)
    return port

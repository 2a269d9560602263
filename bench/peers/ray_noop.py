"""Ray Serve's no-op model for bench/router_throughput.py --peers ray (run with a Python that has ray[serve]).

    python bench/peers/ray_noop.py PORT ROUTE

Starts a local Ray (2 CPUs, no dashboard), Serve's HTTP proxy on 127.0.0.1:PORT and one replica of a
deployment that echoes the request body, at ROUTE. Prints "ready" once it answers, then serves until its
stdin closes (or SIGTERM), and shuts Serve and Ray down.

max_ongoing_requests is raised from Serve's default (5) so that, like kingpost's router in the bench
(predict_concurrency 0), the deployment has no concurrency limit of its own.
"""

from __future__ import annotations

import signal
import sys

import ray
from ray import serve
from starlette.requests import Request
from starlette.responses import Response


@serve.deployment(num_replicas=1, max_ongoing_requests=1000)
class Noop:
    async def __call__(self, request: Request) -> Response:
        body = await request.body()
        return Response(body, media_type=request.headers.get("content-type", "application/json"))


def main() -> None:
    port, route = int(sys.argv[1]), sys.argv[2]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so that `finally` shuts Ray down
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2**20)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(Noop.bind(), name="noop", route_prefix=route, blocking=False)
        print("ready", flush=True)
        for _ in sys.stdin:  # until the bench closes our stdin
            pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the shutdown finish
        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main()

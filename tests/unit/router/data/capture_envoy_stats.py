"""Writes envoy-1.40-during.prom and envoy-1.40-after.prom beside this file: what the router's poller
reads from a real Envoy (`.venv/bin/envoy`, kingpost's bootstrap; tests/fixtures/envoy_direct.py),
during and after this traffic:

    dep_a (a stand-in model server): 5 × 200, 2 × 500, 1 × 418, 1 timeout (504), then one request
          held at the replica, one queued behind it, one refused (queue full: 503); then all answered
    dep_gone (nothing listening): 1 × 503
    the scheduler cluster (not a deployment; nothing listening): 1 × 503

    .venv/bin/python tests/unit/router/data/capture_envoy_stats.py
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[3]))

from kingpost_router.envoy_stats import STATS_FILTER, STATS_PATH  # noqa: E402
from tests.fixtures.envoy_direct import ModelServer, direct_bootstrap  # noqa: E402
from tests.fixtures.servers import free_port, running_envoy  # noqa: E402


async def stat(admin: httpx.AsyncClient, name: str) -> int:
    reply = await admin.get("/stats", params={"filter": f"^{name}$"})
    return int(reply.text.rsplit(": ", 1)[1])


async def capture(admin_port: int, port: int, rest_port: int, model: ModelServer) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{admin_port}") as admin:
        read = {"params": {"usedonly": "", "filter": STATS_FILTER}}
        statuses = [(await http.post(f"/d/dep_a/{path}", content=b"x")).status_code
                    for path in ["ok"] * 5 + ["fail"] * 2 + ["teapot"]]
        statuses.append((await http.post("/t/dep_a/hold", content=b"x")).status_code)
        statuses.append((await http.post("/d/dep_gone/ok", content=b"x")).status_code)
        statuses.append((await http.get(f"http://127.0.0.1:{rest_port}/v1/models")).status_code)
        model.release.set()  # the timed-out request's handler
        await asyncio.sleep(0.2)
        model.release.clear()
        held = asyncio.create_task(http.post("/d/dep_a/hold", content=b"x"))
        while model.held != 1:
            await asyncio.sleep(0.01)
        queued = asyncio.create_task(http.post("/d/dep_a/ok", content=b"x"))
        while await stat(admin, "cluster.dep_a.upstream_rq_pending_active") != 1:
            await asyncio.sleep(0.01)
        statuses.append((await http.post("/d/dep_a/ok", content=b"x")).status_code)
        (HERE / "envoy-1.40-during.prom").write_text((await admin.get(STATS_PATH, **read)).text)
        model.release.set()
        statuses += [(await held).status_code, (await queued).status_code]
        (HERE / "envoy-1.40-after.prom").write_text((await admin.get(STATS_PATH, **read)).text)
        print("statuses:", statuses)


async def main() -> None:
    model = ModelServer()
    model_port, admin_port, port, rest_port = free_port(), free_port(), free_port(), free_port()
    await model.start(model_port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "envoy.json"
            config.write_text(json.dumps(direct_bootstrap(
                admin_port=admin_port, listen_port=port, rest_port=rest_port,
                upstreams={"dep_a": model_port, "dep_gone": free_port()})))
            with running_envoy(config, admin_port):
                await capture(admin_port, port, rest_port, model)
    finally:
        await model.stop()


if __name__ == "__main__":
    asyncio.run(main())

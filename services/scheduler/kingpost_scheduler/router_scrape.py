"""The routers' /metrics, scraped every few seconds into a History (deployment_stats.py), so that
`GET /v1/models/{id}/deployments/{id}/metrics` answers a window without a Prometheus. The routers are
the scheduler's `metrics_targets` entries named `router`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from kingpost_scheduler import deployment_stats, metrics_targets

log = logging.getLogger(__name__)

LONGEST_WINDOW_SECONDS = 3600


class RouterMetrics:
    def __init__(self, targets: Sequence[str], *, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.urls = [f"http://{target}{path or '/metrics'}"
                     for service, target, path in map(metrics_targets.parse, targets) if service == "router"]
        self.interval = interval
        self._clock = clock
        self.history = deployment_stats.History(keep=LONGEST_WINDOW_SECONDS + 2 * interval)
        self._client = httpx.AsyncClient(timeout=5.0)

    async def scrape(self) -> None:
        texts = await asyncio.gather(*(self._get(url) for url in self.urls))
        self.history.add(self._clock(), deployment_stats.per_deployment(_samples(t for t in texts if t)))

    async def window(self, deployment_id: str, seconds: float) -> deployment_stats.WindowStats:
        await self.scrape()  # the window ends now
        latest = self.history.latest()
        assert latest is not None
        return deployment_stats.window_stats(self.history.before(latest.at - seconds), latest, deployment_id)

    async def run(self) -> None:
        while True:
            try:
                await self.scrape()
            except Exception:  # a router's text that does not parse: the next scrape may
                log.exception("scraping the routers' metrics")
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        await self._client.aclose()

    async def _get(self, url: str) -> str:
        try:
            response = await self._client.get(url)
            response.raise_for_status()
            return response.text
        except httpx.HTTPError as e:  # a router that is down counts nothing this time
            log.warning("scraping %s: %s", url, e)
            return ""


def _samples(texts: Any) -> Iterator[tuple[str, dict[str, str], float]]:
    for text in texts:
        for family in text_string_to_metric_families(text):
            if family.name in ("kingpost_router_requests", "kingpost_router_request_seconds"):
                for s in family.samples:
                    yield s.name, s.labels, s.value

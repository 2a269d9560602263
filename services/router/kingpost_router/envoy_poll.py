"""Reads Envoy's admin stats every second (the router's `envoy_admin_address`; off when unset), for
the requests Envoy sends straight to replicas, which the router never sees (envoy_stats.py):

- a concurrency sample per read, published as the router's own are, under the source
  `envoy@<admin address>` (sampling.envoy_sample): the autoscaler adds it to the routers' samples;
- the router's /metrics: Envoy's answers, latency and in-flight per deployment, added into the
  router's own series at scrape time (metrics.RequestStats.direct).

A read is one GET (only the stats read, only those ever used); when its text is the same as the last
one's, Envoy's uptime aside, nothing is parsed again. Envoy unreachable: a warning once, no sample (the autoscaler
counts a silent source as zero), and the counters keep their last values.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Mapping

import aiohttp

from kingpost.bus import Publisher
from kingpost.bus.subjects import concurrency_subject
from kingpost_router import envoy_stats, metrics, sampling
from kingpost_router.envoy_stats import EnvoyTotals, Figures, Histogram
from kingpost_router.routes import RouteSnapshot

log = logging.getLogger(__name__)


class EnvoyPoller:
    def __init__(self, admin_address: str, snapshot: Callable[[], RouteSnapshot], *,
                 bounds: tuple[float, ...] = metrics.LATENCY_BUCKETS) -> None:
        self.admin_address = admin_address
        self.source = sampling.envoy_source(admin_address)
        self._url = f"http://{admin_address}{envoy_stats.STATS_PATH}"
        self._params = {"usedonly": "", "filter": envoy_stats.STATS_FILTER}
        self._snapshot = snapshot
        self.totals = EnvoyTotals(bounds)
        self._text: str | None = None
        self._now: Mapping[str, Figures] = {}  # the last read's clusters; empty while Envoy is unreachable
        self.reads = 0
        self._failing = False

    async def read(self, session: aiohttp.ClientSession) -> bool:
        """One read of Envoy's stats; False (and nothing changed) when Envoy did not answer."""
        try:
            async with session.get(self._url, params=self._params) as reply:
                reply.raise_for_status()
                text = await reply.text()
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:  # ValueError: not text
            if not self._failing:
                log.warning("cannot read Envoy's stats at %s (trying every second): %s", self._url, e)
            self._failing = True
            self._text = None
            self._now = {}
            self.reads += 1
            return False
        stats, uptime = envoy_stats.without_uptime(text)
        if stats != self._text or not self.totals.unchanged(uptime):
            try:
                read = envoy_stats.parse(text)
            except ValueError as e:  # not Envoy's stats (another server at that address?)
                if not self._failing:
                    log.warning("%s (trying every second): %s", self._url, e)
                self._failing = True
                self._text = None
                self._now = {}
                return False
            self.totals.update(read)
            self.totals.retain(self._snapshot().by_deployment)
            self._now = read.clusters
            self._text = stats
        if self._failing or self.reads == 0:
            log.info("reading Envoy's stats at %s", self._url)
            self._failing = False
        self.reads += 1
        return True

    def at_envoy(self) -> dict[str, tuple[int, int]]:
        """Requests at a replica and queued in Envoy now, per deployment id of the table."""
        deployments = self._snapshot().by_deployment
        return {name: (f.active, f.pending) for name, f in self._now.items() if name in deployments}

    def queued(self) -> int:
        return sum(queued for _, queued in self.at_envoy().values())

    def direct(self) -> Iterator[tuple[metrics.SeriesKey, dict[str, int], Histogram | None]]:
        """Envoy's answers and latency per series of the router's metrics (deployments of the table)."""
        snapshot = self._snapshot()
        for name in sorted(self.totals.names()):
            deployment = snapshot.by_deployment.get(name)
            figures = self.totals.get(name)
            if deployment is None or figures is None:
                continue
            key = (deployment.model_id, deployment.model_name, name, envoy_stats.environment_of(snapshot, name))
            yield key, figures.wire_codes(), figures.latency

    def direct_in_flight(self) -> dict[str, int]:
        return {name: in_flight for name, (in_flight, _) in self.at_envoy().items()}

    def serve_metrics(self, stats: metrics.RequestStats, router_queued: Callable[[], int]) -> None:
        """Add Envoy's figures to the router's /metrics."""
        stats.direct = self.direct
        stats.direct_in_flight = self.direct_in_flight
        metrics.QUEUED.set_function(lambda: router_queued() + self.queued())

    async def run(self, bus: Publisher | None, router_id: str, *, interval: float = 1.0,
                  clock: Callable[[], float] = time.time) -> None:
        """Read every `interval` seconds and publish Envoy's concurrency sample, until cancelled."""
        subject = concurrency_subject(router_id)
        timeout = aiohttp.ClientTimeout(total=max(0.5, interval))
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                if await self.read(session) and bus is not None:
                    sample = sampling.envoy_sample(self.source, self._snapshot().deployments(), self.at_envoy(), clock())
                    try:
                        await bus.publish_fast(subject, sample)
                    except Exception as e:  # a lost sample is superseded by the next one
                        log.warning("cannot publish Envoy's concurrency sample: %s", e)
                await asyncio.sleep(interval)

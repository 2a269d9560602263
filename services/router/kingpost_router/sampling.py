"""Concurrency samples for the autoscaler: how many requests each deployment has in flight and
waiting, at an instant, published once a second on `kp.metrics.concurrency.<router_id>`.

An instant is enough: sampled every second at no particular phase, its average over the
autoscaler's window is the time-averaged concurrency (a 100 ms request arriving every 200 ms is
seen in half the samples: 0.5). Idle deployments are reported as zeros, so the autoscaler sees
idleness too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping

from google.protobuf.timestamp_pb2 import Timestamp

from kingpost.bus import Publisher
from kingpost.bus.subjects import concurrency_subject
from kingpost.v1 import events_pb2
from kingpost_router.routes import Deployment

log = logging.getLogger(__name__)


def concurrency_sample(router_id: str, deployments: Iterable[Deployment], in_flight: Mapping[str, int],
                       queued: Callable[[str], int], now: float) -> events_pb2.ConcurrencySample:
    """Every active deployment of the route table, zeros included, and any other deployment
    that still has requests in flight (one removed from the table while they run)."""
    sample = events_pb2.ConcurrencySample(router_id=router_id)
    sample.at.CopyFrom(timestamp(now))
    seen = set()
    for deployment in deployments:
        if deployment.active:
            did = deployment.deployment_id
            seen.add(did)
            sample.deployments.add(deployment_id=did, in_flight=in_flight.get(did, 0), queued=queued(did))
    for did, count in in_flight.items():
        if did not in seen and count:
            sample.deployments.add(deployment_id=did, in_flight=count)
    return sample


# The source of async backlog samples. Every router reports the same shared queues under this one
# name, and the autoscaler keeps one value per source and second, so N routers do not count a
# backlog N times.
ASYNC_BACKLOG_SOURCE = "async-backlog"


def backlog_sample(backlogs: Mapping[str, int], now: float) -> events_pb2.ConcurrencySample:
    """Async requests waiting in each deployment's queue, as queued concurrency (zeros included,
    so that a drained backlog stops counting)."""
    sample = events_pb2.ConcurrencySample(router_id=ASYNC_BACKLOG_SOURCE)
    sample.at.CopyFrom(timestamp(now))
    for did, waiting in sorted(backlogs.items()):
        sample.deployments.add(deployment_id=did, queued=waiting)
    return sample


def envoy_source(admin_address: str) -> str:
    """The source Envoy's samples are published under (envoy_poll.py): one per Envoy, not per router,
    so that routers reading the same Envoy do not count its requests twice (the autoscaler keeps one
    value per source and second, and adds the sources up)."""
    return f"envoy@{admin_address}"


def envoy_sample(source: str, deployments: Iterable[Deployment], at_envoy: Mapping[str, tuple[int, int]],
                 now: float) -> events_pb2.ConcurrencySample:
    """The requests Envoy holds for each active deployment of the table (its cluster's requests at a
    replica, and queued), zeros included: the ones the router's own sample does not see."""
    sample = events_pb2.ConcurrencySample(router_id=source)
    sample.at.CopyFrom(timestamp(now))
    for deployment in deployments:
        if deployment.active:
            in_flight, queued = at_envoy.get(deployment.deployment_id, (0, 0))
            sample.deployments.add(deployment_id=deployment.deployment_id, in_flight=in_flight, queued=queued)
    return sample


async def publish_samples(bus: Publisher, router_id: str,
                          take: Callable[[float], events_pb2.ConcurrencySample], *, interval: float = 1.0,
                          clock: Callable[[], float] = time.time) -> None:
    """Publish `take(now)` every `interval` seconds, until cancelled."""
    subject = concurrency_subject(router_id)
    while True:
        try:
            await bus.publish_fast(subject, take(clock()))
        except Exception as e:  # a lost sample is superseded by the next one
            log.warning("cannot publish a concurrency sample: %s", e)
        await asyncio.sleep(interval)


def timestamp(now: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(now * 1e9))
    return ts

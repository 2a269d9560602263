"""Async inference wired together for one router: the status bucket, the queue's front, the workers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from opentelemetry.trace import Tracer

from kingpost.bus import Bus
from kingpost.bus.subjects import ASYNC_STATUS_BUCKET
from kingpost_router import metrics
from kingpost_router.async_job import JobRunner
from kingpost_router.async_policy import WEBHOOK_DELAYS
from kingpost_router.async_queue import AsyncQueue
from kingpost_router.async_worker import AsyncWorkers
from kingpost_router.service import RouterServicer
from kingpost_router.settings import RouterSettings
from kingpost_router.webhooks import WebhookSender


@dataclass
class AsyncInference:
    queue: AsyncQueue
    workers: AsyncWorkers
    webhooks: WebhookSender
    backlog: asyncio.Task[None]

    async def close(self) -> None:
        self.backlog.cancel()
        await asyncio.gather(self.backlog, return_exceptions=True)
        await self.workers.close()
        await self.webhooks.close()


async def start_async(settings: RouterSettings, bus: Bus, router: RouterServicer, *, tracer: Tracer | None = None,
                      clock: Callable[[], float] = time.time,
                      webhook_delays: Sequence[float] = WEBHOOK_DELAYS,
                      backlog_interval: float = 1.0) -> AsyncInference:
    kv = await bus.key_value(ASYNC_STATUS_BUCKET)
    # The scheduler's (`kingpost webhook-secrets`, in the route table), then the router's own config.
    webhooks = WebhookSender(lambda: (*router.snapshot.webhook_secrets, *settings.webhook_secrets),
                             delays=webhook_delays, allow_internal=settings.allow_internal_webhooks)
    runner = JobRunner(kv, router, webhooks, clock=clock, request_timeout=settings.request_timeout_seconds,
                       max_stored_result_bytes=settings.async_max_stored_result_bytes, tracer=tracer)
    workers = AsyncWorkers(bus, runner, lambda: router.snapshot,
                           cap=settings.async_max_concurrency_per_deployment,
                           ack_wait=settings.async_ack_wait_seconds)
    queue = AsyncQueue(bus, kv, workers.counts, clock=clock,
                       allow_internal_webhooks=settings.allow_internal_webhooks,
                       max_body_bytes=settings.async_max_body_bytes,
                       max_outstanding=settings.async_max_outstanding_per_deployment,
                       tracer=tracer, trace_root_ratio=settings.trace_root_ratio)
    router.async_queue = queue
    metrics.ASYNC.queues = workers.last_counts
    workers.apply(router.snapshot)
    backlog = asyncio.create_task(workers.publish_backlog(bus, settings.router_id, interval=backlog_interval))
    return AsyncInference(queue, workers, webhooks, backlog)

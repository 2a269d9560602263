"""One async request, from the queue to its terminal status: expiry, the model call, the webhook.

    runner = JobRunner(kv, model, webhooks, clock=time.time, ...)
    await runner.run(job, model_call_done)    # settles the job (ack or nak) before it returns

The order makes "nothing lost" hold across a crash at any point: the status record is written
before the job is acked, and the job is acked only once the request is terminal and its webhook
delivered (or given up), so a router killed mid-way leaves an unacked job that JetStream hands out
again. A redelivered job whose record is already terminal, webhook done, is only acked. The model
may therefore see a request twice (at-least-once, with the same `x-baseten-request-id`), never zero
times; a CANCELED or EXPIRED one never.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from opentelemetry.trace import Tracer

from google.api import httpbody_pb2
from google.protobuf import json_format

from kingpost.bus import Job, KeyValue, RevisionMismatch
from kingpost.errors import DeadlineExceeded, KingpostError, TooManyRequests, Unavailable
from kingpost.grpc_status import from_rpc_error
from kingpost.v1 import inference_pb2
from kingpost_router import async_policy as policy
from kingpost_router import metrics, tracing
from kingpost_router.async_queue import Status, read_record, result_value
from kingpost_router.forwarding import Passthrough
from kingpost_router.routes import Deployment, Replica, RouteSnapshot
from kingpost_router.webhooks import WebhookSender

log = logging.getLogger(__name__)
NOT_READY_RETRY_SECONDS = 1.0


class Model(Protocol):
    """The router's sync path (RouterServicer)."""

    @property
    def snapshot(self) -> RouteSnapshot: ...

    async def acquire(self, deployment: Deployment, timeout: float) -> Replica: ...

    def release_slot(self, deployment_id: str, replica_id: str) -> None: ...

    async def call_model(self, deployment: Deployment, replica: Replica, body: httpbody_pb2.HttpBody,
                         metadata: list[tuple[str, str]], timeout: float,
                         trace: tracing.RequestTrace | None = None) -> bytes: ...


class JobRunner:
    def __init__(self, kv: KeyValue, model: Model, webhooks: WebhookSender, *, clock: Callable[[], float],
                 request_timeout: float, max_stored_result_bytes: int, tracer: Tracer | None = None) -> None:
        self._tracer = tracer  # None: no spans; else a job queued by a traced request gets its own
        self._kv = kv
        self._model = model
        self._webhooks = webhooks
        self._clock = clock
        self._timeout = request_timeout
        self._max_stored = max_stored_result_bytes

    async def run(self, job: Job[inference_pb2.AsyncJob], model_call_done: Callable[[], Awaitable[None]]) -> None:
        released = False

        async def release() -> None:
            nonlocal released
            if not released:
                released = True
                await model_call_done()

        msg = job.message
        trace = tracing.JobTrace(self._tracer, msg.traceparent, msg.request_id, msg.deployment_id)
        status = ""
        try:
            status = await self._run(job, release, trace)
        finally:
            await release()
            trace.end(status)
        if status:
            metrics.ASYNC.settled(msg.deployment_id, status)

    async def _run(self, job: Job[inference_pb2.AsyncJob], release: Callable[[], Awaitable[None]],
                   trace: tracing.JobTrace) -> str:
        """The status it left the request in ("" when it only put the job back or acked it)."""
        msg = job.message
        entry = await self._kv.get(msg.request_id)
        if entry is None:  # its record outlived its retention: nothing left to answer to
            await job.ack()
            return ""
        record, revision = read_record(entry.value), entry.revision
        if _settled(record):
            await job.ack()
            return ""
        if record.status == policy.EXPIRED or (
                record.status == policy.QUEUED
                and policy.expired(msg.created_at, msg.max_time_in_queue_seconds, self._clock())):
            return await self._finish(job, record, revision, policy.EXPIRED, None, [{
                "code": policy.REQUEST_EXPIRED,
                "message": f"not started within max_time_in_queue_seconds "
                           f"({msg.max_time_in_queue_seconds:g} s)"}], release, trace)
        deployment = self._model.snapshot.by_deployment.get(msg.deployment_id)
        if deployment is None or not deployment.active:
            return await self._finish(job, record, revision, policy.FAILED, None, [{
                "code": policy.MODEL_DOES_NOT_EXIST,
                "message": f"deployment '{msg.deployment_id}' is deleted or inactive"}], release, trace)
        # A QUEUED one waits for a replica no longer than it may stay queued; one that was started
        # before a crash has no such bound left.
        wait = (msg.created_at + msg.max_time_in_queue_seconds - self._clock()
                if record.status == policy.QUEUED else self._timeout)
        try:
            replica = await self._model.acquire(deployment, max(0.001, min(self._timeout, wait)))
        except (Unavailable, TooManyRequests, DeadlineExceeded) as e:
            # Not started, so still QUEUED: back in the queue until a replica is ready or it expires.
            log.info("async request %s waits: %s", msg.request_id, e)
            await release()
            await job.nak(NOT_READY_RETRY_SECONDS)
            return ""
        if record.status == policy.QUEUED:
            record.status, record.status_at = policy.IN_PROGRESS, policy.iso(self._clock())
            try:
                revision = await self._kv.update(msg.request_id, record.SerializeToString(), revision)
            except BaseException as e:
                # Not started after all: the slot goes back unused, whatever stopped it (a slot
                # kept here would be lost to every later request on that replica).
                self._model.release_slot(deployment.deployment_id, replica.replica_id)
                if not isinstance(e, RevisionMismatch):
                    raise  # NATS away: unacked, so the job is handed out again
                await release()  # canceled a moment ago
                await job.nak(0)  # read again: it is settled on the next delivery
                return ""
        queued = self._clock() - msg.created_at
        metrics.ASYNC.started(msg.deployment_id, queued)
        data, errors = await self._call(msg, deployment, replica, trace.get(queued_seconds=queued))
        await release()
        status = policy.FAILED if errors else policy.SUCCEEDED
        return await self._finish(job, record, revision, status, data, errors, release, trace)

    async def _call(self, msg: inference_pb2.AsyncJob, deployment: Deployment, replica: Replica | None,
                    trace: tracing.RequestTrace | None) -> tuple[object, list[dict[str, str]]]:
        body = httpbody_pb2.HttpBody(content_type="application/json", data=msg.model_input)
        metadata = [("x-baseten-request-id", msg.request_id), ("content-type", "application/json")]
        attempts = max(1, msg.max_attempts)
        errors: list[dict[str, str]] = []
        for attempt in range(1, attempts + 1):
            try:
                if replica is None:
                    replica = await self._model.acquire(deployment, self._timeout)
                output = await self._model.call_model(deployment, replica, body, metadata, self._timeout, trace)
                return result_value(output), []
            except Passthrough as p:
                err = from_rpc_error(p.error)
                code, message = policy.error_code(err.http_status), err.message
            except KingpostError as e:
                code, message = policy.error_code(e.http_status), e.message
            finally:
                replica = None
            errors = [{"code": code, "message": message}]
            if attempt == attempts or not policy.retryable(code):
                break
            await asyncio.sleep(policy.backoff(attempt, initial=msg.initial_delay_seconds,
                                               most=msg.max_delay_seconds))
        return None, errors

    async def _finish(self, job: Job[inference_pb2.AsyncJob], record: Status, revision: int, status: str,
                      data: object, errors: list[dict[str, str]],
                      release: Callable[[], Awaitable[None]], trace: tracing.JobTrace) -> str:
        """Write the terminal status, deliver the webhook, write its outcome, then ack."""
        await release()
        msg = job.message
        now = self._clock()
        record.status, record.status_at = status, policy.iso(now)
        del record.errors[:]
        record.errors.extend(inference_pb2.AsyncError(**e) for e in errors)
        if msg.store_result and data is not None:
            stored = Status()
            json_format.ParseDict(data, stored.result)
            if stored.ByteSize() <= self._max_stored:
                record.result.CopyFrom(stored.result)
        body = b""
        tried: tuple[int, str] | None = None
        webhook_span = None
        if msg.webhook_endpoint:
            body = policy.webhook_body(request_id=msg.request_id, model_id=msg.model_id,
                                       deployment_id=msg.deployment_id, now=now, data=data, errors=errors)
            if status != policy.EXPIRED:
                webhook_span = trace.webhook(msg.webhook_endpoint)
                # The model's answer is this worker's alone to record (the request is IN_PROGRESS),
                # so the webhook's first try goes before the one write that records both; an
                # expiry must win its compare-and-set against a cancel before anything is sent.
                tried = await self._webhooks.send(msg.webhook_endpoint, body)
                if policy.webhook_delivered(tried[0]):
                    record.webhook_status = policy.SUCCEEDED
                    tracing.finish_webhook(webhook_span, True, "")
                    metrics.ASYNC.webhook(msg.deployment_id, True)
        # The compare-and-set decides a race with a cancel (QUEUED → EXPIRED) or another worker.
        try:
            revision = await self._kv.update(msg.request_id, record.SerializeToString(), revision)
        except RevisionMismatch:
            await job.nak(0)
            tracing.finish_webhook(webhook_span if tried and record.webhook_status == policy.PENDING else None,
                                   False, "the request was settled elsewhere")
            return ""
        if record.webhook_status == policy.PENDING:
            if webhook_span is None:
                webhook_span = trace.webhook(msg.webhook_endpoint)
            delivered, why = await self._webhooks.deliver(msg.webhook_endpoint, body, tried=tried)
            tracing.finish_webhook(webhook_span, delivered, why)
            metrics.ASYNC.webhook(msg.deployment_id, delivered)
            record.status_at = policy.iso(self._clock())
            if delivered:
                record.webhook_status = policy.SUCCEEDED
            else:
                record.webhook_status = policy.FAILED
                record.status = policy.WEBHOOK_FAILED
                record.errors.append(inference_pb2.AsyncError(
                    code=policy.INTERNAL_SERVER_ERROR, message=f"webhook not delivered: {why}"))
            await self._kv.put(msg.request_id, record.SerializeToString())
        await job.ack()
        return record.status


def _settled(record: Status) -> bool:
    """Terminal, and nothing left to send."""
    if record.status in (policy.CANCELED, policy.WEBHOOK_FAILED):
        return True
    return record.status in policy.TERMINAL and record.webhook_status != policy.PENDING

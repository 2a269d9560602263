"""The async API's front: queue a request, read its status, cancel it, count a deployment's queue.

    queue = AsyncQueue(bus, kv, workers, allow_internal_webhooks=False)
    request_id = await queue.enqueue(deployment, body)   # once JetStream has stored it
    await queue.status(request_id)                       # GetAsyncRequestResponse
    await queue.cancel(request_id)                       # CancelAsyncRequestResponse

A request is two things in NATS: its status record in the KP_ASYNC_STATUS bucket (written first,
QUEUED) and its job in the KP_ASYNC work queue on kp.async.<deployment>.<priority>. The answer
goes out only after both are stored, so a request id a client holds is never lost. Cancel moves a
QUEUED record to CANCELED with a compare-and-set on its revision, the same one a worker uses to
move it to IN_PROGRESS, so exactly one of them wins.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence

from opentelemetry.trace import Tracer

from kingpost.bus import Bus, KeyValue, RevisionMismatch
from kingpost.bus.interface import KeyExists
from kingpost.bus.subjects import async_request_subject
from kingpost.errors import KingpostError, NotFound, TooManyRequests
from kingpost.v1 import inference_pb2
from kingpost_router import async_policy, tracing
from kingpost_router.async_input import parse_async_body
from kingpost_router.routes import Deployment

Status = inference_pb2.GetAsyncRequestResponse
COUNTS_MAX_AGE_SECONDS = 1.0


def read_record(value: bytes) -> Status:
    record = Status()
    record.ParseFromString(value)
    return record


class AsyncQueue:
    def __init__(self, bus: Bus, kv: KeyValue, counts: Callable[[str], object], *, clock: Callable[[], float],
                 allow_internal_webhooks: bool = False, max_body_bytes: int, max_outstanding: int,
                 tracer: Tracer | None = None, trace_root_ratio: float = 1.0) -> None:
        self._tracer = tracer  # None: no spans
        self._trace_root_ratio = trace_root_ratio
        self._bus = bus
        self._kv = kv
        self._counts = counts  # deployment id → awaitable (queued, in progress)
        self._clock = clock
        self._allow_internal = allow_internal_webhooks
        self._max_body = max_body_bytes
        self._max_outstanding = max_outstanding
        self._counted: dict[str, tuple[float, tuple[int, int]]] = {}

    async def _recent_counts(self, deployment_id: str) -> tuple[int, int]:
        """Counts at most a second old: counting asks NATS three times, enqueueing must not."""
        now = self._clock()
        at, counts = self._counted.get(deployment_id, (float("-inf"), (0, 0)))
        if now - at > COUNTS_MAX_AGE_SECONDS:
            counts = await self._counts(deployment_id)  # type: ignore[misc]
            self._counted[deployment_id] = (now, counts)
        return counts

    async def enqueue(self, deployment: Deployment, body: bytes, metadata: Sequence[tuple[str, str]] = ()) -> str:
        """The new request's id. Traced as the router traces a Predict (its caller's traceparent,
        or the root ratio): an AsyncPredict span, whose traceparent the job keeps for its worker."""
        request_id = uuid.uuid4().hex
        trace = None
        if self._tracer is not None:
            trace = tracing.start_request(
                self._tracer, [*((k, v) for k, v in metadata if k in ("traceparent", "tracestate")),
                               (tracing.REQUEST_ID_KEY, request_id)],
                deployment.model_id, root_ratio=self._trace_root_ratio, method="AsyncPredict")
        code = "INTERNAL"
        try:
            await self._enqueue(deployment, body, request_id, tracing.traceparent(trace.span) if trace else "")
            code = "OK"
        except KingpostError as e:
            code = e.wire_code
            raise
        finally:
            if trace is not None:
                tracing.finish(trace.span, code)
        return request_id

    async def _enqueue(self, deployment: Deployment, body: bytes, request_id: str, traceparent: str) -> None:
        parsed = parse_async_body(body, max_bytes=self._max_body,
                                  allow_internal_webhooks=self._allow_internal)
        if self._max_outstanding:
            queued, running = await self._recent_counts(deployment.deployment_id)
            if queued + running >= self._max_outstanding:
                raise TooManyRequests(
                    f"deployment '{deployment.deployment_id}' has {queued} queued and {running} in-progress "
                    f"async requests; the limit is {self._max_outstanding}: try again later")
        now = self._clock()
        record = Status(
            request_id=request_id, model_id=deployment.model_id, deployment_id=deployment.deployment_id,
            status=async_policy.QUEUED, created_at=async_policy.iso(now), status_at=async_policy.iso(now),
            webhook_status=async_policy.PENDING if parsed.webhook_endpoint else async_policy.NO_WEBHOOK_PROVIDED)
        job = inference_pb2.AsyncJob(
            request_id=request_id, model_id=deployment.model_id, deployment_id=deployment.deployment_id,
            model_input=parsed.model_input, webhook_endpoint=parsed.webhook_endpoint, priority=parsed.priority,
            created_at=now, max_time_in_queue_seconds=parsed.max_time_in_queue_seconds,
            max_attempts=parsed.max_attempts, initial_delay_seconds=parsed.initial_delay_seconds,
            max_delay_seconds=parsed.max_delay_seconds, store_result=parsed.store_result, traceparent=traceparent)
        try:
            await self._kv.create(request_id, record.SerializeToString())
        except KeyExists:  # a uuid4 collision: not in this universe, but never overwrite a record
            raise TooManyRequests("request id collision; try again") from None
        try:
            await self._bus.publish(async_request_subject(deployment.deployment_id, parsed.priority), job)
        except BaseException:
            # Not queued: no record may say it is (the client got an error, not an id).
            await self._kv.delete(request_id)
            raise

    async def record(self, request_id: str, model_ids: tuple[str, ...] = ()) -> tuple[Status, int]:
        """The record and its revision; NotFound for an unknown id, or one of another model than
        `model_ids` (the model's id and name, when the route names one)."""
        entry = await self._kv.get(request_id) if _plausible(request_id) else None
        if entry is None:
            raise NotFound(f"async request '{request_id}' not found")
        record = read_record(entry.value)
        if model_ids and record.model_id not in model_ids:
            raise NotFound(f"async request '{request_id}' not found for model '{model_ids[-1]}'")
        return record, entry.revision

    async def status(self, request_id: str, model_ids: tuple[str, ...] = ()) -> Status:
        return (await self.record(request_id, model_ids))[0]

    async def cancel(self, request_id: str,
                     model_ids: tuple[str, ...] = ()) -> inference_pb2.CancelAsyncRequestResponse:
        while True:
            record, revision = await self.record(request_id, model_ids)
            if record.status != async_policy.QUEUED:
                return inference_pb2.CancelAsyncRequestResponse(
                    request_id=request_id, canceled=False,
                    message=f"only a QUEUED request can be canceled; this one is {record.status}")
            now = async_policy.iso(self._clock())
            record.status, record.status_at = async_policy.CANCELED, now
            if record.webhook_status == async_policy.PENDING:
                record.webhook_status = async_policy.CANCELED
            try:
                await self._kv.update(request_id, record.SerializeToString(), revision)
            except RevisionMismatch:
                continue  # a worker (or another cancel) got there first: look again
            return inference_pb2.CancelAsyncRequestResponse(
                request_id=request_id, canceled=True, message="canceled: it will not reach the model")

    async def queue_status(self, deployment: Deployment) -> inference_pb2.GetAsyncQueueStatusResponse:
        queued, running = await self._counts(deployment.deployment_id)  # type: ignore[misc]
        return inference_pb2.GetAsyncQueueStatusResponse(
            model_id=deployment.model_id, deployment_id=deployment.deployment_id,
            num_queued_requests=queued, num_in_progress_requests=running)


def _plausible(request_id: str) -> bool:
    """A key NATS accepts: anything else cannot be a request id, so it is simply not found."""
    return bool(request_id) and len(request_id) <= 64 and request_id.isalnum()


def result_value(output: bytes) -> object:
    """The model's output as the webhook's `data`: its JSON, or its text when it is not JSON."""
    try:
        return json.loads(output)
    except (ValueError, UnicodeDecodeError):
        return output.decode("utf-8", "replace")

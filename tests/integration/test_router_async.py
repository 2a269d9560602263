"""Async inference in one router, in-process, on real NATS JetStream, in front of a stand-in runner
that takes one request at a time: priority 0 overtakes a backlog of priority 2, a cancelled or
expired request never reaches the model, a model error ends FAILED with MODEL_PREDICT_ERROR,
`store_result` keeps the output, a webhook that never answers 2xx ends WEBHOOK_FAILED, and a full
queue answers 429. Time in the queue is read from a clock the test moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import prometheus_client
import pytest
from google.api import httpbody_pb2
from opentelemetry.trace import Tracer
from prometheus_client.parser import text_string_to_metric_families

from kingpost import rpc
from kingpost.auth import AuthInterceptor, KeyCache, key_digest, new_key
from kingpost.bus.nats_bus import NatsBus, NatsKeyValueStore
from kingpost.bus.subjects import concurrency_subject
from kingpost.errors import Unavailable
from kingpost.v1 import events_pb2, inference_pb2, inference_pb2_grpc, runner_pb2, runner_pb2_grpc
from kingpost.v1 import scheduler_pb2 as s
from kingpost_router.async_setup import AsyncInference, start_async
from kingpost_router.main import PUBLIC_PREFIXES
from kingpost_router.sampling import ASYNC_BACKLOG_SOURCE
from kingpost_router.service import RouterServicer
from kingpost_router.settings import RouterSettings
from tests.fixtures.otlp import Collector, attributes, collector  # noqa: F401

KEY = new_key()
AUTH = rpc.api_key(KEY)


class GatedRunner(runner_pb2_grpc.RunnerServiceServicer):
    """Answers `{"echo": input}` once `gate` is open; `{"fail": ...}` raises as a model would."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.seen: list[Any] = []
        self.request_ids: list[str] = []

    async def Predict(self, request: runner_pb2.RunnerPredictRequest, context: grpc.aio.ServicerContext):
        model_input = json.loads(request.body.data)
        self.seen.append(model_input)
        self.request_ids.append(dict(context.invocation_metadata() or ()).get("x-baseten-request-id", ""))
        await self.gate.wait()
        if isinstance(model_input, dict) and "fail" in model_input:
            await context.abort(grpc.StatusCode.INTERNAL, f"model raised: {model_input['fail']}")
        yield httpbody_pb2.HttpBody(content_type="application/json",
                                    data=json.dumps({"echo": model_input}).encode())

    async def Ready(self, request, context):
        return runner_pb2.ReadyResponse(ready=True)


@dataclass
class Clock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Async:
    stub: inference_pb2_grpc.InferenceServiceStub
    runner: GatedRunner
    clock: Clock
    deployment_id: str
    inference: AsyncInference
    nats_url: str

    async def queue(self, model_input: Any, *, metadata: tuple[tuple[str, str], ...] = (), **fields: Any) -> str:
        body = json.dumps({"model_input": model_input, **fields}).encode()
        answer = await self.stub.AsyncPredict(inference_pb2.AsyncPredictRequest(
            model_id="mdl_async", deployment_id=self.deployment_id,
            body=httpbody_pb2.HttpBody(content_type="application/json", data=body)), metadata=(*AUTH, *metadata))
        return answer.request_id

    async def status(self, request_id: str) -> inference_pb2.GetAsyncRequestResponse:
        return await self.stub.GetAsyncRequest(
            inference_pb2.GetAsyncRequestRequest(model_id="mdl_async", request_id=request_id), metadata=AUTH)

    async def until(self, request_id: str, *statuses: str, timeout: float = 20.0) -> inference_pb2.GetAsyncRequestResponse:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            got = await self.status(request_id)
            if got.status in statuses:
                return got
            assert asyncio.get_running_loop().time() < deadline, (request_id, got.status, statuses)
            await asyncio.sleep(0.05)

    async def until_model_saw(self, count: int) -> None:
        for _ in range(400):
            if len(self.runner.seen) >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the model saw {len(self.runner.seen)} requests, not {count}")


@pytest.fixture
async def mesh(nats_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Async]:
    async with _mesh(nats_url, getattr(request, "param", {})) as running:
        yield running


@contextlib.asynccontextmanager
async def _mesh(nats_url: str, settings_fields: dict[str, Any], tracer: Tracer | None = None) -> AsyncIterator[Async]:
    runner = GatedRunner()
    runner_server = grpc.aio.server()
    runner_pb2_grpc.add_RunnerServiceServicer_to_server(runner, runner_server)
    runner_address = f"127.0.0.1:{runner_server.add_insecure_port('127.0.0.1:0')}"
    await runner_server.start()
    deployment_id = f"dep_{uuid.uuid4().hex[:10]}"
    keys = KeyCache()
    settings = RouterSettings(router_id="router-async-test", scheduler_address="unused:1",
                              allow_internal_webhooks=True, webhook_secrets=["whsec_integrationTest0123"],
                              **settings_fields)
    router = RouterServicer(settings, keys, seed=1, tracer=tracer)
    router.apply_table(s.RouteTable(version=1, api_key_sha256=[key_digest(KEY)], models=[s.ModelRoute(
        model_id="mdl_async", name="async", deployments=[s.DeploymentRoute(
            deployment_id=deployment_id, active=True, status=s.DEPLOYMENT_STATUS_ACTIVE, predict_concurrency=1,
            replicas=[s.ReplicaRoute(replica_id="rep_1", address=runner_address)])])]))
    bus = await NatsBus.connect(nats_url, "router-async-test")
    clock = Clock()
    inference = await start_async(settings, bus, router, clock=clock, webhook_delays=(0.05, 0.05),
                                  backlog_interval=0.1, tracer=tracer)
    server = grpc.aio.server(interceptors=[AuthInterceptor(keys, public_prefixes=PUBLIC_PREFIXES)])
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(router, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = rpc.channel(f"127.0.0.1:{port}")
    try:
        yield Async(inference_pb2_grpc.InferenceServiceStub(channel), runner, clock, deployment_id, inference,
                    nats_url)
    finally:
        runner.gate.set()
        await channel.close()
        await server.stop(None)
        await inference.close()
        await router.close()
        await bus.close()
        await runner_server.stop(None)


async def test_priority_0_overtakes_a_backlog_of_priority_2_and_the_model_gets_the_request_id(mesh: Async) -> None:
    backlog = [await mesh.queue({"n": i}, priority=2) for i in range(6)]
    await mesh.until_model_saw(1)
    urgent = await mesh.queue({"urgent": True}, priority=0)
    await asyncio.sleep(0.3)  # the fetchers have what there is to fetch
    mesh.runner.gate.set()
    for request_id in [*backlog, urgent]:
        await mesh.until(request_id, "SUCCEEDED")
    order = mesh.runner.seen
    # Already started (1) and already waiting for the replica's slot (1) go first; then priority 0.
    assert order.index({"urgent": True}) <= 2, order
    assert mesh.runner.request_ids[order.index({"urgent": True})] == urgent


@pytest.mark.parametrize("mesh", [{"async_ack_wait_seconds": 1}], indirect=True)
async def test_a_status_write_nats_fails_gives_the_replica_slot_back(
    mesh: Async, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NATS failing the IN_PROGRESS write (as while it restarts) leaves the job to be handed out
    again, and the replica's slot it had taken free: a slot kept would starve this replica
    (predict_concurrency 1) of every later request, the one handed out again included."""
    update = NatsKeyValueStore.update
    failed: list[str] = []

    async def fails_once(store: NatsKeyValueStore, key: str, value: bytes, revision: int) -> int:
        if not failed:
            failed.append(key)
            raise Unavailable(f"NATS cannot update {key!r} in {store.bucket}: TimeoutError nats: timeout")
        return await update(store, key, value, revision)

    monkeypatch.setattr(NatsKeyValueStore, "update", fails_once)
    mesh.runner.gate.set()
    sent = {await mesh.queue({"n": n}, store_result=True): n for n in (1, 2)}
    for request_id, n in sent.items():
        assert _value(await mesh.until(request_id, "SUCCEEDED")) == {"echo": {"n": n}}
    assert failed == [next(iter(sent))]


async def test_a_cancelled_request_never_reaches_the_model(mesh: Async) -> None:
    first = [await mesh.queue({"n": i}) for i in range(3)]
    await mesh.until_model_saw(1)
    doomed = await mesh.queue({"doomed": True})
    answer = await mesh.stub.CancelAsyncRequest(
        inference_pb2.CancelAsyncRequestRequest(model_id="mdl_async", request_id=doomed), metadata=AUTH)
    assert (answer.canceled, answer.message) == (True, "canceled: it will not reach the model")
    again = await mesh.stub.CancelAsyncRequest(
        inference_pb2.CancelAsyncRequestRequest(model_id="mdl_async", request_id=doomed), metadata=AUTH)
    assert (again.canceled, again.message) == (False, "only a QUEUED request can be canceled; this one is CANCELED")
    mesh.runner.gate.set()
    for request_id in first:
        await mesh.until(request_id, "SUCCEEDED")
    assert (await mesh.status(doomed)).status == "CANCELED"
    await asyncio.sleep(0.3)
    assert {"doomed": True} not in mesh.runner.seen


async def test_a_request_past_its_time_in_queue_expires_without_reaching_the_model(mesh: Async) -> None:
    first = [await mesh.queue({"n": i}) for i in range(3)]
    await mesh.until_model_saw(1)
    late = await mesh.queue({"late": True}, max_time_in_queue_seconds=10)
    mesh.clock.now += 11
    mesh.runner.gate.set()
    expired = await mesh.until(late, "EXPIRED")
    assert [(e.code, e.message) for e in expired.errors] == [
        ("REQUEST_EXPIRED", "not started within max_time_in_queue_seconds (10 s)")]
    for request_id in first:
        await mesh.until(request_id, "SUCCEEDED")
    assert {"late": True} not in mesh.runner.seen


async def test_a_model_error_ends_failed_and_store_result_keeps_an_output(mesh: Async) -> None:
    mesh.runner.gate.set()
    failed = await mesh.until(await mesh.queue({"fail": "boom"}), "FAILED")
    assert [e.code for e in failed.errors] == ["MODEL_PREDICT_ERROR"] and "boom" in failed.errors[0].message
    assert failed.webhook_status == "NO_WEBHOOK_PROVIDED"
    kept = await mesh.until(await mesh.queue({"keep": [1, 2]}, store_result=True), "SUCCEEDED")
    assert json.loads(json.dumps(_value(kept))) == {"echo": {"keep": [1, 2]}}
    plain = await mesh.until(await mesh.queue({"plain": 1}), "SUCCEEDED")
    assert not plain.HasField("result")


async def test_a_webhook_that_keeps_failing_ends_webhook_failed(mesh: Async) -> None:
    tries: list[bytes] = []

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            tries.append(self.rfile.read(int(self.headers["content-length"])))
            self.send_response(503)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        mesh.runner.gate.set()
        hook = f"http://127.0.0.1:{server.server_address[1]}/hook"
        request_id = await mesh.queue({"n": 1}, webhook_endpoint=hook)
        done = await mesh.until(request_id, "WEBHOOK_FAILED")
        assert done.webhook_status == "FAILED" and "HTTP 503" in done.errors[-1].message
        assert len(tries) == 3  # the first try and the two of the schedule this test set
    finally:
        server.shutdown()


async def test_the_autoscaler_is_told_the_whole_backlog_and_when_it_is_gone(mesh: Async) -> None:
    observer = await NatsBus.connect(mesh.nats_url, "async-backlog-observer")
    samples: asyncio.Queue[events_pb2.ConcurrencySample] = asyncio.Queue()
    await observer.subscribe(concurrency_subject("router-async-test"), events_pb2.ConcurrencySample, samples.put)

    async def backlog_reaches(want: Callable[[int], bool]) -> None:
        while True:
            sample = await asyncio.wait_for(samples.get(), timeout=10)
            backlog = {d.deployment_id: d.queued for d in sample.deployments}
            if sample.router_id == ASYNC_BACKLOG_SOURCE and want(backlog.get(mesh.deployment_id, -1)):
                return

    try:
        ids = [await mesh.queue({"n": i}) for i in range(30)]
        await mesh.until_model_saw(1)
        # One call runs, one waits for the replica's slot (the router's own sample counts those two).
        await backlog_reaches(lambda n: n == 28)
        mesh.runner.gate.set()
        for request_id in ids:
            await mesh.until(request_id, "SUCCEEDED")
        await backlog_reaches(lambda n: n == 0)
    finally:
        await observer.close()


@pytest.mark.parametrize("mesh", [{"async_max_outstanding_per_deployment": 3}], indirect=True)
async def test_a_full_queue_answers_429(mesh: Async) -> None:
    for i in range(3):
        await mesh.queue({"n": i})
    mesh.clock.now += 2  # the counts are a second old at most
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await mesh.queue({"n": 3})
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "the limit is 3" in (e.value.details() or "")


def _value(status: inference_pb2.GetAsyncRequestResponse) -> Any:
    from google.protobuf import json_format

    return json_format.MessageToDict(status)["result"]


async def test_a_traced_async_request_is_one_trace_through_its_queue_model_call_and_webhook(
        nats_url: str, collector: tuple[Collector, int]) -> None:
    """Spans exported by the OpenTelemetry SDK over OTLP/gRPC to a real receiver, as the router does."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    received, port = collector
    provider = TracerProvider(resource=Resource.create({"service.name": "kingpost-router"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True)))
    hooks: list[dict[str, str]] = []

    class Accept(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers["content-length"]))
            hooks.append(dict(self.headers))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    hook_server = ThreadingHTTPServer(("127.0.0.1", 0), Accept)
    threading.Thread(target=hook_server.serve_forever, daemon=True).start()
    trace_id, client_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    try:
        async with _mesh(nats_url, {"trace_root_ratio": 0.0}, provider.get_tracer("kingpost.router")) as mesh:
            untraced = await mesh.queue({"first": 1})  # holds the model (its gate is shut): the next one waits
            await mesh.until_model_saw(1)
            request_id = await mesh.queue(
                {"n": 1}, webhook_endpoint=f"http://127.0.0.1:{hook_server.server_address[1]}/hook?token=secret",
                metadata=(("traceparent", f"00-{trace_id}-{client_span}-01"),))
            mesh.clock.now += 2.0  # two seconds in the queue
            mesh.runner.gate.set()
            await mesh.until(request_id, "SUCCEEDED")
            await mesh.until(untraced, "SUCCEEDED")
            spans = await asyncio.to_thread(received.wait_for, trace_id, {
                "kingpost.router/AsyncPredict", "kingpost.router/AsyncJob", "queue", "kingpost.runner/Predict",
                "webhook"})
    finally:
        hook_server.shutdown()
        provider.shutdown()
    front, job, queue, call, webhook = (spans[name][1] for name in (
        "kingpost.router/AsyncPredict", "kingpost.router/AsyncJob", "queue", "kingpost.runner/Predict", "webhook"))
    assert front.parent_span_id.hex() == client_span
    assert job.parent_span_id == front.span_id
    assert queue.parent_span_id == call.parent_span_id == webhook.parent_span_id == job.span_id
    assert queue.end_time_unix_nano - queue.start_time_unix_nano == 2_000_000_000
    assert attributes(webhook)["url.full"].endswith("/hook")  # not its query
    assert hooks and {attributes(span)["kingpost.request_id"] for span in (front, job, queue, call, webhook)} == {
        request_id}
    assert len(received.of_trace(trace_id)) == 5
    assert {span.trace_id.hex() for _, span in received.spans} == {trace_id}  # the untraced one made none


def _async_samples(deployment_id: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The router's async metrics for one deployment, as Prometheus reads the text its /metrics serves."""
    text = prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()
    return {(sample.name, tuple(sorted((k, v) for k, v in sample.labels.items() if k != "deployment"))): sample.value
            for family in text_string_to_metric_families(text) if family.name.startswith("kingpost_router_async_")
            for sample in family.samples if sample.labels.get("deployment") == deployment_id}


async def until_sampled(mesh: Async, wanted: dict[str, float]) -> dict:
    for _ in range(400):
        samples = _async_samples(mesh.deployment_id)
        named = {name: value for (name, labels), value in samples.items() if not labels or labels == (
            ("model", "mdl_async"), ("model_name", "async"))}
        if all(named.get(name) == value for name, value in wanted.items()):
            return samples
        await asyncio.sleep(0.05)
    raise AssertionError(f"{wanted} not in {samples}")


async def test_the_async_queue_is_in_the_routers_metrics_per_deployment(mesh: Async) -> None:
    """Queued and in progress as they change, time in the queue, final statuses, webhook outcomes."""
    hook = "http://127.0.0.1:9/unreachable"  # nothing listens on the discard port: every try fails
    first = await mesh.queue({"n": 0})
    await mesh.until_model_saw(1)
    rest = [await mesh.queue({"n": n}, **({"webhook_endpoint": hook} if n == 2 else {})) for n in (1, 2)]
    # The model holds the first; the second is taken by a worker too (it may start two: twice the
    # replica's predict_concurrency) and waits for the slot; the third waits in the queue.
    await until_sampled(mesh, {"kingpost_router_async_queued": 1, "kingpost_router_async_in_progress": 2})
    mesh.clock.now += 5.0
    mesh.runner.gate.set()
    await mesh.until(first, "SUCCEEDED")
    await mesh.until(rest[0], "SUCCEEDED")
    await mesh.until(rest[1], "WEBHOOK_FAILED")
    samples = await until_sampled(mesh, {"kingpost_router_async_queued": 0, "kingpost_router_async_in_progress": 0})
    labels = (("model", "mdl_async"), ("model_name", "async"))
    assert samples[("kingpost_router_async_queue_seconds_count", labels)] == 3
    assert samples[("kingpost_router_async_queue_seconds_sum", labels)] == 10.0  # two waited the 5 s
    assert samples[("kingpost_router_async_queue_seconds_bucket", (("le", "1.0"), *labels))] == 1
    assert {labels_[-1][1]: value for (name, labels_), value in samples.items()
            if name == "kingpost_router_async_requests_total"} == {"SUCCEEDED": 2, "WEBHOOK_FAILED": 1}
    assert {labels_[-1][1]: value for (name, labels_), value in samples.items()
            if name == "kingpost_router_async_webhooks_total"} == {"failed": 1}

"""The router in-process, in front of stand-in runners: bytes, streams, errors and retries as a
client sees them, and concurrency samples on real NATS.

The stand-in RunnerService plays a machine-local runner process; one that dies mid-request runs
in a child process so that its death is a real one.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from google.api import httpbody_pb2
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import REGISTRY

from kingpost import rpc
from kingpost.auth import AuthInterceptor, KeyCache, key_digest, new_key
from kingpost.bus.nats_bus import NatsBus
from kingpost.bus.subjects import concurrency_subject, scale_poke_subject
from kingpost.grpc_status import HTTP_STATUS_KEY
from kingpost.v1 import events_pb2, inference_pb2, inference_pb2_grpc, runner_pb2, runner_pb2_grpc
from kingpost.v1 import scheduler_pb2 as s
from kingpost_router.main import PUBLIC_PREFIXES
from kingpost_router.service import RouterServicer
from kingpost_router.settings import RouterSettings
from tests.fixtures.servers import free_port

ACTIVE = s.DEPLOYMENT_STATUS_ACTIVE
BUILDING = s.DEPLOYMENT_STATUS_BUILDING
SCALED_TO_ZERO = s.DEPLOYMENT_STATUS_SCALED_TO_ZERO

KEY = new_key()
AUTH = rpc.api_key(KEY)
MAX_BODY = 64 * 1024


class FakeRunner(runner_pb2_grpc.RunnerServiceServicer):
    """Behaviour by body: b"stream", b"fail", b"headers"; anything else is echoed."""

    def __init__(self) -> None:
        self.release = asyncio.Event()  # the "stream" request waits on it after its first chunk
        self.cancelled = asyncio.Event()
        self.calls = 0
        self.running = 0
        self.peak = 0  # the most requests it ran at once
        self.order: list[bytes] = []

    async def Predict(self, request: runner_pb2.RunnerPredictRequest, context: grpc.aio.ServicerContext):
        self.calls += 1
        self.running += 1
        self.peak = max(self.peak, self.running)
        self.order.append(request.body.data)
        try:
            async for chunk in self._answer(request, context):
                yield chunk
        finally:
            self.running -= 1

    async def _answer(self, request: runner_pb2.RunnerPredictRequest, context: grpc.aio.ServicerContext):
        data = request.body.data
        if data == b"stream":
            yield httpbody_pb2.HttpBody(content_type="text/plain", data=b"one ")
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
            yield httpbody_pb2.HttpBody(content_type="text/plain", data=b"two ")
            yield httpbody_pb2.HttpBody(content_type="text/plain", data=b"three")
        elif data == b"fail":
            context.set_trailing_metadata(((HTTP_STATUS_KEY, "418"), ("x-model-note", "teapot")))
            await context.abort(grpc.StatusCode.NOT_FOUND, "the model says: no such tea")
        elif data == b"headers":
            seen = dict(context.invocation_metadata() or ())
            yield httpbody_pb2.HttpBody(content_type="application/json", data=json.dumps(seen).encode())
        else:
            yield httpbody_pb2.HttpBody(content_type=request.body.content_type, data=data)

    async def Sync(self, request: runner_pb2.RunnerSyncRequest, context: grpc.aio.ServicerContext):
        """Answers what it got: the request as JSON, with status 207 and a header of its own."""
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await context.send_initial_metadata((("x-http-status", "207"), ("x-runner", "fake")))
            seen = {"method": request.method, "path": request.path, "body": request.body.data.decode(),
                    "headers": [[h.name, h.value] for h in request.headers],
                    "metadata": sorted(k for k, _ in context.invocation_metadata() or ())}
            yield httpbody_pb2.HttpBody(content_type="application/json", data=json.dumps(seen).encode())
            if request.path == "/slow":
                await self.release.wait()
        finally:
            self.running -= 1

    async def Ready(self, request, context):
        return runner_pb2.ReadyResponse(ready=True)


class DyingRunner(runner_pb2_grpc.RunnerServiceServicer):
    """Sends one chunk, then its process dies, as a runner killed by the OOM killer would."""

    async def Predict(self, request, context):
        yield httpbody_pb2.HttpBody(content_type="text/plain", data=b"partial")
        await asyncio.sleep(0.05)  # let the chunk leave before the process goes
        os._exit(1)

    async def Ready(self, request, context):
        return runner_pb2.ReadyResponse(ready=True)


def _serve_dying_runner(port: int) -> None:
    async def main() -> None:
        server = grpc.aio.server()
        runner_pb2_grpc.add_RunnerServiceServicer_to_server(DyingRunner(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(main())


def route_table(runner: str, *, dead: str, dying: str) -> s.RouteTable:
    ready = [s.ReplicaRoute(replica_id="rep_live", address=runner)]
    return s.RouteTable(
        version=1,
        api_key_sha256=[key_digest(KEY)],
        models=[
            s.ModelRoute(
                model_id="mdl_echo", name="echo", development_deployment_id="dep_dev",
                environments=[s.EnvironmentRoute(name="production", deployments=[
                    s.WeightedDeployment(deployment_id="dep_two", weight=100)])],
                deployments=[
                    s.DeploymentRoute(deployment_id="dep_dev", active=True, replicas=ready, status=ACTIVE),
                    # The dead replica (nothing listens) next to a live one.
                    s.DeploymentRoute(deployment_id="dep_two", active=True, status=ACTIVE, replicas=[
                        s.ReplicaRoute(replica_id="rep_dead", address=dead), *ready]),
                    s.DeploymentRoute(deployment_id="dep_lonely_dead", active=True, status=ACTIVE,
                                      replicas=[s.ReplicaRoute(replica_id="rep_dead", address=dead)]),
                    s.DeploymentRoute(deployment_id="dep_dead_quick", active=True, status=ACTIVE,
                                      cold_start_timeout_seconds=0.3,
                                      replicas=[s.ReplicaRoute(replica_id="rep_dead_quick", address=dead)]),
                    s.DeploymentRoute(deployment_id="dep_dying", active=True, status=ACTIVE,
                                      replicas=[s.ReplicaRoute(replica_id="rep_dying", address=dying)]),
                    s.DeploymentRoute(deployment_id="dep_building", active=True, status=BUILDING),
                    # One request at a time: the rest queue (or are refused under the policy "reject").
                    s.DeploymentRoute(deployment_id="dep_one", active=True, status=ACTIVE,
                                      predict_concurrency=1,
                                      replicas=[s.ReplicaRoute(replica_id="rep_one", address=runner)]),
                    s.DeploymentRoute(deployment_id="dep_reject", active=True, status=ACTIVE,
                                      predict_concurrency=1, backpressure_policy="reject",
                                      replicas=[s.ReplicaRoute(replica_id="rep_reject", address=runner)]),
                    # Scaled to zero: requests wait for a replica.
                    s.DeploymentRoute(deployment_id="dep_zero", active=True, status=SCALED_TO_ZERO),
                    s.DeploymentRoute(deployment_id="dep_zero_quick", active=True, status=SCALED_TO_ZERO,
                                      cold_start_timeout_seconds=0.2,
                                      status_reason="no replica runs; the next request wakes it"),
                ],
            )
        ],
    )


class Mesh:
    def __init__(self, router: RouterServicer, runner: FakeRunner, stub: inference_pb2_grpc.InferenceServiceStub,
                 runner_address: str, dead: str) -> None:
        self.router = router
        self.runner = runner
        self.stub = stub
        self.runner_address = runner_address
        self.dead = dead
        self.spans: InMemorySpanExporter | None = None  # finished spans, when the router traces

    async def predict(self, data: bytes = b"hi", *, content_type: str = "application/json",
                      metadata=AUTH, **where: str) -> list[httpbody_pb2.HttpBody]:
        where.setdefault("model_id", "mdl_echo")
        if not ({"target", "environment", "deployment_id"} & where.keys()):
            where["target"] = "development"
        request = inference_pb2.PredictRequest(
            body=httpbody_pb2.HttpBody(content_type=content_type, data=data), **where)
        return [chunk async for chunk in self.stub.Predict(request, metadata=metadata, timeout=20)]


async def read_rest(call) -> list[bytes]:
    out = []
    while (chunk := await call.read()) is not grpc.aio.EOF:
        out.append(chunk.data)
    return out


@pytest.fixture
def dying_runner() -> Iterator[str]:
    port = free_port()
    proc = multiprocessing.get_context("spawn").Process(target=_serve_dying_runner, args=(port,), daemon=True)
    proc.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(10)


@pytest.fixture
async def mesh(request: pytest.FixtureRequest) -> AsyncIterator[Mesh]:
    """Runner and router in-process; `indirect` parameters override RouterSettings fields."""
    runner = FakeRunner()
    runner_server = grpc.aio.server()
    runner_pb2_grpc.add_RunnerServiceServicer_to_server(runner, runner_server)
    runner_address = f"127.0.0.1:{runner_server.add_insecure_port('127.0.0.1:0')}"
    await runner_server.start()

    keys = KeyCache()
    params = dict(getattr(request, "param", {}))
    spans = InMemorySpanExporter() if params.pop("traced", False) else None
    tracer = None
    if spans is not None:  # the SDK's own in-memory exporter, in place of an OTLP collector
        params.setdefault("trace_root_ratio", 1.0)  # every request, not the default 1 %
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(spans))
        tracer = provider.get_tracer("test")
    settings = RouterSettings(**{"router_id": "router-test", "max_body_bytes": MAX_BODY,
                                 "scheduler_address": "unused:1", **params})
    router = RouterServicer(settings, keys, seed=1, tracer=tracer)
    dead = f"127.0.0.1:{free_port()}"
    router.apply_table(route_table(runner_address, dead=dead, dying=dead))
    server = grpc.aio.server(interceptors=[AuthInterceptor(keys, public_prefixes=PUBLIC_PREFIXES)],
                             options=rpc.server_options())
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(router, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = rpc.channel(f"127.0.0.1:{port}")
    try:
        mesh = Mesh(router, runner, inference_pb2_grpc.InferenceServiceStub(channel), runner_address, dead)
        mesh.spans = spans
        yield mesh
    finally:
        runner.release.set()
        await channel.close()
        await server.stop(None)
        await router.close()
        await runner_server.stop(None)


async def test_echo_round_trips_bytes_exactly_with_the_content_type(mesh: Mesh) -> None:
    payload = bytes(range(256)) * 3 + b"\x00\xff\x0a\x0d\x80"
    [chunk] = await mesh.predict(payload, content_type="application/octet-stream")
    assert (chunk.content_type, chunk.data) == ("application/octet-stream", payload)


async def test_model_is_found_by_name_and_by_host(mesh: Mesh) -> None:
    [by_name] = await mesh.predict(b"named", model_id="echo")
    assert by_name.data == b"named"
    host = (("x-kingpost-host", "model-mdl_echo.kingpost.example:8080"), *AUTH)
    [by_host] = await mesh.predict(b"hosted", model_id="", metadata=host)
    assert by_host.data == b"hosted"


async def test_request_metadata_that_matters_reaches_the_runner_and_the_key_does_not(mesh: Mesh) -> None:
    metadata = (*AUTH, ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
                ("accept", "application/msgpack"), ("x-baseten-request-id", "req-1"), ("x-other", "no"))
    [chunk] = await mesh.predict(b"headers", metadata=metadata)
    seen = json.loads(chunk.data)
    assert seen["traceparent"] == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert (seen["accept"], seen["x-baseten-request-id"]) == ("application/msgpack", "req-1")
    assert "authorization" not in seen and "x-other" not in seen


CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"


@pytest.mark.parametrize("mesh", [{"traced": True}], indirect=True)
async def test_a_traced_request_continues_the_callers_trace_down_to_the_runner(mesh: Mesh) -> None:
    metadata = (*AUTH, ("traceparent", f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
    [chunk] = await mesh.predict(b"headers", metadata=metadata)
    assert mesh.spans is not None
    by_kind = {span.kind: span for span in mesh.spans.get_finished_spans()}
    assert len(by_kind) == 2
    server, call = by_kind[SpanKind.SERVER], by_kind[SpanKind.CLIENT]
    assert (server.name, call.name) == ("kingpost.router/Predict", "kingpost.runner/Predict")
    assert {format(span.context.trace_id, "032x") for span in (server, call)} == {CLIENT_TRACE}
    assert format(server.parent.span_id, "016x") == CLIENT_SPAN
    assert call.parent.span_id == server.context.span_id
    assert call.attributes["kingpost.replica_id"] == "rep_live"
    assert server.attributes["kingpost.model"] == "mdl_echo"
    # The runner (and the model) see the router's call as their parent, in the client's trace.
    seen = json.loads(chunk.data)["traceparent"]
    assert seen == f"00-{CLIENT_TRACE}-{call.context.span_id:016x}-01"


@pytest.mark.parametrize("mesh", [{"traced": True}], indirect=True)
async def test_a_failed_request_ends_its_spans_with_an_error_status(mesh: Mesh) -> None:
    with pytest.raises(grpc.aio.AioRpcError):
        await mesh.predict(b"fail")
    assert mesh.spans is not None
    # The router's server span ends once its handler returns, which can be a moment after the client
    # has the error: wait for it rather than read at once (a loaded machine saw only the inner span).
    for _ in range(200):
        if len(spans := mesh.spans.get_finished_spans()) >= 2:
            break
        await asyncio.sleep(0.05)
    assert len(spans) == 2  # a new trace: the request came without a traceparent
    assert {span.status.status_code for span in spans} == {StatusCode.ERROR}
    assert {span.attributes["rpc.grpc.status_code"] for span in spans} == {"NOT_FOUND"}


async def test_chunks_arrive_while_the_model_is_still_generating(mesh: Mesh) -> None:
    request = inference_pb2.PredictRequest(model_id="mdl_echo", target="development",
                                           body=httpbody_pb2.HttpBody(data=b"stream"))
    call = mesh.stub.Predict(request, metadata=AUTH, timeout=20)
    first = await call.read()
    # The runner holds its next chunk until we have the first one: buffering would deadlock here.
    assert first.data == b"one "
    assert mesh.router.in_flight == {"dep_dev": 1}
    mesh.runner.release.set()
    rest = await read_rest(call)
    assert rest == [b"two ", b"three"]
    assert mesh.router.in_flight == {} and mesh.router.outstanding == {}


async def test_a_client_that_hangs_up_cancels_the_model_call(mesh: Mesh) -> None:
    request = inference_pb2.PredictRequest(model_id="mdl_echo", target="development",
                                           body=httpbody_pb2.HttpBody(data=b"stream"))
    call = mesh.stub.Predict(request, metadata=AUTH, timeout=20)
    assert (await call.read()).data == b"one "
    call.cancel()
    await asyncio.wait_for(mesh.runner.cancelled.wait(), timeout=10)
    assert mesh.router.in_flight == {} and mesh.router.outstanding == {}


async def test_runner_errors_pass_through_with_code_details_and_http_status(mesh: Mesh) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mesh.predict(b"fail")
    e = caught.value
    assert (e.code(), e.details()) == (grpc.StatusCode.NOT_FOUND, "the model says: no such tea")
    trailers = dict(e.trailing_metadata())
    assert trailers[HTTP_STATUS_KEY] == "418" and trailers["x-model-note"] == "teapot"


@pytest.mark.parametrize("mesh", [{"request_timeout_seconds": 0.3}], indirect=True)
async def test_a_model_slower_than_the_request_timeout_answers_504(mesh: Mesh) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mesh.predict(b"stream")  # the runner never gets its release
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert caught.value.details() == "the model did not answer within 0.3 s"
    assert dict(caught.value.trailing_metadata())[HTTP_STATUS_KEY] == "504"
    assert mesh.router.in_flight == {}


async def test_a_deployment_envoy_chose_is_served_without_drawing_the_split_again(mesh: Mesh) -> None:
    # Envoy's routes to the router name the deployment it drew (kingpost_router.xds).
    request = inference_pb2.PredictRequest(model_id="mdl_echo", target="production",
                                           body=httpbody_pb2.HttpBody(data=b"stream"))
    call = mesh.stub.Predict(request, metadata=(*AUTH, ("x-kingpost-deployment", "dep_dev")), timeout=20)
    assert (await call.read()).data == b"one "
    assert mesh.router.in_flight == {"dep_dev": 1}  # not production's dep_two
    mesh.runner.release.set()
    await read_rest(call)
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # only a deployment of the model named
        await mesh.predict(metadata=(*AUTH, ("x-kingpost-deployment", "dep_of_another_model")))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "deployment 'dep_of_another_model' not found for model 'mdl_echo'"


async def test_unknown_model_is_not_found(mesh: Mesh) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mesh.predict(model_id="nope")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "model 'nope' not found"
    assert dict(caught.value.trailing_metadata())[HTTP_STATUS_KEY] == "404"


async def test_a_deployment_that_is_not_ready_answers_503(mesh: Mesh) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mesh.predict(deployment_id="dep_building")
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "not ready" in caught.value.details() and "BUILDING" in caught.value.details()
    assert dict(caught.value.trailing_metadata())[HTTP_STATUS_KEY] == "503"


@pytest.mark.parametrize("metadata", [(), (("authorization", "Api-Key kp_wrong_key"),)], ids=["none", "wrong"])
async def test_requests_without_a_valid_key_are_unauthenticated(mesh: Mesh, metadata) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mesh.predict(metadata=metadata)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert mesh.runner.calls == 0


async def test_a_body_over_the_limit_answers_413(mesh: Mesh) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mesh.predict(b"x" * (MAX_BODY + 1))
    assert dict(caught.value.trailing_metadata())[HTTP_STATUS_KEY] == "413"
    assert mesh.runner.calls == 0


async def test_a_dead_replica_is_skipped_for_a_live_one(mesh: Mesh) -> None:
    retries = REGISTRY.get_sample_value("kingpost_router_retries_total") or 0.0
    for i in range(30):  # the dead replica is drawn first by one of these (none of 30: one in 10^9)
        [chunk] = await mesh.predict(f"try {i}".encode(), target="production")
        assert chunk.data == f"try {i}".encode()
    assert mesh.runner.calls == 30
    # Refused once, it is marked unreachable: no later request pays for a second attempt.
    assert REGISTRY.get_sample_value("kingpost_router_retries_total") == retries + 1


async def test_a_runner_that_refuses_connections_holds_requests_until_it_answers_again(mesh: Mesh) -> None:
    # Its runner crashed and its agent restarts it on the same address, the route table unchanged.
    held = asyncio.create_task(mesh.predict(b"held", deployment_id="dep_lonely_dead"))
    await wait_until_queued(mesh.router, "dep_lonely_dead", 1)
    assert not held.done() and mesh.runner.calls == 0
    port = mesh.dead.rsplit(":", 1)[1]
    restarted = FakeRunner()
    server = grpc.aio.server()
    runner_pb2_grpc.add_RunnerServiceServicer_to_server(restarted, server)
    assert server.add_insecure_port(mesh.dead) == int(port)
    await server.start()
    try:
        [chunk] = await asyncio.wait_for(held, timeout=15)
        assert chunk.data == b"held" and restarted.order == [b"held"]
        assert mesh.router.queued("dep_lonely_dead") == 0 and mesh.router.outstanding == {}
    finally:
        await server.stop(None)


async def test_a_runner_that_refuses_connections_holds_requests_until_a_table_brings_one(mesh: Mesh) -> None:
    held = asyncio.create_task(mesh.predict(b"held", deployment_id="dep_lonely_dead"))
    await wait_until_queued(mesh.router, "dep_lonely_dead", 1)
    table = route_table(mesh.runner_address, dead=mesh.dead, dying=mesh.dead)
    lonely = next(d for d in table.models[0].deployments if d.deployment_id == "dep_lonely_dead")
    del lonely.replicas[:]
    lonely.replicas.add(replica_id="rep_dead", address=mesh.runner_address)  # restarted on a new port
    mesh.router.apply_table(table)
    [chunk] = await asyncio.wait_for(held, timeout=10)
    assert chunk.data == b"held" and mesh.runner.order == [b"held"]


async def test_a_runner_that_stays_unreachable_answers_503_after_the_cold_start_timeout(mesh: Mesh) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mesh.predict(deployment_id="dep_dead_quick")
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    details = caught.value.details()
    assert details.startswith("deployment 'dep_dead_quick' had no reachable replica within the cold-start "
                              f"timeout of 0.3 s (replica rep_dead_quick at {mesh.dead}: failed to connect")
    assert "Connection refused" in details
    assert dict(caught.value.trailing_metadata())[HTTP_STATUS_KEY] == "503"
    assert mesh.router.queued("dep_dead_quick") == 0 and mesh.router.outstanding == {}


async def test_a_replica_dying_mid_request_answers_502_and_the_next_request_waits_for_its_restart(
    mesh: Mesh, dying_runner: str
) -> None:
    async with grpc.aio.insecure_channel(dying_runner) as ch:  # up once it answers Ready
        await runner_pb2_grpc.RunnerServiceStub(ch).Ready(runner_pb2.ReadyRequest(), timeout=20,
                                                          wait_for_ready=True)
    mesh.router.apply_table(route_table(mesh.runner_address, dead=mesh.dead, dying=dying_runner))
    request = inference_pb2.PredictRequest(model_id="mdl_echo", deployment_id="dep_dying",
                                           body=httpbody_pb2.HttpBody(data=b"go"))
    call = mesh.stub.Predict(request, metadata=AUTH, timeout=20)
    assert (await call.read()).data == b"partial"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert caught.value.details().startswith(
        "replica rep_dying stopped answering mid-request: its runner crashed or was killed (")
    assert dict(caught.value.trailing_metadata())[HTTP_STATUS_KEY] == "502"
    assert mesh.runner.calls == 0  # not replayed on another runner: the model may have run
    # The next request finds the runner gone and waits for it, as at zero, instead of a 503 ...
    after = asyncio.create_task(mesh.predict(b"after the crash", deployment_id="dep_dying"))
    await wait_until_queued(mesh.router, "dep_dying", 1)
    assert not after.done()
    # ... until the agent's restart, on a new port, reaches the router in a route table.
    table = route_table(mesh.runner_address, dead=mesh.dead, dying=mesh.runner_address)
    mesh.router.apply_table(table)
    [chunk] = await asyncio.wait_for(after, timeout=10)
    assert chunk.data == b"after the crash" and mesh.runner.order == [b"after the crash"]
    assert mesh.router.outstanding == {}


async def test_table_updates_open_and_close_runner_channels(mesh: Mesh) -> None:
    table = route_table(mesh.runner_address, dead="127.0.0.1:1", dying="127.0.0.1:2")
    del table.models[0].deployments[1:]
    del table.models[0].environments[:]
    table.version = 2
    mesh.router.apply_table(table)
    assert mesh.router.snapshot.version == 2
    assert mesh.router.snapshot.addresses() == {mesh.runner_address}
    [chunk] = await mesh.predict(b"still here")
    assert chunk.data == b"still here"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mesh.predict(target="production")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_concurrency_samples_reach_nats(mesh: Mesh, nats_url: str) -> None:
    bus = await NatsBus.connect(nats_url, "router-test-observer")
    samples: asyncio.Queue[events_pb2.ConcurrencySample] = asyncio.Queue()
    await bus.subscribe(concurrency_subject("router-test"), events_pb2.ConcurrencySample, samples.put)
    publisher = asyncio.create_task(mesh.router.publish_concurrency(bus, interval=0.05))
    request = inference_pb2.PredictRequest(model_id="mdl_echo", target="development",
                                           body=httpbody_pb2.HttpBody(data=b"stream"))
    call = mesh.stub.Predict(request, metadata=AUTH, timeout=20)
    try:
        assert (await call.read()).data == b"one "
        while True:  # samples taken before the request started may still be in flight
            sample = await asyncio.wait_for(samples.get(), timeout=10)
            counts = {d.deployment_id: d.in_flight for d in sample.deployments}
            if counts.get("dep_dev") == 1:
                break
        assert sample.router_id == "router-test"
        assert counts["dep_two"] == 0  # idle deployments are reported too, as zero
        assert sample.at.seconds > 0
    finally:
        mesh.runner.release.set()
        await read_rest(call)
        publisher.cancel()
        await asyncio.gather(publisher, return_exceptions=True)
        await bus.close()


async def wait_until_queued(router: RouterServicer, deployment_id: str, count: int) -> None:
    async def poll() -> None:
        while router.queued(deployment_id) != count:
            await asyncio.sleep(0.005)
    await asyncio.wait_for(poll(), timeout=10)


def stream_call(mesh: Mesh, deployment_id: str, data: bytes = b"stream"):
    request = inference_pb2.PredictRequest(model_id="mdl_echo", deployment_id=deployment_id,
                                           body=httpbody_pb2.HttpBody(data=data))
    return mesh.stub.Predict(request, metadata=AUTH, timeout=20)


async def test_a_full_replica_queues_requests_and_serves_them_in_order_when_a_slot_frees(mesh: Mesh) -> None:
    busy = stream_call(mesh, "dep_one")
    assert (await busy.read()).data == b"one "
    waiting = [asyncio.create_task(mesh.predict(f"next {i}".encode(), deployment_id="dep_one"))
               for i in range(3)]
    await wait_until_queued(mesh.router, "dep_one", 3)
    assert mesh.runner.calls == 1  # the queued ones have not reached the runner
    mesh.runner.release.set()
    assert await read_rest(busy) == [b"two ", b"three"]
    answers = await asyncio.gather(*waiting)
    assert [a[0].data for a in answers] == [b"next 0", b"next 1", b"next 2"]
    assert mesh.runner.order[1:] == [b"next 0", b"next 1", b"next 2"]  # FIFO
    assert mesh.runner.peak == 1  # predict_concurrency=1 is a hard limit
    assert mesh.router.queued("dep_one") == 0 and mesh.router.outstanding == {}


@pytest.mark.parametrize("mesh", [{"max_queue_per_deployment": 1}], indirect=True)
async def test_beyond_the_queue_bound_requests_answer_429(mesh: Mesh) -> None:
    busy = stream_call(mesh, "dep_one")
    assert (await busy.read()).data == b"one "
    queued = asyncio.create_task(mesh.predict(b"queued", deployment_id="dep_one"))
    await wait_until_queued(mesh.router, "dep_one", 1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mesh.predict(b"too many", deployment_id="dep_one")
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.details() == ("deployment 'dep_one' is at its limit: 1 requests already wait "
                                      "for a replica (queue limit 1)")
    assert dict(caught.value.trailing_metadata())[HTTP_STATUS_KEY] == "429"
    mesh.runner.release.set()
    await read_rest(busy)
    assert (await queued)[0].data == b"queued"


async def test_reject_on_full_answers_429_at_once(mesh: Mesh) -> None:
    busy = stream_call(mesh, "dep_reject")
    assert (await busy.read()).data == b"one "
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mesh.predict(b"refused", deployment_id="dep_reject")
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "dep_reject" in caught.value.details() and "predict_concurrency" in caught.value.details()
    assert "back-pressure policy is 'reject'" in caught.value.details()
    assert dict(caught.value.trailing_metadata())[HTTP_STATUS_KEY] == "429"
    assert mesh.runner.calls == 1
    mesh.runner.release.set()
    await read_rest(busy)
    [chunk] = await mesh.predict(b"free again", deployment_id="dep_reject")
    assert chunk.data == b"free again"


@pytest.mark.parametrize("mesh", [{"request_timeout_seconds": 0.3}], indirect=True)
async def test_queue_time_counts_toward_the_deadline(mesh: Mesh) -> None:
    mesh.router.outstanding["rep_one"] = 1  # its one slot busy for longer than the request timeout
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mesh.predict(b"late", deployment_id="dep_one")
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert caught.value.details() == "no replica of deployment 'dep_one' was free within 0.3 s (waited in the queue)"
    assert dict(caught.value.trailing_metadata())[HTTP_STATUS_KEY] == "504"
    assert mesh.router.queued("dep_one") == 0 and mesh.runner.calls == 0
    del mesh.router.outstanding["rep_one"]


async def test_a_client_that_hangs_up_leaves_the_queue(mesh: Mesh) -> None:
    busy = stream_call(mesh, "dep_one")
    assert (await busy.read()).data == b"one "
    gone = stream_call(mesh, "dep_one", b"gone")
    await wait_until_queued(mesh.router, "dep_one", 1)
    gone.cancel()
    await wait_until_queued(mesh.router, "dep_one", 0)
    mesh.runner.release.set()
    await read_rest(busy)
    [chunk] = await mesh.predict(b"after", deployment_id="dep_one")
    assert chunk.data == b"after" and b"gone" not in mesh.runner.order


async def test_a_deployment_scaled_to_zero_holds_requests_pokes_the_autoscaler_and_releases_them(
    mesh: Mesh, nats_url: str
) -> None:
    bus = await NatsBus.connect(nats_url, "router-test-poke")
    pokes: asyncio.Queue[events_pb2.ScalePoke] = asyncio.Queue()
    await bus.subscribe(scale_poke_subject("dep_zero"), events_pb2.ScalePoke, pokes.put)
    mesh.router.bus = bus
    try:
        held = [asyncio.create_task(mesh.predict(f"held {i}".encode(), deployment_id="dep_zero"))
                for i in range(2)]
        await wait_until_queued(mesh.router, "dep_zero", 2)
        poke = await asyncio.wait_for(pokes.get(), timeout=10)
        assert poke.deployment_id == "dep_zero" and poke.queued >= 1 and poke.at.seconds > 0
        assert not any(t.done() for t in held)
        # The scheduler's next table carries the replica that came up: the requests go at once.
        table = route_table(mesh.runner_address, dead=mesh.dead, dying=mesh.dead)
        table.version = 2
        zero = next(d for d in table.models[0].deployments if d.deployment_id == "dep_zero")
        zero.status = ACTIVE
        zero.replicas.add(replica_id="rep_woke", address=mesh.runner_address)
        mesh.router.apply_table(table)
        answers = await asyncio.wait_for(asyncio.gather(*held), timeout=10)
        assert sorted(a[0].data for a in answers) == [b"held 0", b"held 1"]
        assert mesh.router.queued("dep_zero") == 0
    finally:
        await bus.close()


async def test_a_deployment_that_stays_at_zero_answers_503_after_the_cold_start_timeout(mesh: Mesh) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mesh.predict(b"cold", deployment_id="dep_zero_quick")
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert caught.value.details() == ("deployment 'dep_zero_quick' was not ready within the cold-start "
                                      "timeout of 0.2 s (status: SCALED_TO_ZERO: no replica runs; the next "
                                      "request wakes it)")
    assert dict(caught.value.trailing_metadata())[HTTP_STATUS_KEY] == "503"
    assert mesh.router.queued("dep_zero_quick") == 0


async def test_held_requests_fail_when_the_deployment_is_deactivated(mesh: Mesh) -> None:
    held = asyncio.create_task(mesh.predict(b"held", deployment_id="dep_zero"))
    await wait_until_queued(mesh.router, "dep_zero", 1)
    table = route_table(mesh.runner_address, dead=mesh.dead, dying=mesh.dead)
    next(d for d in table.models[0].deployments if d.deployment_id == "dep_zero").active = False
    mesh.router.apply_table(table)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await held
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_sync_passes_the_request_through_and_the_servers_status_and_headers_back(mesh: Mesh) -> None:
    request = inference_pb2.SyncRequest(model_id="mdl_echo", target="development", path="v1/things",
                                        body=httpbody_pb2.HttpBody(content_type="text/plain", data=b"x"))
    metadata = (*AUTH, ("x-kingpost-sync-method", "PUT"), ("x-kingpost-sync-path", "/v1/things?a=1"),
                ("x-custom", "yes"), ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"))
    call = mesh.stub.Sync(request, metadata=metadata, timeout=20)
    assert ("x-http-status", "207") in tuple(await call.initial_metadata())
    seen = json.loads(b"".join([c.data async for c in call]))
    assert (seen["method"], seen["path"], seen["body"]) == ("PUT", "/v1/things?a=1", "x")
    assert ["x-custom", "yes"] in seen["headers"]
    assert not any(name in ("authorization", "x-kingpost-sync-path") for name, _ in seen["headers"])
    assert "traceparent" in seen["metadata"] and "x-custom" not in seen["metadata"]


async def test_sync_takes_predicts_slots(mesh: Mesh) -> None:
    """dep_one takes one request at a time: a Sync holds the slot until its stream ends."""
    def sync(path: str):
        return mesh.stub.Sync(inference_pb2.SyncRequest(model_id="mdl_echo", deployment_id="dep_one", path=path),
                              metadata=AUTH, timeout=20)

    slow = sync("slow")
    await slow.read()  # its first chunk: it runs, holding dep_one's only slot
    second = asyncio.ensure_future(read_rest(sync("fast")))
    await asyncio.sleep(0.3)
    assert not second.done() and mesh.router.queued("dep_one") == 1
    mesh.runner.release.set()
    await read_rest(slow)
    assert len(await second) == 1 and mesh.runner.peak == 1


async def test_a_websocket_port_in_use_stops_the_router_naming_it() -> None:
    from kingpost_router.ws_server import WebsocketServer

    taken = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = taken.sockets[0].getsockname()[1]
    router = RouterServicer(RouterSettings(router_id="router-port-test", scheduler_address="unused:1"), KeyCache())
    try:
        with pytest.raises(SystemExit, match=rf"router: cannot listen for WebSockets on 127.0.0.1:{port}: "
                                             r".*in use \(the router's websocket_port\)"):
            await WebsocketServer(router, KeyCache(), host="127.0.0.1", port=port, timeout=1).start()
    finally:
        taken.close()
        await router.close()

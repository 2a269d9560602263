"""Envoy with kingpost's rendered config, in front of test doubles of the router, scheduler and builder.

What is under test is the Envoy config: REST transcoding of Baseten's paths, raw bodies both ways,
streaming, the `{"error": ...}` shape with the exact HTTP status, which gRPC methods the public
gRPC port exposes, the key check before big bodies (answered by the router's real ext_authz
handler), and what Envoy refuses or drops before a service sees it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import msgpack
import pytest
from google.api import httpbody_pb2

from kingpost import errors, wire_limits
from kingpost.auth import KeyCache, key_digest
from kingpost.gateway import write_envoy_config
from kingpost.grpc_status import from_rpc_error, grpc_abort
from kingpost.v1 import (
    builder_pb2,
    builder_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    management_pb2,
    management_pb2_grpc,
    scheduler_pb2,
)
from kingpost_router.authz import EnvoyAuthzInterceptor
from tests.fixtures.servers import free_port, running_envoy

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTOR = ROOT / "src" / "kingpost" / "envoy" / "kingpost.binpb"
MAX_BODY = 4 * 1024 * 1024  # above the transcoder's 1 MiB default, so raising it is tested too
ODD_MESSAGE = 'model \'m"x\' not found: café ☕ 100% sure'
KEY = "kp_test0001_secretsecretsecretsecretsecret00"
AUTH = f"Api-Key {KEY}"
BIG = 2 * 1024 * 1024  # over the 1 MB from which Envoy asks the router about the key first


@dataclass(frozen=True)
class Ports:
    rest: int
    grpc: int
    admin: int
    router: int
    scheduler: int
    builder: int


@dataclass
class Seen:
    """What the test doubles received."""

    predicts: list[tuple[inference_pb2.PredictRequest, dict[str, str]]] = field(default_factory=list)
    management: list[dict[str, str]] = field(default_factory=list)
    first_chunk_received: asyncio.Event = field(default_factory=asyncio.Event)
    last_chunk_produced_at: float = 0.0


class Inference(inference_pb2_grpc.InferenceServiceServicer):
    """A router double: the model id picks the behaviour."""

    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    async def Predict(self, request, context) -> AsyncIterator[httpbody_pb2.HttpBody]:  # noqa: N802
        self.seen.predicts.append((request, dict(context.invocation_metadata())))
        match request.model_id:
            case "missing":
                await grpc_abort(context, errors.NotFound(ODD_MESSAGE))
            case "plain-not-found":  # no x-http-status: the gRPC → HTTP mapping alone
                await context.abort(grpc.StatusCode.NOT_FOUND, "gone")
            case "too-large":
                await grpc_abort(context, errors.PayloadTooLarge("input over 1 kB"))
            case "teapot":
                await grpc_abort(context, errors.ModelError("I'm a teapot", http_status=418))
            case "stream":
                yield httpbody_pb2.HttpBody(content_type="application/x-ndjson", data=b'{"chunk": 0}\n')
                # The next chunk waits until the client has the first: if Envoy buffered the
                # stream, the client would only get chunk 0 after the timeout below.
                try:
                    await asyncio.wait_for(self.seen.first_chunk_received.wait(), 5)
                except TimeoutError:
                    pass
                for i in (1, 2):
                    self.seen.last_chunk_produced_at = time.monotonic()
                    yield httpbody_pb2.HttpBody(data=b'{"chunk": %d}\n' % i)
            case "fail-mid-stream":
                yield httpbody_pb2.HttpBody(content_type="text/plain", data=b"partial")
                await context.abort(grpc.StatusCode.INTERNAL, "model crashed mid-stream")
            case _:
                yield httpbody_pb2.HttpBody(content_type=request.body.content_type, data=request.body.data)


class Management(management_pb2_grpc.ManagementServiceServicer):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    async def ListModels(self, request, context):  # noqa: N802
        self.seen.management.append(dict(context.invocation_metadata()))
        return management_pb2.ListModelsResponse(models=[
            management_pb2.Model(id="mdl_1", name="echo", production_deployment_id="dep_9"),
        ])

    async def GetModel(self, request, context):  # noqa: N802
        await grpc_abort(context, errors.NotFound(f"model '{request.model_id}' not found"))


class Builder(builder_pb2_grpc.BuildServiceServicer):
    async def GetBuild(self, request, context):  # noqa: N802
        return builder_pb2.GetBuildResponse(build=builder_pb2.Build(build_id=request.build_id))

    async def FetchArtifact(self, request, context):  # noqa: N802 - internal: must not be reachable
        yield builder_pb2.FetchArtifactResponse()


@pytest.fixture(scope="module")
def envoy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ports]:
    ports = Ports(*(free_port() for _ in range(6)))
    config = write_envoy_config(
        tmp_path_factory.mktemp("envoy") / "envoy.yaml",
        rest_port=ports.rest, grpc_port=ports.grpc, admin_port=ports.admin,
        router=f"127.0.0.1:{ports.router}", scheduler=f"127.0.0.1:{ports.scheduler}",
        builder=f"localhost:{ports.builder}",  # a name: STRICT_DNS
        descriptor_path=DESCRIPTOR, max_body_bytes=MAX_BODY,
    )
    with running_envoy(config, ports.admin):
        yield ports


@pytest.fixture
async def seen(envoy: Ports) -> AsyncIterator[Seen]:
    """The three test doubles on the ports Envoy routes to, for one test."""
    seen = Seen()
    servers = []
    for port, register in (
        (envoy.router, lambda s: inference_pb2_grpc.add_InferenceServiceServicer_to_server(Inference(seen), s)),
        (envoy.scheduler, lambda s: management_pb2_grpc.add_ManagementServiceServicer_to_server(Management(seen), s)),
        (envoy.builder, lambda s: builder_pb2_grpc.add_BuildServiceServicer_to_server(Builder(), s)),
    ):
        # As the services are: metadata limits above Envoy's header limit; the router answers
        # Envoy's key check (the doubles themselves check no key).
        interceptors = [EnvoyAuthzInterceptor(KeyCache([key_digest(KEY)]))] if port == envoy.router else []
        server = grpc.aio.server(interceptors=interceptors, options=[
            ("grpc.max_receive_message_length", 2 * MAX_BODY), *wire_limits.METADATA_OPTIONS])
        register(server)
        assert server.add_insecure_port(f"127.0.0.1:{port}") == port
        await server.start()
        servers.append(server)
    yield seen
    for server in servers:
        await server.stop(None)


@pytest.fixture
async def http(envoy: Ports) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{envoy.rest}", timeout=10) as client:
        yield client


# --- REST: bodies and streams ---------------------------------------------------------------------


async def test_msgpack_body_round_trips_byte_exact_with_its_content_type(http, seen):
    body = msgpack.packb({"x": [1, 2.5, b"\x00\xff\n\r\x80"], "s": "é"})
    r = await http.post("/models/echo/production/predict", content=body,
                        headers={"content-type": "application/octet-stream"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(body).digest()
    request, _ = seen.predicts[-1]
    assert request.body.content_type == "application/octet-stream"
    assert not any(k.startswith("grpc-") for k in r.headers)  # no gRPC noise leaks to HTTP clients


async def test_a_body_above_a_mebibyte_passes(http, seen):
    body = bytes(range(256)) * (3 * 4096)  # 3 MiB
    r = await http.post("/models/echo/development/predict", content=body,
                        headers={"content-type": "application/x-custom-bin", "authorization": AUTH})
    assert r.status_code == 200
    assert r.content == body
    assert r.headers["content-type"] == "application/x-custom-bin"


async def test_a_body_over_the_limit_is_413_json(http, seen):
    r = await http.post("/models/echo/development/predict", content=b"x" * (MAX_BODY + 1),
                        headers={"authorization": AUTH})
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/json"
    assert "buffer size" in r.json()["error"]
    assert seen.predicts == []


async def test_streamed_chunks_arrive_before_the_stream_ends(http, seen):
    received: list[tuple[float, bytes]] = []
    async with http.stream("POST", "/models/stream/production/predict", content=b"{}") as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/x-ndjson"
        async for chunk in r.aiter_raw():
            received.append((time.monotonic(), chunk))
            seen.first_chunk_received.set()
    assert b"".join(c for _, c in received) == b'{"chunk": 0}\n{"chunk": 1}\n{"chunk": 2}\n'
    assert received[0][1] == b'{"chunk": 0}\n'
    assert received[0][0] < seen.last_chunk_produced_at


async def test_an_error_mid_stream_reaches_http11_clients_as_trailers(envoy, seen):
    # httpx does not expose HTTP/1.1 trailers; read the raw response.
    reader, writer = await asyncio.open_connection("127.0.0.1", envoy.rest)
    writer.write(b"POST /models/fail-mid-stream/production/predict HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    await writer.wait_closed()
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"partial" in rest
    trailers = rest.rsplit(b"\r\n0\r\n", 1)[1].lower()
    assert b"grpc-status: 13" in trailers
    assert b"grpc-message: model crashed mid-stream" in trailers


# --- REST: which fields a path binds ----------------------------------------------------------------


@pytest.mark.parametrize(("path", "host", "fields"), [
    ("/models/m1/development/predict", None, {"model_id": "m1", "target": "development"}),
    ("/models/m1/production/predict", None, {"model_id": "m1", "target": "production"}),
    ("/models/m1/environments/staging/predict", None, {"model_id": "m1", "environment": "staging"}),
    ("/models/m1/deployment/dep_42/predict", None, {"model_id": "m1", "deployment_id": "dep_42"}),
    ("/development/predict", "model-abc.example.com", {"target": "development"}),
    ("/production/predict", "model-abc.example.com", {"target": "production"}),
    ("/environments/staging/predict", "model-abc.example.com", {"environment": "staging"}),
    ("/deployment/dep_42/predict", "model-abc.example.com", {"deployment_id": "dep_42"}),
])
async def test_each_predict_route_binds_its_fields(http, seen, path, host, fields):
    headers = {"content-type": "application/json", **({"host": host} if host else {})}
    r = await http.post(path, content=b'{"a": 1}', headers=headers)
    assert r.status_code == 200, r.text
    assert r.content == b'{"a": 1}'
    request, metadata = seen.predicts[-1]
    got = {f: getattr(request, f) for f in ("model_id", "target", "environment", "deployment_id")}
    assert got == {"model_id": "", "target": "", "environment": "", "deployment_id": "", **fields}
    # The router takes the model id from the Host on the Host-addressed routes.
    assert metadata["x-kingpost-host"] == (host or f"127.0.0.1:{http.base_url.port}")


async def test_a_client_cannot_forge_the_host_or_internal_headers(http, seen):
    r = await http.post("/production/predict", content=b"{}", headers={
        "host": "model-abc.example.com", "x-kingpost-host": "model-evil.example.com",
        "x-kingpost-internal": "guess",
    })
    assert r.status_code == 200
    _, metadata = seen.predicts[-1]
    assert metadata["x-kingpost-host"] == "model-abc.example.com"
    assert "x-kingpost-internal" not in metadata


async def test_the_authorization_header_reaches_the_service_as_metadata(http, seen):
    await http.post("/models/m1/production/predict", content=b"{}",
                    headers={"authorization": "Api-Key kp_abc_secret"})
    await http.get("/v1/models", headers={"authorization": "Bearer kp_abc_secret"})
    assert seen.predicts[-1][1]["authorization"] == "Api-Key kp_abc_secret"
    assert seen.management[-1]["authorization"] == "Bearer kp_abc_secret"


# --- REST: errors -------------------------------------------------------------------------------------


async def test_not_found_is_404_with_the_message_intact(http, seen):
    r = await http.post("/models/missing/production/predict", content=b"{}")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"error": ODD_MESSAGE}
    assert not any(k.startswith("grpc-") or k == "x-http-status" for k in r.headers)


async def test_without_x_http_status_the_grpc_code_picks_the_status(http, seen):
    r = await http.post("/models/plain-not-found/production/predict", content=b"{}")
    assert (r.status_code, r.json()) == (404, {"error": "gone"})


@pytest.mark.parametrize(("model", "status", "message"), [
    ("too-large", 413, "input over 1 kB"),
    ("teapot", 418, "I'm a teapot"),
])
async def test_x_http_status_sets_the_exact_status(http, seen, model, status, message):
    r = await http.post(f"/models/{model}/production/predict", content=b"{}")
    assert (r.status_code, r.json()) == (status, {"error": message})


async def test_a_management_error_has_the_same_shape(http, seen):
    r = await http.get("/v1/models/nope")
    assert (r.status_code, r.json()) == (404, {"error": "model 'nope' not found"})


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/nope"),
    ("POST", "/models/m1/staging/predict"),  # not one of the four prefixes
    ("POST", "/kingpost.v1.SchedulerService/WatchRoutes"),
])
async def test_an_unknown_path_is_404_json(http, seen, method, path):
    r = await http.request(method, path, content=b"{}")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"error": f"Could not resolve {path} to a method."}  # names what was asked for
    assert seen.predicts == []


async def test_a_service_that_is_down_is_503_json(http, envoy):
    # No `seen` fixture: nothing listens on the router's port.
    r = await http.post("/models/m1/production/predict", content=b"{}")
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"].startswith("upstream connect error")  # Envoy's words: nothing answered


# --- REST: the key before the body ------------------------------------------------------------------


async def send_head_only(port: int, head: bytes, body_part: bytes = b"") -> bytes:
    """Send a request's head (and a first part of its body) and read the answer, never the rest."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + body_part)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)  # Envoy closes: the request was not read
    writer.close()
    return answer


@pytest.mark.parametrize("authorization", [b"", b"Authorization: Api-Key kp_wrong\r\n"])
async def test_a_big_body_without_a_valid_key_is_refused_before_it_is_sent(envoy, seen, authorization):
    declared = 90 * 1024 * 1024
    head = (b"POST /models/m1/production/predict HTTP/1.1\r\nHost: x\r\n" + authorization +
            b"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % declared)
    answer = await send_head_only(envoy.rest, head, b"\0" * 65536)  # 64 KiB of 90 MiB sent, no more
    status, _, body = answer.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 401")
    expected = "invalid API key" if authorization else "missing API key"
    assert expected in json.loads(body)["error"]
    assert seen.predicts == []


async def test_a_chunked_body_without_a_key_is_refused_too(envoy, seen):
    head = (b"POST /models/m1/production/predict HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    answer = await send_head_only(envoy.rest, head, b"10000\r\n" + b"\0" * 65536 + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 401")
    assert seen.predicts == []


async def test_a_big_body_with_a_valid_key_passes_whole(http, seen):
    body = bytes(range(256)) * (BIG // 256)
    r = await http.post("/models/echo/production/predict", content=body,
                        headers={"authorization": AUTH, "content-type": "application/x-custom-bin"})
    assert r.status_code == 200, r.text
    assert r.content == body


async def test_a_small_body_skips_the_check_and_reaches_the_router(http, seen):
    # No key, and still delivered: the router itself checks small bodies (this double does not).
    r = await http.post("/models/echo/production/predict", content=b"{}")
    assert r.status_code == 200
    assert len(seen.predicts) == 1


async def test_the_key_check_with_the_router_down_is_503_json(http, envoy):
    r = await http.post("/models/m1/production/predict", content=b"x" * BIG,
                        headers={"authorization": AUTH})
    assert r.status_code == 503
    assert r.json() == {"error": "the API key cannot be checked now (the router is starting or unreachable); "
                                 "try again"}


# --- REST: what gRPC could not carry -----------------------------------------------------------------


async def test_headers_over_32_kib_are_431_without_internals(http, seen):
    r = await http.get("/v1/models", headers={"x-big": "a" * 33 * 1024})
    assert (r.status_code, r.json()) == (431, {"error": "Request Header Fields Too Large"})
    assert seen.management == []


async def test_headers_grpc_would_refuse_by_default_pass_below_the_limit(http, seen):
    # Between 8 and 16 KiB gRPC's default limits refuse some calls, above 16 KiB all (429).
    for _ in range(5):
        r = await http.get("/v1/models", headers={"x-big": "a" * 20 * 1024})
        assert r.status_code == 200, r.text
    assert seen.management[-1]["x-big"] == "a" * 20 * 1024


@pytest.mark.parametrize("path", ["/models/%FF/production/predict", "/v1/models/caf%C3/logs",
                                  "/v1/models/x/logs?build_id=%ED%A0%80"])
async def test_a_path_that_is_not_utf8_is_400_naming_it(http, seen, path):
    predict = "predict" in path
    r = await http.request("POST" if predict else "GET", path, content=b"{}" if predict else None)
    assert r.status_code == 400
    assert r.json() == {"error": f"the path {path} is not valid UTF-8 once percent-decoded"}
    assert seen.predicts == []


async def test_a_percent_encoded_utf8_path_is_decoded(http, seen):
    r = await http.post("/models/caf%C3%A9/production/predict", content=b"{}")
    assert r.status_code == 200
    assert seen.predicts[-1][0].model_id == "café"


async def test_headers_grpc_cannot_carry_are_dropped_and_the_rest_arrive(http, seen):
    r = await http.post("/models/m1/production/predict", content=b"{}", headers=[
        ("x|odd", "1"), ("x-data-bin", "!!"), ("x-name", "José".encode()), ("x-plain", "kept")])
    assert r.status_code == 200, r.text
    _, metadata = seen.predicts[-1]
    assert metadata["x-plain"] == "kept"
    assert not {"x|odd", "x-data-bin", "x-name"} & set(metadata)


# --- REST: the OpenAPI document ------------------------------------------------------------------------


async def test_the_openapi_document_is_served_as_shipped_without_a_key(http, seen):
    r = await http.get("/v1/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.content == (DESCRIPTOR.parent / "openapi.json").read_bytes()
    assert r.json()["paths"]["/v1/openapi.json"]["get"]["operationId"] == "GetOpenApi"


# --- REST: management -----------------------------------------------------------------------------------


async def test_list_models_transcodes_to_json_with_snake_case_names(http, seen):
    r = await http.get("/v1/models")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    model = r.json()["models"][0]
    assert model["id"] == "mdl_1"
    assert model["production_deployment_id"] == "dep_9"
    assert model["development_deployment_id"] == ""  # primitives printed even when empty
    assert "productionDeploymentId" not in model


# --- gRPC listener ------------------------------------------------------------------------------------------


@pytest.fixture
async def channel(envoy: Ports) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{envoy.grpc}") as ch:
        yield ch


async def test_grpc_port_routes_predict_to_the_router(channel, seen):
    predict = channel.unary_stream(
        "/kingpost.v1.InferenceService/Predict",
        request_serializer=inference_pb2.PredictRequest.SerializeToString,
        response_deserializer=httpbody_pb2.HttpBody.FromString,
    )
    request = inference_pb2.PredictRequest(
        model_id="m1", target="production",
        body=httpbody_pb2.HttpBody(content_type="application/msgpack", data=b"\x81\xa1a\x01"))
    replies = [r async for r in predict(request, metadata=(("authorization", "Api-Key k"),
                                                             ("x-kingpost-internal", "guess")))]
    assert [(r.content_type, r.data) for r in replies] == [("application/msgpack", b"\x81\xa1a\x01")]
    got, metadata = seen.predicts[-1]
    assert got.model_id == "m1"
    assert metadata["authorization"] == "Api-Key k"
    assert "x-kingpost-internal" not in metadata


async def test_grpc_port_keeps_status_and_trailers(channel, seen):
    predict = channel.unary_stream(
        "/kingpost.v1.InferenceService/Predict",
        request_serializer=inference_pb2.PredictRequest.SerializeToString,
        response_deserializer=httpbody_pb2.HttpBody.FromString,
    )
    with pytest.raises(grpc.aio.AioRpcError) as e:
        [r async for r in predict(inference_pb2.PredictRequest(model_id="teapot"))]
    err = from_rpc_error(e.value)
    assert (type(err), err.http_status, err.message) == (errors.Internal, 418, "I'm a teapot")


async def test_grpc_port_routes_management_and_the_public_builder_methods(channel, seen):
    list_models = channel.unary_unary(
        "/kingpost.v1.ManagementService/ListModels",
        request_serializer=management_pb2.ListModelsRequest.SerializeToString,
        response_deserializer=management_pb2.ListModelsResponse.FromString,
    )
    assert (await list_models(management_pb2.ListModelsRequest())).models[0].name == "echo"
    get_build = channel.unary_unary(
        "/kingpost.v1.BuildService/GetBuild",
        request_serializer=builder_pb2.GetBuildRequest.SerializeToString,
        response_deserializer=builder_pb2.GetBuildResponse.FromString,
    )
    assert (await get_build(builder_pb2.GetBuildRequest(build_id="bld_1"))).build.build_id == "bld_1"


@pytest.mark.parametrize(("method", "request_type"), [
    ("/kingpost.v1.SchedulerService/WatchRoutes", scheduler_pb2.WatchRoutesRequest),
    ("/kingpost.v1.BuildService/FetchArtifact", builder_pb2.FetchArtifactRequest),
])
async def test_grpc_port_does_not_expose_internal_methods(channel, seen, method, request_type):
    call = channel.unary_stream(method, request_serializer=request_type.SerializeToString,
                                response_deserializer=lambda b: b)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        [r async for r in call(request_type())]
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


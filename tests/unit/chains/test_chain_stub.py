"""What a dependency stub sends: the dependency's deployment through the router, JSON by default,
msgpack with numpy arrays as raw bytes with use_binary=True (decoded by the runner's own codec)."""

import asyncio
import json
from collections.abc import AsyncIterator
from concurrent import futures

import grpc
import numpy as np
import pytest
from google.api import httpbody_pb2

import kingpost.chains as chains
from kingpost.chains.public_types import DeployedServiceDescriptor, RPCOptions
from kingpost.chains.signatures import read_endpoint
from kingpost.chains.stub import AsyncStub, SyncStub, _Target, calling_for, make_stub
from kingpost.v1 import inference_pb2_grpc
from kingpost_runner import codec


class Scale(chains.ChainletBase):
    async def run_remote(self, a: chains.NumpyArrayField, factor: float = 2.0) -> chains.NumpyArrayField:
        return chains.NumpyArrayField(a.array * factor)


class Echo(chains.ChainletBase):
    def run_remote(self, text: str) -> str:
        return text


class Words(chains.ChainletBase):
    async def run_remote(self, text: str) -> AsyncIterator[str]:
        yield text


def target(use_binary: bool, deployment_id: str = "dep_1", target: str = "") -> _Target:
    descriptor = DeployedServiceDescriptor(name="Scale", display_name="Scale", model="mdl_1",
                                           deployment_id=deployment_id, target=target,
                                           options=RPCOptions(use_binary=use_binary))
    return _Target(descriptor, read_endpoint(Scale), "127.0.0.1:1", "kp_key")


def test_json_requests_name_the_pinned_deployment_and_carry_the_key():
    t = target(use_binary=False)
    array = np.arange(4, dtype=np.int16)
    request = t.request({"a": array})
    assert (request.model_id, request.deployment_id, request.target) == ("mdl_1", "dep_1", "")
    assert request.body.content_type == "application/json"
    assert json.loads(request.body.data)["a"]["shape"] == [4]
    assert t.metadata == (("authorization", "Api-Key kp_key"),)
    dev = target(use_binary=False, deployment_id="", target="development").request({"a": array})
    assert (dev.deployment_id, dev.target) == ("", "development")


def test_binary_requests_send_numpy_arrays_raw_and_the_runner_decodes_them_bit_exact():
    array = (np.arange(12, dtype=np.float64).reshape(3, 4) / 3)
    request = target(use_binary=True).request({"a": array, "factor": 0.5})
    assert request.body.content_type == "application/octet-stream"
    assert array.tobytes() in request.body.data  # no base64
    decoded = codec.decode_body(request.body.data, request.body.content_type)
    assert np.array_equal(decoded["a"], array) and decoded["a"].dtype == array.dtype
    assert decoded["factor"] == 0.5


def test_the_stub_is_async_or_sync_as_the_dependency_is():
    descriptor = DeployedServiceDescriptor(name="X", display_name="X", model="m", deployment_id="d")
    assert isinstance(make_stub(descriptor, read_endpoint(Scale), "a:1", "k"), AsyncStub)
    assert isinstance(make_stub(descriptor, read_endpoint(Echo), "a:1", "k"), SyncStub)


def test_a_call_made_while_answering_a_request_passes_on_its_trace_and_request_id():
    """Through a real gRPC server standing in for the router: the metadata it receives."""
    seen: list[dict[str, str]] = []

    class Router(inference_pb2_grpc.InferenceServiceServicer):
        def Predict(self, request, context):  # noqa: N802
            seen.append(dict(context.invocation_metadata()))
            yield httpbody_pb2.HttpBody(content_type="application/json", data=b'"done"')

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(Router(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        descriptor = DeployedServiceDescriptor(name="Echo", display_name="Echo", model="m", deployment_id="d")
        sync, asynchronous, streaming = (make_stub(descriptor, read_endpoint(cls), f"127.0.0.1:{port}", "kp_key")
                                         for cls in (Echo, Scale, Words))
        caller = {"traceparent": f"00-{'a' * 32}-{'b' * 16}-01", "x-baseten-request-id": "req-1", "accept": "x"}

        async def answer() -> None:  # as ChainletModel.predict runs run_remote: sync ones in a thread
            with calling_for(caller):
                await asyncio.to_thread(sync.run_remote, "hi")
                with pytest.raises(Exception):  # "done" is no array: the call was made all the same
                    await asynchronous.run_remote(np.arange(2))
                assert [chunk async for chunk in streaming.run_remote("a")] == ['"done"']

        asyncio.run(answer())
        sync.run_remote("outside")
    finally:
        server.stop(None)
    assert [{k: m.get(k) for k in ("traceparent", "x-baseten-request-id", "accept", "authorization")}
            for m in seen] == [{"traceparent": caller["traceparent"], "x-baseten-request-id": "req-1",
                                "accept": None, "authorization": "Api-Key kp_key"}] * 3 + [
        {"traceparent": None, "x-baseten-request-id": None, "accept": None, "authorization": "Api-Key kp_key"}]

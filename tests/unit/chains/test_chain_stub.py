"""What a dependency stub sends: the dependency's deployment through the router, JSON by default,
msgpack with numpy arrays as raw bytes with use_binary=True (decoded by the runner's own codec)."""

import json

import numpy as np

import kingpost.chains as chains
from kingpost.chains.public_types import DeployedServiceDescriptor, RPCOptions
from kingpost.chains.signatures import read_endpoint
from kingpost.chains.stub import AsyncStub, SyncStub, _Target, make_stub
from kingpost_runner import codec


class Scale(chains.ChainletBase):
    async def run_remote(self, a: chains.NumpyArrayField, factor: float = 2.0) -> chains.NumpyArrayField:
        return chains.NumpyArrayField(a.array * factor)


class Echo(chains.ChainletBase):
    def run_remote(self, text: str) -> str:
        return text


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

"""The Triton runner's pure parts: requests checked and rewritten before Triton sees them, Triton's
answers turned into the platform's errors, tritonserver's command line, the V2 gRPC call's routing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kingpost import errors
from kingpost.triton_install import TritonHome
from kingpost_router import v2_grpc
from kingpost_runner import triton_process
from kingpost_runner.triton_runner import check_inputs, http_error, json_outputs

DECLARED = {"INPUT0": {"name": "INPUT0", "datatype": "FP32", "shape": [-1, 4]},
            "INPUT1": {"name": "INPUT1", "datatype": "FP32", "shape": [-1, 4]}}


def test_a_wrong_input_name_or_dtype_is_named_with_what_the_model_takes() -> None:
    check_inputs("add_sub", {"inputs": [{"name": "INPUT0", "datatype": "FP32"}]}, DECLARED)
    with pytest.raises(errors.InvalidArgument, match=r"inputs\[0\]: model 'add_sub' has no input 'X'; its "
                                                     r"inputs are INPUT0, INPUT1"):
        check_inputs("add_sub", {"inputs": [{"name": "X", "datatype": "FP32"}]}, DECLARED)
    with pytest.raises(errors.InvalidArgument, match=r"inputs\[1\] \(INPUT1\): datatype 'INT32', but model "
                                                     r"'add_sub' takes FP32"):
        check_inputs("add_sub", {"inputs": [{"name": "INPUT0", "datatype": "FP32"},
                                            {"name": "INPUT1", "datatype": "INT32"}]}, DECLARED)


def test_v2_rest_bodies_ask_for_json_outputs_and_keep_their_binary_tensors() -> None:
    header = json.dumps({"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 4],
                                     "parameters": {"binary_data_size": 16}}],
                         "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": True}}]}).encode()
    tensor = bytes(range(16))
    body, headers = json_outputs(header + tensor, str(len(header)), "/v2/models/add_sub/infer",
                                 {"add_sub": DECLARED})
    new_length = int(headers["Inference-Header-Content-Length"])
    rewritten = json.loads(body[:new_length])
    assert body[new_length:] == tensor
    assert rewritten["parameters"] == {"binary_data_output": False}
    assert rewritten["outputs"] == [{"name": "OUTPUT0", "parameters": {}}]
    plain, headers = json_outputs(b'{"inputs": []}', None)
    assert json.loads(plain)["parameters"] == {"binary_data_output": False}
    assert "Inference-Header-Content-Length" not in headers
    with pytest.raises(errors.InvalidArgument, match="does not parse"):
        json_outputs(b"{nope", None)


def test_tritons_http_answers_become_the_platforms_errors() -> None:
    refused = http_error(400, b'{"error": "unexpected inference input \'X\'"}')
    assert isinstance(refused, errors.InvalidArgument) and refused.message == "unexpected inference input 'X'"
    assert isinstance(http_error(404, b'{"error": "no model"}'), errors.NotFound)
    assert isinstance(http_error(500, b"not json"), errors.ModelError)


def test_load_errors_are_tritons_reasons_for_the_models_it_did_not_load() -> None:
    index = [{"name": "a", "version": "1", "state": "READY"},
             {"name": "b", "version": "1", "state": "UNAVAILABLE", "reason": "unable to find backend 'x'"}]
    assert triton_process.load_errors(index, ["a", "b"]) == [
        "Triton could not load model 'b' version 1: unable to find backend 'x'"]
    assert not triton_process.all_ready(index, ["a", "b"]) and triton_process.all_ready(index, ["a"])


def test_tritonserver_loads_only_the_repositorys_models_on_loopback_ports() -> None:
    home = TritonHome(Path("/opt/t"))
    argv = triton_process.argv(home, Path("/art"), ["add_sub"], triton_process.Ports(1, 2, 3))
    assert argv[0] == "/opt/t/site/pytriton/tritonserver/bin/tritonserver"
    assert {"--model-control-mode=explicit", "--load-model=add_sub", "--http-address=127.0.0.1",
            "--http-port=1", "--grpc-port=2", "--metrics-port=3", "--exit-on-error=false"} <= set(argv)
    env = triton_process.env(home, {"PATH": "/usr/bin", "PYTHONPATH": "/x"})
    assert env["PATH"] == "/opt/t/python-env/bin:/usr/bin" and "PYTHONPATH" not in env
    assert env["LD_LIBRARY_PATH"] == "/opt/t/site/nvidia_pytriton.libs"


def test_a_v2_grpc_call_is_routed_by_its_metadata() -> None:
    call = v2_grpc.call_of("ModelInfer", b"raw", (("kingpost-model", "m"), ("kingpost-environment", "staging")))
    assert (call.model_id, call.environment, call.deployment_id, call.v2_path) == (
        "m", "staging", "", "/inference.GRPCInferenceService/ModelInfer")
    assert call.body.data == b"raw"
    with pytest.raises(errors.InvalidArgument, match="kingpost-model"):
        v2_grpc.call_of("ModelInfer", b"raw", ())


def test_msgpack_numpy_arrays_become_binary_v2_tensors_and_back() -> None:
    import msgpack
    import msgpack_numpy
    import numpy as np

    from kingpost_runner import v2_msgpack

    a = np.arange(4, dtype=np.float32).reshape(1, 4)
    model, body, length = v2_msgpack.request(msgpack.packb({"inputs": {"INPUT0": a}}, default=msgpack_numpy.encode))
    header = json.loads(body[:length])
    assert model is None and body[length:] == a.tobytes()
    assert header["inputs"] == [{"name": "INPUT0", "shape": [1, 4], "datatype": "FP32",
                                 "parameters": {"binary_data_size": 16}}]
    answer = json.dumps({"model_name": "m", "model_version": "1", "outputs": [
        {"name": "OUTPUT0", "datatype": "FP32", "shape": [1, 4], "parameters": {"binary_data_size": 16}}]}).encode()
    reply = msgpack.unpackb(v2_msgpack.response(answer + (a * 2).tobytes(), str(len(answer))),
                            object_hook=msgpack_numpy.decode)
    np.testing.assert_array_equal(reply["outputs"]["OUTPUT0"], a * 2)
    with pytest.raises(errors.InvalidArgument, match=r"inputs.INPUT0: dtype '\|O'|inputs.INPUT0: must be"):
        v2_msgpack.request(msgpack.packb({"inputs": {"INPUT0": [1, 2]}}))
    with pytest.raises(errors.InvalidArgument, match="not msgpack"):
        v2_msgpack.request(b"\xc1")


def test_a_stream_request_asks_for_the_final_response_that_ends_its_responses() -> None:
    from tritonclient.grpc import service_pb2

    from kingpost_runner import v2_stream

    request = service_pb2.ModelInferRequest(model_name="countdown")
    request.parameters["priority"].int64_param = 3
    data = request.SerializeToString()
    assert not v2_stream.asks_final(data)
    asked = v2_stream.with_final_response(data)
    parsed = service_pb2.ModelInferRequest.FromString(asked)  # still Triton's message, one key more
    assert parsed.parameters["triton_enable_empty_final_response"].bool_param is True
    assert parsed.parameters["priority"].int64_param == 3 and v2_stream.asks_final(asked)

    output = service_pb2.ModelStreamInferResponse()
    output.infer_response.outputs.add(name="OUT", datatype="INT32")
    final = service_pb2.ModelStreamInferResponse()
    final.infer_response.parameters["triton_final_response"].bool_param = True
    error = service_pb2.ModelStreamInferResponse(error_message="bad input")
    assert [v2_stream.is_final(m.SerializeToString()) for m in (output, final, error)] == [False, True, True]
    assert [v2_stream.has_content(m.SerializeToString()) for m in (output, final, error)] == [True, False, True]


def test_tritons_metrics_of_several_replicas_merge_into_one_family_each_labelled(tmp_path: Path) -> None:
    from kingpost_worker_agent.replica_state import ReplicaSpec
    from kingpost_worker_agent.replica_metrics import TRITON_PORT_FILE as PORT_FILE
    from kingpost_worker_agent.replica_metrics import ReplicaMetrics

    text = ("# HELP nv_inference_count Number of inferences performed\n# TYPE nv_inference_count counter\n"
            'nv_inference_count{model="add_sub",version="1"} 7\n')
    areas = []
    for i in range(3):
        area = tmp_path / f"rep_{i}"
        area.mkdir()
        if i < 2:  # the third is a Truss: no port file
            (area / PORT_FILE).write_text(str(9000 + i))
        areas.append((ReplicaSpec(f"rep_{i}", "dep_1", "mdl_1"), area))
    collected = list(ReplicaMetrics(lambda: areas, fetch=lambda port: text if port == 9000 else None).collect())
    (family,) = collected
    assert family.name == "nv_inference_count" and family.type == "counter"
    assert [(s.labels, s.value) for s in family.samples] == [
        ({"model": "add_sub", "version": "1", "model_id": "mdl_1", "deployment_id": "dep_1",
          "replica_id": "rep_0"}, 7.0)]


def test_the_python_backends_environment_sees_the_deployments_packages_first(tmp_path: Path) -> None:
    home = TritonHome(tmp_path / "triton")
    root = triton_process.stub_environment(tmp_path / "work", home, "/envs/dep/site-packages")
    assert (root / "bin" / "python3").resolve() == Path("/usr/bin/python3.11").resolve()
    assert "home = /usr/bin" in (root / "pyvenv.cfg").read_text()
    pth = (root / "lib" / "python3.11" / "site-packages" / "kingpost-deployment.pth").read_text().split()
    assert pth == ["/envs/dep/site-packages", str(home.python_env / "lib" / "python3.11" / "site-packages")]
    assert triton_process.env(home, {"PATH": "/usr/bin"}, root)["PATH"] == f"{root}/bin:/usr/bin"

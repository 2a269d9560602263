"""A Triton model repository through the whole platform, served by a real tritonserver on the CPU.

`kingpost push` of tests/trusses/triton_add_sub (a Python-backend model with dynamic batching), then
the three faces a user calls it by, each through Envoy and the router: predict with V2 JSON, the V2
REST protocol with tritonclient's HTTP client (binary tensors included), and V2 gRPC with
tritonclient's gRPC client; Triton's refusals as 400s with Triton's words; scale to zero and back;
and a repository Triton rejects ends FAILED with Triton's own message.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import tomllib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgpack
import msgpack_numpy
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.utils import InferenceServerException

from kingpost.triton_install import HOME_ENV, TritonHome
from tests.e2e.test_truss_compat import TRUSSES, Platform, platform_up
from tests.e2e.test_up import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

REPO_TOOLS = Path(__file__).resolve().parents[2] / ".tools" / "triton"
A = np.array([[1, 2, 3, 4]], dtype=np.float32)
B = np.array([[10, 10, 10, 10]], dtype=np.float32)


def triton_home() -> Path:
    root = Path(os.environ.get(HOME_ENV) or REPO_TOOLS)
    missing = TritonHome(root).missing()
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"no tritonserver under CI: {missing} (make test installs it)")
        pytest.skip(f"no tritonserver: {missing}")
    return root


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform_up(tmp_path_factory, "triton", env={HOME_ENV: str(triton_home())}) as platform:
        yield platform


@pytest.fixture(scope="module")
def deployment(platform: Platform) -> tuple[str, str]:
    result = platform.push("triton_add_sub", "--publish")
    assert result["deployment"]["status"] == "ACTIVE", result
    return result["model"]["id"], result["deployment"]["id"]


@pytest.fixture(scope="module")
def add_sub(deployment: tuple[str, str]) -> str:
    """The published deployment's REST prefix (/models/{id}/deployment/{id})."""
    return f"/models/{deployment[0]}/deployment/{deployment[1]}"


def cli(platform: Platform, *args: str) -> dict[str, Any]:
    done = run_cli(platform.home, *args, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def v2_json(a: np.ndarray, b: np.ndarray, **extra: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "INPUT0", "shape": list(a.shape), "datatype": "FP32", "data": a.ravel().tolist()},
                       {"name": "INPUT1", "shape": list(b.shape), "datatype": "FP32", "data": b.ravel().tolist()}],
            **extra}


def grpc_infer(platform: Platform, deployment: tuple[str, str], a: np.ndarray = A, b: np.ndarray = B,
               name: str = "INPUT0") -> triton_grpc.InferResult:
    with triton_grpc.InferenceServerClient(platform.grpc_address) as client:
        inputs = [triton_grpc.InferInput(name, list(a.shape), "FP32"),
                  triton_grpc.InferInput("INPUT1", list(b.shape), "FP32")]
        inputs[0].set_data_from_numpy(a)
        inputs[1].set_data_from_numpy(b)
        return client.infer("add_sub", inputs, headers={"kingpost-model": deployment[0], "kingpost-deployment": deployment[1],
                                                        "authorization": f"Api-Key {platform.key}"},
                            client_timeout=120)


def test_predict_takes_v2_json_and_msgpack_and_refuses_bad_tensors_with_tritons_words(platform: Platform, add_sub: str
                                                                          ) -> None:
    reply = platform.http.post(f"{add_sub}/predict", json=v2_json(A, B))
    assert reply.status_code == 200, reply.text
    outputs = {o["name"]: o for o in reply.json()["outputs"]}
    assert outputs["OUTPUT0"]["data"] == [11, 12, 13, 14] and outputs["OUTPUT1"]["shape"] == [1, 4]
    wrong_name = v2_json(A, B)
    wrong_name["inputs"][0]["name"] = "INPUTX"
    refused = platform.http.post(f"{add_sub}/predict", json=wrong_name)
    assert refused.status_code == 400 and "INPUTX" in refused.json()["error"], refused.text
    wrong_dtype = v2_json(A, B)
    wrong_dtype["inputs"][1]["datatype"] = "INT32"
    refused = platform.http.post(f"{add_sub}/predict", json=wrong_dtype)
    assert refused.status_code == 400 and "INT32" in refused.json()["error"], refused.text
    packed = msgpack.packb({"inputs": {"INPUT0": A, "INPUT1": B}}, default=msgpack_numpy.encode)
    reply = platform.http.post(f"{add_sub}/predict", content=packed,
                               headers={"Content-Type": "application/octet-stream"})
    assert reply.status_code == 200, reply.text
    outputs = msgpack.unpackb(reply.content, object_hook=msgpack_numpy.decode)["outputs"]
    np.testing.assert_array_equal(outputs["OUTPUT0"], A + B)  # numpy arrays back, no base64
    wrong_shape = v2_json(np.ones((1, 3), np.float32), np.ones((1, 3), np.float32))
    refused = platform.http.post(f"{add_sub}/predict", json=wrong_shape)
    assert refused.status_code == 400 and "shape" in refused.json()["error"], refused.text


def test_tritonclient_http_speaks_v2_rest_through_kingpost(platform: Platform, add_sub: str) -> None:
    import tritonclient.http as triton_http  # here: it loads gevent, which no other test needs

    url = platform.url.removeprefix("http://") + add_sub
    client = triton_http.InferenceServerClient(url, network_timeout=120)
    try:
        inputs = [triton_http.InferInput("INPUT0", [1, 4], "FP32"), triton_http.InferInput("INPUT1", [1, 4], "FP32")]
        inputs[0].set_data_from_numpy(A)  # binary tensors, tritonclient's default
        inputs[1].set_data_from_numpy(B, binary_data=False)
        result = client.infer("add_sub", inputs, headers={"Authorization": f"Api-Key {platform.key}"})
        np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), A + B)
        np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), A - B)
        with pytest.raises(InferenceServerException, match="no model 'nosuch'|nosuch"):
            client.infer("nosuch", inputs, headers={"Authorization": f"Api-Key {platform.key}"})
    finally:
        client.close()


def test_tritonclient_grpc_speaks_v2_grpc_through_kingpost(platform: Platform, deployment: tuple[str, str]
                                                           ) -> None:
    result = grpc_infer(platform, deployment)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), A + B)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), A - B)
    with pytest.raises(InferenceServerException, match="INPUTX") as refused:
        grpc_infer(platform, deployment, name="INPUTX")
    assert refused.value.status() == "StatusCode.INVALID_ARGUMENT"
    with triton_grpc.InferenceServerClient(platform.grpc_address) as client:  # no kingpost-model: named
        inputs = [triton_grpc.InferInput("INPUT0", [1, 4], "FP32")]
        inputs[0].set_data_from_numpy(A)
        with pytest.raises(InferenceServerException, match="kingpost-model"):
            client.infer("add_sub", inputs, headers={"authorization": f"Api-Key {platform.key}"})


def test_a_truss_answers_v2_calls_with_404(platform: Platform) -> None:
    echo = platform.push("echo")["model"]["id"]
    reply = platform.http.post(f"/models/{echo}/development/v2/models/x/infer", json=v2_json(A, B))
    assert reply.status_code == 404 and "Triton" in reply.json()["error"], reply.text


def test_scales_to_zero_and_a_v2_grpc_call_wakes_it(platform: Platform, deployment: tuple[str, str]) -> None:
    model_id, deployment_id = deployment
    reply = cli(platform, "autoscaling", "set", model_id, "--deployment", deployment_id, "--min-replica=0",
                "--autoscaling-window=10", "--scale-down-delay=3")
    assert reply["status"] == "ACCEPTED", reply
    deadline = time.monotonic() + 120
    while cli(platform, "autoscaling", "get", model_id, "--deployment", deployment_id)["status"] != "SCALED_TO_ZERO":
        assert time.monotonic() < deadline, "never scaled to zero"
        time.sleep(0.5)
    started = time.monotonic()
    result = grpc_infer(platform, deployment)  # held through tritonserver's cold start, then answered
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), A + B)
    print(f"cold start through a V2 gRPC call: {time.monotonic() - started:.2f} s")


def test_a_model_triton_cannot_load_ends_failed_with_tritons_message(platform: Platform, tmp_path: Path
                                                                     ) -> None:
    repo = tmp_path / "brokenload"
    shutil.copytree(TRUSSES / "triton_add_sub", repo)
    (repo / "config.yaml").unlink()  # optional: the model is named after the folder
    model = repo / "add_sub" / "1" / "model.py"
    model.write_text(model.read_text().replace(
        "class TritonPythonModel:\n", "class TritonPythonModel:\n    def initialize(self, args):\n"
        "        raise ValueError('weights are corrupt')\n\n"))
    done = run_cli(platform.home, "push", str(repo), "--publish", "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "weights are corrupt" in done.stdout + done.stderr
    failed = cli(platform, "deployments", "list", "brokenload")["deployments"][0]
    assert failed["status"] == "FAILED"
    shown = json.dumps(cli(platform, "deployments", "get", "brokenload", failed["id"]))
    assert "Triton could not load model 'add_sub'" in shown and "weights are corrupt" in shown, shown


def test_a_backend_the_platforms_triton_lacks_fails_the_push_naming_file_and_field(platform: Platform,
                                                                                  tmp_path: Path) -> None:
    repo = tmp_path / "nobackend"
    shutil.copytree(TRUSSES / "triton_add_sub", repo)
    config = repo / "add_sub" / "config.pbtxt"
    config.write_text(config.read_text().replace('backend: "python"', 'backend: "nosuchbackend"'))
    done = run_cli(platform.home, "push", str(repo))
    assert done.returncode == 1
    assert "add_sub/config.pbtxt: backend: 'nosuchbackend'" in done.stderr and "Traceback" not in done.stderr


def test_a_config_pbtxt_that_does_not_parse_fails_the_push_naming_file_and_line(platform: Platform,
                                                                                tmp_path: Path) -> None:
    repo = tmp_path / "broken"
    shutil.copytree(TRUSSES / "triton_add_sub", repo)
    (repo / "add_sub" / "config.pbtxt").write_text('name: "add_sub"\nbackend: "python"\nmax_batch_size: x\n')
    done = run_cli(platform.home, "push", str(repo))
    assert done.returncode == 1
    assert "add_sub/config.pbtxt does not parse: 3:" in done.stderr and "Traceback" not in done.stderr


def test_deployments_get_shows_the_models_and_their_dynamic_batcher(platform: Platform,
                                                                   deployment: tuple[str, str]) -> None:
    shown = cli(platform, "deployments", "get", *deployment)
    assert shown["triton"] == ("add_sub: backend python, versions 1, max_batch_size 64, "
                               "dynamic_batching {max_queue_delay_microseconds: 1000}"), shown
    assert shown["predict_concurrency"] == 64  # Triton queues and batches; the router does not hold back
    text = run_cli(platform.home, "deployments", "get", *deployment)
    assert "triton: add_sub: backend python" in text.stdout, text.stdout + text.stderr


def test_a_decoupled_model_streams_through_the_router_response_by_response(platform: Platform) -> None:
    result = platform.push(TRUSSES / "triton_stream")  # no config.yaml: named after its folder
    model_id = result["model"]["id"]
    arrived: list[tuple[float, Any]] = []
    done = threading.Event()

    def on_response(result: Any, error: Any) -> None:
        if error is not None:
            arrived.append((time.monotonic(), error))
            done.set()
            return
        final = result.get_response().parameters.get("triton_final_response")
        if final is not None and final.bool_param:
            done.set()
            return
        arrived.append((time.monotonic(), int(result.as_numpy("OUT")[0])))

    with triton_grpc.InferenceServerClient(platform.grpc_address) as client:
        client.start_stream(on_response, headers={"kingpost-model": model_id, "kingpost-target": "development",
                                                  "authorization": f"Api-Key {platform.key}"})
        n = triton_grpc.InferInput("N", [1], "INT32")
        n.set_data_from_numpy(np.array([4], dtype=np.int32))
        started = time.monotonic()
        client.async_stream_infer("countdown", [n], enable_empty_final_response=True)
        assert done.wait(60), arrived
        client.stop_stream()
    assert [value for _, value in arrived] == [0, 1, 2, 3], arrived
    # each response as the model sent it (0.3 s apart), not all at the end
    assert arrived[0][0] - started < arrived[-1][0] - started - 0.6, [t - started for t, _ in arrived]


def test_tritons_own_metrics_reach_the_agents_metrics_with_the_deployments_labels(
        platform: Platform, deployment: tuple[str, str]) -> None:
    for _ in range(3):
        grpc_infer(platform, deployment)
    port = tomllib.loads((platform.home / "run" / "agent.toml").read_text())["metrics_port"]
    labels = {"model_id": deployment[0], "deployment_id": deployment[1], "model": "add_sub", "version": "1"}
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text):
        for sample in family.samples:
            if labels.items() <= sample.labels.items():
                found[sample.name] = found.get(sample.name, 0) + sample.value
    assert found.get("nv_inference_request_success_total", 0) >= 3, found  # Triton's counters, as counters
    assert found.get("nv_inference_exec_count_total", 0) >= 1 and "nv_inference_count_total" in found, found


def versioned_repo(tmp_path: Path, offset: int) -> Path:
    """The example with OUTPUT0 = INPUT0 + INPUT1 + offset: which deployment answered shows."""
    repo = tmp_path / f"canary{offset}"
    shutil.copytree(TRUSSES / "triton_add_sub", repo)
    (repo / "config.yaml").write_text("model_name: triton-canary\n")
    model = repo / "add_sub" / "1" / "model.py"
    model.write_text(model.read_text().replace('pb_utils.Tensor("OUTPUT0", a + b)',
                                               f'pb_utils.Tensor("OUTPUT0", a + b + {offset})'))
    return repo


def test_a_triton_deployment_takes_part_in_a_canary_promotion(platform: Platform, tmp_path: Path) -> None:
    d1 = platform.push(versioned_repo(tmp_path, 100), "--publish")
    d2 = platform.push(versioned_repo(tmp_path, 200), "--publish")
    model_id = d1["model"]["id"]
    cli(platform, "deployments", "promote", model_id, d1["deployment"]["id"])
    answers: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:  # V2 gRPC to production, as a Triton user calls it
        with triton_grpc.InferenceServerClient(platform.grpc_address) as client:
            while not stop.is_set():
                inputs = [triton_grpc.InferInput("INPUT0", [1, 4], "FP32"),
                          triton_grpc.InferInput("INPUT1", [1, 4], "FP32")]
                inputs[0].set_data_from_numpy(A)
                inputs[1].set_data_from_numpy(B)
                try:
                    result = client.infer("add_sub", inputs, headers={
                        "kingpost-model": model_id, "authorization": f"Api-Key {platform.key}"})
                except InferenceServerException as e:
                    failures.append(str(e))
                    time.sleep(0.1)
                    continue
                answers.append(int(result.as_numpy("OUTPUT0")[0, 0] - (A + B)[0, 0]))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 60
        while answers[-10:] != [100] * 10:
            assert time.monotonic() < deadline, (answers[-10:], failures[:3])
            time.sleep(0.2)
        cli(platform, "environments", "promote", model_id, "production", d2["deployment"]["id"],
            "--canary-duration", "10", "--no-wait")
        deadline = time.monotonic() + 120
        while answers[-20:] != [200] * 20:
            assert time.monotonic() < deadline, (answers[-20:], failures[:3])
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join()
    moved = answers[answers.index(200) - 1:] if 200 in answers else []
    assert 100 in moved and 200 in moved  # both answered while traffic moved, then only the candidate
    assert not failures, failures[:5]


def test_a_python_backend_imports_the_requirements_its_config_yaml_names(platform: Platform,
                                                                          tmp_path: Path) -> None:
    repo = tmp_path / "withsix"
    shutil.copytree(TRUSSES / "triton_add_sub", repo)
    (repo / "config.yaml").write_text("model_name: triton-six\nrequirements:\n  - six==1.16.0\n")
    model = repo / "add_sub" / "1" / "model.py"
    model.write_text("import six\n" + model.read_text().replace(
        'pb_utils.Tensor("OUTPUT0", a + b)', 'pb_utils.Tensor("OUTPUT0", a + b + int(six.__version__.split(".")[1]))'))
    result = platform.push(repo, "--publish")
    assert result["deployment"]["status"] == "ACTIVE", result
    answer = grpc_infer(platform, (result["model"]["id"], result["deployment"]["id"]))
    np.testing.assert_array_equal(answer.as_numpy("OUTPUT0"), A + B + 16)  # six 1.16, from the lock

"""Truss directories deploy unchanged through the whole platform and answer as truss's server does.

On the `kingpost up` that several modules share (tests/e2e/conftest.py); each test pushes a Truss from
tests/trusses with the CLI, as a user would, and calls it over REST through Envoy (router → runner).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import httpx
import msgpack
import msgpack_numpy
import numpy as np
import pytest
from google.api import httpbody_pb2

from kingpost.v1 import inference_pb2, inference_pb2_grpc
from tests.e2e.test_up import Up, free_port, proc_stat, descendants, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

TRUSSES = Path(__file__).resolve().parents[1] / "trusses"


API_TOKEN = ("api_token", "compat-token-value")


class Platform:
    def __init__(self, home: Path, rest: int, grpc_port: int) -> None:
        self.home = home
        self.url = f"http://127.0.0.1:{rest}"
        self.grpc_address = f"127.0.0.1:{grpc_port}"  # Envoy's gRPC listener, as `kingpost up` prints it
        config = (home / "config.toml").read_text()
        self.key = next(line.split('"')[1] for line in config.splitlines() if line.startswith("api_key"))
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": f"Api-Key {self.key}"},
                                 timeout=60.0)
        # tests/trusses/echo declares `api_token: null`: a push needs it set (it has no default).
        done = run_cli(home, "secrets", "set", API_TOKEN[0], input=API_TOKEN[1])
        assert done.returncode == 0, done.stderr

    def push(self, truss: str | Path, *args: str) -> dict[str, Any]:
        # The development deployment unless a published one is asked for (a plain push publishes).
        mode = () if {"--publish", "--environment"} & set(args) else ("--development",)
        done = run_cli(self.home, "push", str(TRUSSES / truss if isinstance(truss, str) else truss), "--json",
                       *mode, *args)
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    def predict(self, model: str, body: Any = None, **kw: Any) -> httpx.Response:
        path = f"/models/{urllib.parse.quote(model)}/development/predict"
        if body is not None:
            kw["json"] = body
        return self.http.post(path, **kw)


@contextmanager
def platform_up(tmp_path_factory: pytest.TempPathFactory, name: str,
                env: dict[str, str] | None = None) -> Iterator[Platform]:
    """A `kingpost up` of its own (home under a fresh `name` directory), stopped with Ctrl-C after: it
    must exit 0, and nothing it started may remain."""
    home = tmp_path_factory.mktemp(name) / "home"
    rest, grpc = free_port(), free_port()
    up = Up(home, rest, grpc, env=env)
    seen: dict[int, str] = {}
    try:
        up.wait_for_curl()
        platform = Platform(home, rest, grpc)
        yield platform
        platform.http.close()
        seen = descendants(up.process.pid)
        assert up.stop() == 0
    finally:
        if up.process.poll() is None or any(proc_stat(p) for p in seen):
            up.kill_everything(set(seen) | set(descendants(up.process.pid)))


def test_echo_deploys_with_its_display_name_config_secrets_and_env(platform: Platform) -> None:
    result = platform.push("echo")
    assert result["model"]["name"] == "Test Echo"
    assert platform.predict("Test Echo", {"a": [1, 2]}).json() == {"a": [1, 2]}
    described = platform.predict(result["model"]["id"], {"describe": "with_default"}).json()
    assert described["model_name"] == "Test Echo"
    assert described["secret"] == "default-value"
    # A value set with `kingpost secrets set` (over config.yaml's null placeholder).
    assert platform.predict(result["model"]["id"], {"describe": "api_token"}).json()["secret"] == API_TOKEN[1]
    assert described["env"] == ["true", "42"]


def test_push_shows_the_build_log_as_it_happens(platform: Platform) -> None:
    done = run_cli(platform.home, "push", str(TRUSSES / "async_methods"), "--development")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    shown = [line for line in lines if line.startswith("  | ")]
    assert any("received" in line for line in shown) and any("build succeeded" in line for line in shown)
    # the log comes before the build's verdict, not after it
    assert lines.index(shown[-1]) < next(i for i, line in enumerate(lines) if line.startswith("Build bld_"))


def test_async_pre_predict_post(platform: Platform) -> None:
    platform.push("async_methods")
    assert platform.predict("Test Async", {"x": 1}).json() == {
        "postprocess_value": "value", "loaded": True, "preprocess_value": "value", "x": 1}


def test_a_generator_streams_chunks_as_they_are_produced(platform: Platform, tmp_path: Path) -> None:
    platform.push("streaming_sync")
    assert platform.predict("Test Streaming", {"n": 3}).content == b"012"
    gathered = platform.predict("Test Streaming", {"n": 3}, headers={"Accept": "application/json"})
    assert gathered.json() == "012"
    # The model makes chunk 1 only once the test holds chunk 0 (it waits for the file the test writes
    # then): chunk 0 must come through before the generator has produced the rest.
    released = tmp_path / "rest-released"
    with platform.http.stream("POST", "/models/Test%20Streaming/development/predict",
                              json={"n": 3, "hold_until": str(released)}) as response:
        assert response.status_code == 200
        chunks = response.iter_raw()
        first = next(chunks)
        released.touch()
        rest = b"".join(chunks)
    assert (first, rest) == (b"0", b"12")

    # The same through gRPC (Envoy's gRPC port → router → runner): one HttpBody message per chunk.
    released = tmp_path / "grpc-rest-released"
    with grpc.insecure_channel(platform.grpc_address) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        data = json.dumps({"n": 3, "hold_until": str(released)}).encode()
        body = httpbody_pb2.HttpBody(content_type="application/json", data=data)
        request = inference_pb2.PredictRequest(model_id="Test Streaming", target="development", body=body)
        messages = stub.Predict(request, metadata=(("authorization", f"Api-Key {platform.key}"),), timeout=60)
        first_message = next(messages)
        released.touch()
        rest_messages = [m.data for m in messages]
    assert (first_message.data, rest_messages) == (b"0", [b"1", b"2"])


def test_pydantic_input_is_validated_with_truss_s_message(platform: Platform) -> None:
    platform.push("pydantic_input")
    assert platform.predict("Test Pydantic", {"prompt": "hi"}).json() == {"text": "HI", "tokens": 16}
    bad = platform.predict("Test Pydantic", {"max_tokens": 3})
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("Input Parsing Error")
    assert "prompt" in bad.json()["error"]


def test_msgpack_with_a_numpy_array_round_trips_bit_exact(platform: Platform) -> None:
    platform.push("numpy_msgpack")
    array = np.random.default_rng(7).standard_normal((3, 4)).astype(np.float32)
    body = msgpack.packb({"array": array}, default=msgpack_numpy.encode)
    response = platform.http.post("/models/Test%20Numpy/development/predict", content=body,
                                  headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    answer = msgpack.unpackb(response.content, object_hook=msgpack_numpy.decode)
    assert answer["array"].dtype == np.float32 and answer["array"].tobytes() == array.tobytes()
    assert answer["shape"] == [3, 4]


def test_bundled_and_external_packages_are_importable(platform: Platform) -> None:
    platform.push("bundled_packages")
    response = platform.predict("Test Bundled Packages", {"name": "kingpost"})
    assert response.status_code == 200, response.text
    assert "KINGPOST" in response.json()


def test_model_errors_have_truss_s_shapes_and_statuses(platform: Platform) -> None:
    platform.push("predict_error")
    crashed = platform.predict("Test Predict Error", {})
    assert crashed.status_code == 500
    assert crashed.json() == {"error": "Internal Server Error (in model/chainlet)."}
    teapot = platform.predict("Test Predict Error", {"status": 418, "detail": "short and stout"})
    assert teapot.status_code == 418
    assert teapot.json() == {"error": "short and stout"}


def test_predict_concurrency_runs_two_at_a_time(platform: Platform) -> None:
    platform.push("concurrency")  # predict_concurrency: 2; the model counts the calls it runs at once
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(
            lambda i: platform.predict("Test Concurrency", {"i": i, "count_together": True}), range(4)))
    answers = [r.json() for r in replies]
    assert [a["input"] for a in answers] == [{"i": i, "count_together": True} for i in range(4)]
    assert max(a["most_at_once"] for a in answers) == 2  # two together, never three


def test_a_model_whose_load_raises_ends_failed_with_its_traceback_in_logs(platform: Platform) -> None:
    done = run_cli(platform.home, "push", str(TRUSSES / "load_failure"), "--development")
    assert done.returncode == 1
    assert re.search(r"^error: deployment dep_\w+ failed: ", done.stderr, re.MULTILINE), done.stderr
    logs = run_cli(platform.home, "logs", "Test Load Failure")
    assert logs.returncode == 0, logs.stderr
    assert "ValueError: weights are corrupt" in logs.stdout
    assert "Traceback" in logs.stdout


def test_bad_config_fails_the_push_naming_the_key(platform: Platform, tmp_path: Path) -> None:
    truss = tmp_path / "bad"
    (truss / "model").mkdir(parents=True)
    (truss / "model" / "model.py").write_text("class Model:\n    def predict(self, x):\n        return x\n")
    (truss / "config.yaml").write_text("model_name: bad\nruntime:\n  predict_concurrency: 0\n")
    done = run_cli(platform.home, "push", str(truss), "--development")
    assert done.returncode == 1
    assert "runtime.predict_concurrency" in done.stderr and "Traceback" not in done.stderr


def test_unknown_config_keys_are_accepted_with_a_warning_naming_them(platform: Platform, tmp_path: Path) -> None:
    truss = tmp_path / "extra"
    (truss / "model").mkdir(parents=True)
    (truss / "model" / "model.py").write_text("class Model:\n    def predict(self, x):\n        return x\n")
    (truss / "config.yaml").write_text("model_name: extra\nmy_own_key: 1\n")
    result = platform.push(truss)
    assert any("my_own_key" in w for w in result["warnings"]), result["warnings"]
    assert platform.predict("extra", [1]).json() == [1]


def test_bad_requests_get_json_errors_with_honest_statuses(platform: Platform) -> None:
    platform.push("echo")
    unknown = platform.predict("no-such-model", {})
    assert unknown.status_code == 404 and "no-such-model" in unknown.json()["error"]
    malformed = platform.http.post("/models/Test%20Echo/development/predict", content=b"{not json",
                                   headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400 and "Invalid JSON" in malformed.json()["error"]
    anonymous = httpx.post(f"{platform.url}/models/Test%20Echo/development/predict", json={})
    assert anonymous.status_code == 401 and "API key" in anonymous.json()["error"]
    wrong = httpx.post(f"{platform.url}/models/Test%20Echo/development/predict", json={},
                       headers={"Authorization": "Api-Key kp_nope"})
    assert wrong.status_code == 401
    unrouted = platform.http.get("/no/such/route")
    assert unrouted.status_code == 404
    assert unrouted.json() == {"error": "Could not resolve /no/such/route to a method."}  # names the path

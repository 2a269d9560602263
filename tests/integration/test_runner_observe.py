"""What the runner adds for observability: a traced request's phases in its trailers (the router makes
them spans) and the request's id in the log lines written while it runs."""

from __future__ import annotations

import pathlib
import time

from kingpost import trace_phases
from tests.fixtures.runner import PredictRequest, RunnerProcess, running

TRACEPARENT = ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")


async def traced_call(r: RunnerProcess, body: bytes, *metadata: tuple[str, str]) -> tuple[list, list]:
    from google.api import httpbody_pb2

    call = r.stub.Predict(PredictRequest(body=httpbody_pb2.HttpBody(content_type="application/json", data=body)),
                          metadata=metadata, timeout=30)
    chunks = [c async for c in call]
    trailers = await call.trailing_metadata()
    value = dict(trailers or ()).get(trace_phases.PHASES_KEY, "")
    return chunks, trace_phases.decode(value) if value else []


async def test_a_traced_request_gets_its_phases_back_in_order_and_an_untraced_one_nothing() -> None:
    async with running("async_methods") as r:
        sent = time.time_ns()
        _, phases = await traced_call(r, b'{"x": 1}', TRACEPARENT)
        done = time.time_ns()
        assert [name for name, _, _ in phases] == ["load", "preprocess", "predict", "postprocess"]
        (_, _, loaded), *request = phases
        assert loaded <= sent
        assert all(sent <= start <= end <= done for _, start, end in request)
        assert [end <= next_start for (_, _, end), (_, next_start, _) in zip(request, request[1:])] == [True, True]
        _, untraced = await traced_call(r, b'{"x": 1}')
        assert untraced == []


async def test_a_streamed_predict_phase_lasts_until_its_last_chunk() -> None:
    async with running("streaming_sync") as r:
        chunks, phases = await traced_call(r, b'{"n": 3}', TRACEPARENT)
        assert [c.data for c in chunks] == [b"0", b"1", b"2"]
        assert [name for name, _, _ in phases] == ["load", "predict"]


async def test_log_lines_written_during_a_request_carry_its_id(tmp_path: pathlib.Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "config.yaml").write_text("model_name: logs\n")
    (tmp_path / "model" / "model.py").write_text(
        "import logging\n"
        "log = logging.getLogger('my_model')\n"
        "class Model:\n"
        "    def predict(self, model_input):\n"  # a sync predict: it runs in a worker thread
        "        log.warning('working on %s', model_input)\n"
        "        return model_input\n")
    r = RunnerProcess(tmp_path)
    try:
        await r.wait_ready()
        await r.predict(b'"first"', metadata=[("x-baseten-request-id", "req-abc123")])
        await r.predict(b'"second"')
        lines = [line for line in r.output().splitlines() if "working on" in line]
        assert len(lines) == 2, r.output()
        assert "my_model [req-abc123]: working on first" in lines[0]
        assert "[" not in lines[1].split("my_model")[1].split(":")[0]  # no id: none was given
    finally:
        await r.stop()


async def test_a_traceparent_its_caller_did_not_sample_records_nothing() -> None:
    async with running("async_methods") as r:
        _, phases = await traced_call(r, b'{"x": 1}', (TRACEPARENT[0], TRACEPARENT[1][:-2] + "00"))
        assert phases == []


async def test_a_models_own_prometheus_metrics_reach_the_agents_metrics_labelled(tmp_path: pathlib.Path) -> None:
    """Truss's custom metrics: a model counts with prometheus_client; the runner serves its registry and
    the agent's collector (as the agent's /metrics runs it) scrapes it, labelled with the replica."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from kingpost_worker_agent.replica_metrics import ReplicaMetrics
    from kingpost_worker_agent.replica_state import ReplicaSpec

    truss, area = tmp_path / "counting", tmp_path / "area"
    (truss / "model").mkdir(parents=True)
    area.mkdir()
    (truss / "config.yaml").write_text("model_name: counting\n")
    (truss / "model" / "model.py").write_text(
        "from prometheus_client import Counter\n"
        "PREDICTIONS = Counter('my_model_predictions', 'Predictions made', ['kind'])\n"
        "class Model:\n"
        "    def predict(self, model_input):\n"
        "        PREDICTIONS.labels(kind=model_input['kind']).inc()\n"
        "        return model_input\n")
    plain = tmp_path / "plain"  # a model without prometheus_client: nothing served, no port file
    (plain / "model").mkdir(parents=True)
    (plain / "config.yaml").write_text("model_name: plain\n")
    (plain / "model" / "model.py").write_text("class Model:\n    def predict(self, x):\n        return x\n")
    r = RunnerProcess(truss, env={"TMPDIR": str(area)})
    try:
        await r.wait_ready()
        for kind in ("a", "a", "b"):
            await r.predict(f'{{"kind": "{kind}"}}'.encode())
        registry = CollectorRegistry()
        registry.register(ReplicaMetrics(lambda: [(ReplicaSpec("rep_1", "dep_1", "mdl_1"), area)]))
        families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    finally:
        await r.stop()
    # Not the runner process's own process_*/python_* (prometheus_client writes a counter's _created apart).
    assert set(families) == {"my_model_predictions", "my_model_predictions_created"}
    replica = {"model_id": "mdl_1", "deployment_id": "dep_1", "replica_id": "rep_1"}
    assert {(s.labels["kind"], s.value) for s in families["my_model_predictions"].samples
            if s.name == "my_model_predictions_total" and s.labels.items() >= replica.items()} == {("a", 2.0), ("b", 1.0)}
    other_area = tmp_path / "other"
    other_area.mkdir()
    r = RunnerProcess(plain, env={"TMPDIR": str(other_area)})
    try:
        await r.wait_ready()
        assert list(other_area.iterdir()) == []
    finally:
        await r.stop()


async def test_json_log_lines_carry_the_request_id_and_a_print_stays_as_written(tmp_path: pathlib.Path) -> None:
    import json

    (tmp_path / "model").mkdir()
    (tmp_path / "config.yaml").write_text("model_name: logs\n")
    (tmp_path / "model" / "model.py").write_text(
        "import logging\n"
        "log = logging.getLogger('my_model')\n"
        "class Model:\n"
        "    def predict(self, model_input):\n"
        "        log.warning('working on %s', model_input)\n"
        "        print('printed', model_input)\n"
        "        return model_input\n")
    r = RunnerProcess(tmp_path, env={"KINGPOST_LOG_FORMAT": "json"})
    try:
        await r.wait_ready()
        await r.predict(b'"first"', metadata=[("x-baseten-request-id", "req-json1")])
        lines = r.output().splitlines()
        working = [json.loads(line) for line in lines if "working on" in line]
        assert [(w["service"], w["level"], w["logger"], w["message"], w["request_id"]) for w in working] == [
            ("runner", "WARNING", "my_model", "working on first", "req-json1")]
        assert any(json.loads(line)["message"].startswith("model ready in") for line in lines if line.startswith("{"))
        assert "printed first" in lines  # the model's own print(), untouched
    finally:
        await r.stop()


async def test_request_logging_logs_a_sampled_stream_with_its_id_and_nothing_when_off() -> None:
    import json

    env = {"KINGPOST_REQUEST_LOG_SAMPLE_RATE": "1", "KINGPOST_REQUEST_LOG_MAX_BYTES": "2"}
    async with running("streaming_sync", env=env) as r:
        chunks = await r.predict(b'{"n": 3}', metadata=[("x-baseten-request-id", "req-stream")])
        assert [c.data for c in chunks] == [b"0", b"1", b"2"]
        lines = await r.lines_with("kingpost_runner.request_log [req-stream]")
        assert len(lines) == 1, r.output()
        logged = json.loads(lines[0].split("]: ", 1)[1])
        assert (logged["status"], logged["input"]["text"], logged["output"]) == (200, '{"', {
            "bytes": 3, "content_type": "application/octet-stream", "base64": "MDE=", "cut": True})
        bad = [line async for line in _refused(r)]
        assert bad and "request_log" in bad[-1] and '"status": 400' in bad[-1]
    async with running("streaming_sync") as quiet:
        await quiet.predict(b'{"n": 1}', metadata=[("x-baseten-request-id", "req-quiet")])
        assert "request_log" not in quiet.output()


async def _refused(r: RunnerProcess):  # type: ignore[no-untyped-def]
    """A request the model refuses (its input is not JSON): its line says 400."""
    import grpc

    try:
        await r.predict(b"{not json", metadata=[("x-baseten-request-id", "req-bad")])
    except grpc.aio.AioRpcError:
        pass
    for line in await r.lines_with("[req-bad]"):
        yield line

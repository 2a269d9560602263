"""A Truss's `docker_server` run by its runner: the server process and its health.

The runner starts `start_command` with `/bin/sh -c` in the Truss's directory, in the deployment's
environment (its Python first on PATH, the config's environment variables set), in the runner's
own process group, user and cgroup: contained as the runner is, and stopped with it. It then:
- polls `readiness_endpoint` until it answers 2xx: the runner's Ready says so from then on. A server
  that exits first, or is not ready within `runtime.health_checks.startup_threshold_seconds`, ends
  the runner with exit code 1 after saying why, so the replica FAILS with the server's last lines;
- watches `liveness_endpoint` once a second: failing for `restart_threshold_seconds`, or the server
  exiting, ends the runner (exit code 1); the worker agent starts it again with its backoff.
Ports: `server_port` is the container's in truss, but replicas here share the node's network, so
where start_command names its port recognisably (`--port 8000`, `-p 8000`, `host:8000`, `PORT=8000`:
kingpost.docker_server.with_port) each replica's server is given a free port of its own in its place,
and the runner proxies to that. Otherwise the server gets `server_port` itself: one that is still taken
after PORT_WAIT_SECONDS (a replaced replica may still be stopping) fails the runner, naming the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

from kingpost.docker_server import DockerServer, with_port

from kingpost_runner import http1

log = logging.getLogger(__name__)

READY_POLL_SECONDS = 0.1
LIVENESS_POLL_SECONDS = 1.0
PROBE_TIMEOUT_SECONDS = 5.0
STOP_GRACE_SECONDS = 10.0
PORT_WAIT_SECONDS = 15.0
HOST = "127.0.0.1"


class ServerFailed(Exception):
    """The server cannot serve (did not start, exited, never ready, dead): the message says which."""


def port_in_use(port: int, host: str = HOST) -> bool:
    """Something already listens on `port`: a connection is accepted."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def free_port(host: str = HOST) -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def server_env(environ: dict[str, str]) -> dict[str, str]:
    """The runner's environment, with its Python's directory (the deployment's environment) first on
    PATH, so that `python`, `uvicorn`, `vllm` in start_command are the environment's own."""
    env = dict(environ)
    bin_dir = str(pathlib.Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, *(p for p in env.get("PATH", "").split(os.pathsep) if p and p != bin_dir)])
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class CustomServer:
    def __init__(self, spec: DockerServer, truss_dir: pathlib.Path) -> None:
        self.spec = spec
        self.truss_dir = truss_dir
        self.port = spec.server_port
        self.client = http1.Client(HOST, self.port)
        self.process: subprocess.Popen[bytes] | None = None
        self.ready = False
        self._exited: asyncio.Future[int] | None = None

    async def start(self, now=time.monotonic) -> None:
        declared = self.spec.server_port
        command = with_port(self.spec.start_command, declared, port := free_port())
        if command is None:
            command, port = self.spec.start_command, declared
            deadline = now() + PORT_WAIT_SECONDS
            while port_in_use(port):
                if now() >= deadline:
                    raise ServerFailed(
                        f"docker_server.server_port {port} is already in use on this node (another process, "
                        f"or another replica of a server on the same port; waited {PORT_WAIT_SECONDS:g} s), "
                        "and start_command names its port nowhere kingpost can give it another one "
                        "(`--port N`, `-p N`, `host:N`, `PORT=N`)")
                await asyncio.sleep(0.2)
        else:
            log.info("server_port %d is port %d for this replica (replicas share the node's ports)",
                     declared, port)
        self.port = port
        self.client = http1.Client(HOST, port)
        log.info("starting the server: %s", command)
        # Started by the agent, the runner leads its own process group: the server joins it, so
        # that the agent's signals to the group (and its SIGKILL of what a dead runner left) reach
        # it and whatever it starts. Started otherwise (by hand, in tests), it gets a group of its own.
        self._own_group = os.getpgid(0) != os.getpid()
        try:  # its output goes where the runner's goes: the replica's log
            self.process = subprocess.Popen(["/bin/sh", "-c", command], cwd=self.truss_dir,
                                            env=server_env(dict(os.environ)), stdin=subprocess.DEVNULL,
                                            process_group=0 if self._own_group else None)
        except OSError as e:
            raise ServerFailed(f"cannot run docker_server.start_command: {e}") from e
        loop = asyncio.get_running_loop()
        self._exited = loop.run_in_executor(None, self.process.wait)

    def _exit_message(self, code: int) -> str:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return f"the server (docker_server.start_command) {how}"

    async def probe(self, path: str) -> tuple[bool, str]:
        """(healthy, what it answered) for one GET of `path`."""
        try:
            response = await asyncio.wait_for(self.client.request("GET", path), PROBE_TIMEOUT_SECONDS)
            async for _ in response.body:
                pass
        except (OSError, http1.BadResponse, asyncio.TimeoutError) as e:
            return False, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        return 200 <= response.status < 300, f"HTTP {response.status}"

    async def wait_ready(self, now=time.monotonic) -> None:
        """Until readiness_endpoint answers 2xx; ServerFailed when the server exits or takes too long."""
        assert self._exited is not None
        deadline = now() + self.spec.startup_threshold_seconds
        last = "no answer yet"
        while True:
            if self._exited.done():
                raise ServerFailed(f"{self._exit_message(self._exited.result())} before it was ready "
                                   f"(readiness_endpoint {self.spec.readiness_endpoint}: {last})")
            healthy, last = await self.probe(self.spec.readiness_endpoint)
            if healthy:
                self.ready = True
                log.info("the server is ready (GET %s: %s)", self.spec.readiness_endpoint, last)
                return
            if now() >= deadline:
                raise ServerFailed(
                    f"the server was not ready within {self.spec.startup_threshold_seconds:g} s "
                    f"(runtime.health_checks.startup_threshold_seconds): GET "
                    f"http://{HOST}:{self.port}{self.spec.readiness_endpoint} last answered {last}")
            await asyncio.wait({self._exited}, timeout=READY_POLL_SECONDS)

    async def watch(self, now=time.monotonic) -> None:
        """Return (raise ServerFailed) once the server has exited or its liveness failed too long."""
        assert self._exited is not None
        failing_since: float | None = None
        while True:
            await asyncio.wait({self._exited}, timeout=LIVENESS_POLL_SECONDS)
            if self._exited.done():
                raise ServerFailed(self._exit_message(self._exited.result()))
            healthy, answer = await self.probe(self.spec.liveness_endpoint)
            if healthy:
                failing_since = None
                continue
            failing_since = failing_since if failing_since is not None else now()
            if now() - failing_since >= self.spec.restart_threshold_seconds:
                raise ServerFailed(
                    f"the server's liveness_endpoint {self.spec.liveness_endpoint} failed for "
                    f"{self.spec.restart_threshold_seconds:g} s (runtime.health_checks."
                    f"restart_threshold_seconds; last answer {answer}): restarting it")

    def _signal(self, sig: int) -> None:
        """The server and what it started (`sh -c` may not exec): its group, or the runner's, whose
        own SIGTERM handler only asks it to stop (it is stopping already)."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid if self._own_group else os.getpgid(0), sig)

    async def stop(self) -> None:
        self.client.close()
        proc = self.process
        if proc is None:
            return
        assert self._exited is not None
        self._signal(signal.SIGTERM)
        done, _ = await asyncio.wait({self._exited}, timeout=STOP_GRACE_SECONDS)
        if not done or self._own_group:
            self._signal(signal.SIGKILL if self._own_group else signal.SIGTERM)
        if not done:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.wait({self._exited})

"""What `kingpost up` starts, decided without touching anything: pure over a home dir and ports.

`plan` returns the processes in start order (each with its argv, extra environment, the config
files to write first, the port that accepts connections once it is ready, and its log file).
`kingpost.up` does the plumbing: it picks the ports, writes the files and runs the processes.

Home layout (`~/.kingpost` by default):
    config.toml           client config: url, grpc, api_key (the admin key), mode 0600
    nats-credentials.toml the user and password of the embedded NATS, mode 0600
    state/                SQLite databases
    nats/                 the JetStream store
    artifacts/            content-addressed build artifacts
    agent/                the worker agent's extracted artifacts and replica dirs
    logs/<process>.log    each process's stdout and stderr
    run/                  generated configs (services, NATS, Envoy), mode 0600: they hold the NATS password
The home and agent/ are 0711 (runners, as users of their own, pass through to what the agent gives
them: docs/isolation.md), every other directory 0700.

NATS requires its user and password from every client: the services have them in the URL of their
config files (`nats://user:password@host:port`). Runners get neither the file nor the URL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kingpost.flat_toml import to_toml

SERVICES = ("scheduler", "builder", "router", "autoscaler", "agent")
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Layout:
    home: Path

    @property
    def config_toml(self) -> Path:
        return self.home / "config.toml"

    @property
    def nats_credentials(self) -> Path:
        return self.home / "nats-credentials.toml"

    @property
    def state(self) -> Path:
        return self.home / "state"

    @property
    def nats(self) -> Path:
        return self.home / "nats"

    @property
    def artifacts(self) -> Path:
        return self.home / "artifacts"

    @property
    def agent(self) -> Path:
        return self.home / "agent"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def run(self) -> Path:
        return self.home / "run"

    def dirs(self) -> tuple[Path, ...]:
        return (self.home, self.state, self.nats, self.artifacts, self.agent, self.logs, self.run)

    def mode(self, directory: Path) -> int:
        """Who may enter each directory: the platform's user alone, but runners pass through two."""
        return 0o711 if directory in (self.home, self.agent) else 0o700

    def log(self, process: str) -> Path:
        return self.logs / f"{process}.log"


@dataclass(frozen=True)
class Ports:
    rest: int
    grpc: int
    nats: int
    envoy_admin: int
    # Per service: its gRPC listener and its /metrics listener.
    service_grpc: Mapping[str, int]
    service_metrics: Mapping[str, int]
    # The router's HTTP/1.1 listener for `{prefix}/websocket` (Envoy sends upgrades there).
    router_websocket: int

    def address(self, service: str) -> str:
        return f"{HOST}:{self.service_grpc[service]}"

    def internal(self) -> tuple[int, ...]:
        """The ports `kingpost up` picks itself (the public two come from flags)."""
        return (self.nats, self.envoy_admin, *self.service_grpc.values(), *self.service_metrics.values(),
                self.router_websocket)


@dataclass(frozen=True)
class NatsCredentials:
    user: str
    password: str

    def url(self, port: int) -> str:
        return f"nats://{self.user}:{self.password}@{HOST}:{port}"


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: tuple[str, ...]
    # Added to the environment `kingpost up` runs in.
    env: Mapping[str, str]
    # Files to write before starting, readable by their owner only: path → contents.
    files: Mapping[Path, str]
    # The process is ready when these ports accept TCP connections.
    ready_ports: tuple[int, ...]
    log_path: Path
    start_timeout: float = 60.0


EnvoyRender = Callable[..., Any]
EnvoyCommand = Callable[..., Sequence[str]]


# How `kingpost up` stops, clients before what they call: the front door; the scheduler's route
# watchers (a server stopping gracefully waits for its open streams); the scheduler; the agent,
# whose stopping replicas the scheduler would otherwise replace; NATS last, which the others publish
# to until they exit. The processes of one stage stop together.
STOP_STAGES = (("envoy",), ("router", "builder", "autoscaler"), ("scheduler",), ("agent",), ("nats",))


def data_path(environ: Mapping[str, str]) -> str:
    """KINGPOST_DATA_PATH: "router" (the default: every request crosses the router) or "envoy"
    (Envoy sends predict straight to the replicas; the router writes its routes, kingpost.gateway_direct)."""
    value = environ.get("KINGPOST_DATA_PATH") or "router"
    if value not in ("router", "envoy"):
        raise ValueError(f"KINGPOST_DATA_PATH={value!r} is neither 'router' nor 'envoy'")
    return value


def xds_dir(layout: Layout) -> Path:
    """Where the router writes Envoy's routes and clusters (data path "envoy")."""
    return layout.run / "envoy-xds"


def service_config(service: str, layout: Layout, ports: Ports, nats: NatsCredentials,
                   environ: Mapping[str, str] = {}) -> dict[str, Any]:
    """A service's TOML config: the shared ServiceSettings fields, then the service's own."""
    values: dict[str, Any] = {
        "home": str(layout.home),
        "nats_url": nats.url(ports.nats),
        "grpc_host": HOST,
        "grpc_port": ports.service_grpc[service],
        "metrics_host": HOST,
        "metrics_port": ports.service_metrics[service],
    }
    scheduler, builder = ports.address("scheduler"), ports.address("builder")
    if service == "scheduler":
        values["database_url"] = f"sqlite+aiosqlite:///{layout.state / 'kingpost.db'}"
        values["builder_address"] = builder
        # One machine runs everything: its CPUs and memory are shared generously (settings.py).
        values["cpu_overcommit"] = 16.0
        values["memory_overcommit"] = 4.0
        # GET /v1/metrics/targets: the services here and Envoy (the agent announces its own).
        values["metrics_targets"] = [
            *(f"{s}={HOST}:{ports.service_metrics[s]}" for s in SERVICES if s != "agent"),
            f"envoy={HOST}:{ports.envoy_admin}/stats/prometheus"]
    elif service == "builder":
        values["artifacts_dir"] = str(layout.artifacts)
        values["scheduler_address"] = scheduler
    elif service in ("router", "autoscaler"):
        values["scheduler_address"] = scheduler
        if service == "router":
            values["websocket_host"] = HOST
            values["websocket_port"] = ports.router_websocket
            # Envoy's stats, for the requests it sends straight to replicas (concurrency, metrics).
            values["envoy_admin_address"] = f"{HOST}:{ports.envoy_admin}"
            # One machine, the user's own: a webhook receiver on localhost is the usual first try.
            values["allow_internal_webhooks"] = True
            values["data_path"] = data_path(environ)
            values["envoy_xds_dir"] = str(xds_dir(layout))
    elif service == "agent":
        values["builder_address"] = builder
        values["work_dir"] = str(layout.agent)
        # Agents that join from this machine keep its host name for themselves.
        values["node_name"] = "local"
    return values


def plan(
    layout: Layout,
    ports: Ports,
    *,
    admin_key: str,
    nats: NatsCredentials,
    python: str,
    nats_server: str,
    descriptor_path: Path,
    render_envoy: EnvoyRender,
    envoy_command: EnvoyCommand,
    environ: Mapping[str, str] = {},
    initial_xds: Callable[..., Mapping[Path, str]] | None = None,
) -> tuple[ProcessSpec, ...]:
    """The processes to start, in order: NATS, the five services, then Envoy in front of them.
    `environ` (kingpost up's own): with OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT Envoy traces too, the
    share of KINGPOST_TRACE_ROOT_RATIO (the router's default, 1 %) of the requests without a traceparent."""
    nats_config = layout.run / "nats.conf"
    direct = data_path(environ) == "envoy"
    envoy_options: dict[str, Any] = dict(
        rest_port=ports.rest,
        grpc_port=ports.grpc,
        admin_port=ports.envoy_admin,
        router=ports.address("router"),
        router_websocket=f"{HOST}:{ports.router_websocket}",
        scheduler=ports.address("scheduler"),
        builder=ports.address("builder"),
        descriptor_path=descriptor_path,
        host=HOST,
        **envoy_tracing(environ),
    )
    if direct and initial_xds is None:
        raise ValueError("KINGPOST_DATA_PATH=envoy needs the gateway's first route files (initial_xds)")
    specs = [
        ProcessSpec(
            name="nats",
            # The password in a file, not in argv, which every user of the machine can read.
            argv=(nats_server, "-c", str(nats_config), "-js", "-sd", str(layout.nats), "-a", HOST,
                  "-p", str(ports.nats)),
            env={},
            files={nats_config: nats_server_config(nats)},
            ready_ports=(ports.nats,),
            log_path=layout.log("nats"),
            start_timeout=30.0,
        )
    ]
    for service in SERVICES:
        config_path = layout.run / f"{service}.toml"
        env = {"KINGPOST_HOME": str(layout.home)}
        if service == "scheduler":
            env["KINGPOST_ADMIN_KEY"] = admin_key
        if service == "agent":  # its runners' Chainlets call their dependencies through the router
            env["KINGPOST_CHAIN_ROUTER"] = ports.address("router")
        files = {config_path: to_toml(service_config(service, layout, ports, nats, environ))}
        if service == "router" and direct:  # Envoy's first routes, before the router writes its own
            assert initial_xds is not None
            files.update(initial_xds(xds_dir(layout), **envoy_options))
        specs.append(ProcessSpec(
            name=service,
            argv=(python, "-m", "kingpost.cli", service, "--config", str(config_path)),
            env=env,
            files=files,
            ready_ports=(ports.service_grpc[service],
                         *((ports.router_websocket,) if service == "router" else ())),
            log_path=layout.log(service),
        ))
    envoy_config = render_envoy(**envoy_options, **(
        {"data_path": "envoy", "xds_dir": xds_dir(layout)} if direct else {}))
    envoy_path = layout.run / "envoy.yaml"
    specs.append(ProcessSpec(
        name="envoy",
        argv=tuple(envoy_command(envoy_path)),
        env={},
        files={envoy_path: envoy_config if isinstance(envoy_config, str) else _yaml(envoy_config)},
        ready_ports=(ports.grpc, ports.rest),
        log_path=layout.log("envoy"),
        start_timeout=30.0,
    ))
    return tuple(specs)


def envoy_tracing(environ: Mapping[str, str]) -> dict[str, Any]:
    """render_envoy's tracing arguments from the environment the services see (none: no tracing)."""
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint:
        return {}
    ratio = environ.get("KINGPOST_TRACE_ROOT_RATIO")
    try:
        return {"otlp_endpoint": endpoint, **({"trace_ratio": float(ratio)} if ratio else {})}
    except ValueError:
        raise ValueError(f"KINGPOST_TRACE_ROOT_RATIO={ratio!r} is not a number") from None


def nats_server_config(nats: NatsCredentials) -> str:
    """nats-server's config: every client must log in (the rest is on its command line)."""
    return f'authorization {{\n  user: "{nats.user}"\n  password: "{nats.password}"\n}}\n'


def _yaml(value: Any) -> str:
    import yaml

    return yaml.safe_dump(value, sort_keys=False)


def port_in_use_message(port: int, flag: str) -> str:
    return f"port {port} is in use; use {flag} to pick another"

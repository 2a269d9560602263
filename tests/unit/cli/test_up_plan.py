"""What `kingpost up` starts: order, argv, config files, readiness ports. Pure: no processes."""

import tomllib
from pathlib import Path

import pytest

from kingpost.up_plan import SERVICES, STOP_STAGES, Layout, NatsCredentials, Ports, plan, service_config

HOME = Path("/home/u/.kingpost")
NATS = NatsCredentials("kingpost", "s3cret")


def ports() -> Ports:
    return Ports(
        rest=8080, grpc=50051, nats=4000, envoy_admin=4001,
        service_grpc={s: 5000 + i for i, s in enumerate(SERVICES)},
        service_metrics={s: 6000 + i for i, s in enumerate(SERVICES)},
        router_websocket=7000,
    )


def render_envoy(**kw):
    return {"rendered_with": {k: str(v) for k, v in kw.items()}}


def envoy_command(path):
    return ["/bin/envoy", "--config-path", str(path)]


def make_plan():
    return plan(Layout(HOME), ports(), admin_key="kp_admin_key", nats=NATS, python="/venv/bin/python",
                nats_server="/venv/bin/nats-server", descriptor_path=Path("/d/kingpost.binpb"),
                render_envoy=render_envoy, envoy_command=envoy_command)


def test_start_order_is_nats_then_services_then_envoy():
    assert [p.name for p in make_plan()] == ["nats", "scheduler", "builder", "router", "autoscaler", "agent",
                                             "envoy"]


def test_nats_runs_jetstream_in_home_on_its_port():
    nats = make_plan()[0]
    config = HOME / "run" / "nats.conf"
    assert nats.argv == ("/venv/bin/nats-server", "-c", str(config), "-js", "-sd", str(HOME / "nats"),
                         "-a", "127.0.0.1", "-p", "4000")
    assert nats.ready_ports == (4000,)
    assert nats.log_path == HOME / "logs" / "nats.log"


def test_nats_requires_the_credentials_and_only_services_have_them():
    specs = make_plan()
    nats = specs[0]
    # The password is in nats-server's config file, not on its command line (visible to every user).
    assert 'user: "kingpost"' in nats.files[HOME / "run" / "nats.conf"]
    assert 'password: "s3cret"' in nats.files[HOME / "run" / "nats.conf"]
    assert not any("s3cret" in arg for spec in specs for arg in spec.argv)
    # Each service finds it in its config's NATS URL; no environment variable carries it (runners
    # inherit the agent's environment).
    for spec in specs[1:-1]:
        config = tomllib.loads(spec.files[HOME / "run" / f"{spec.name}.toml"])
        assert config["nats_url"] == "nats://kingpost:s3cret@127.0.0.1:4000"
        assert not any("s3cret" in value for value in spec.env.values())
    assert not any("s3cret" in text for text in specs[-1].files.values())  # Envoy needs no NATS


def test_stopping_goes_from_the_front_door_to_nats_clients_first():
    names = [name for stage in STOP_STAGES for name in stage]
    assert sorted(names) == sorted(p.name for p in make_plan())  # each process exactly once
    assert STOP_STAGES[0] == ("envoy",) and STOP_STAGES[-1] == ("nats",)
    # The scheduler's watchers go before it (its graceful stop would wait for their streams), and
    # it goes before the agent, so it does not replace the replicas the agent stops.
    for watcher in ("router", "builder", "autoscaler"):
        assert names.index(watcher) < names.index("scheduler") < names.index("agent")


def test_each_service_runs_through_the_cli_with_its_own_config():
    specs = {p.name: p for p in make_plan()}
    for i, service in enumerate(SERVICES):
        spec = specs[service]
        config_path = HOME / "run" / f"{service}.toml"
        assert spec.argv == ("/venv/bin/python", "-m", "kingpost.cli", service, "--config", str(config_path))
        config = tomllib.loads(spec.files[config_path])
        assert config["grpc_port"] == 5000 + i and config["metrics_port"] == 6000 + i
        assert config["nats_url"] == "nats://kingpost:s3cret@127.0.0.1:4000"
        # The router also serves {prefix}/websocket on a port of its own.
        assert spec.ready_ports == ((5000 + i, 7000) if service == "router" else (5000 + i,))
        assert spec.log_path == HOME / "logs" / f"{service}.log"


def test_only_the_scheduler_gets_the_admin_key():
    specs = {p.name: p for p in make_plan()}
    assert specs["scheduler"].env["KINGPOST_ADMIN_KEY"] == "kp_admin_key"
    assert all("KINGPOST_ADMIN_KEY" not in specs[s].env for s in SERVICES if s != "scheduler")
    # The key never lands in a config file on disk.
    assert all("kp_admin_key" not in text for p in specs.values() for text in p.files.values())


def test_services_find_each_other_through_the_picked_ports():
    p = ports()
    layout = Layout(HOME)
    assert service_config("router", layout, p, NATS)["scheduler_address"] == "127.0.0.1:5000"
    assert service_config("router", layout, p, NATS)["websocket_port"] == 7000
    # The router reads Envoy's stats from its admin port.
    assert service_config("router", layout, p, NATS)["envoy_admin_address"] == f"127.0.0.1:{p.envoy_admin}"
    assert service_config("agent", layout, p, NATS)["builder_address"] == "127.0.0.1:5001"
    assert service_config("scheduler", layout, p, NATS)["builder_address"] == "127.0.0.1:5001"
    assert service_config("scheduler", layout, p, NATS)["database_url"] == f"sqlite+aiosqlite:///{HOME}/state/kingpost.db"
    assert service_config("builder", layout, p, NATS)["artifacts_dir"] == str(HOME / "artifacts")
    assert service_config("agent", layout, p, NATS)["work_dir"] == str(HOME / "agent")


def test_envoy_fronts_router_scheduler_and_builder_on_the_public_ports():
    envoy = make_plan()[-1]
    config_path = HOME / "run" / "envoy.yaml"
    assert envoy.argv == ("/bin/envoy", "--config-path", str(config_path))
    assert envoy.ready_ports == (50051, 8080)
    text = envoy.files[config_path]
    for expected in ("rest_port: '8080'", "grpc_port: '50051'", "admin_port: '4001'",
                     "router: 127.0.0.1:5002", "router_websocket: 127.0.0.1:7000", "scheduler: 127.0.0.1:5000", "builder: 127.0.0.1:5001"):
        assert expected in text


def test_envoy_traces_when_the_services_export_to_an_otlp_endpoint_at_the_routers_ratio():
    def envoy_text(environ):
        envoy = plan(Layout(HOME), ports(), admin_key="k", nats=NATS, python="p", nats_server="n",
                     descriptor_path=Path("/d"), render_envoy=render_envoy, envoy_command=envoy_command,
                     environ=environ)[-1]
        return envoy.files[HOME / "run" / "envoy.yaml"]

    assert "otlp_endpoint" not in envoy_text({})
    assert "otlp_endpoint: http://c:4317" in envoy_text({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"})
    traces_only = envoy_text({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317",
                              "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4317",
                              "KINGPOST_TRACE_ROOT_RATIO": "0.5"})
    assert "otlp_endpoint: http://t:4317" in traces_only and "trace_ratio: '0.5'" in traces_only
    with pytest.raises(ValueError, match="KINGPOST_TRACE_ROOT_RATIO='half'"):
        envoy_text({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "KINGPOST_TRACE_ROOT_RATIO": "half"})


def test_the_direct_data_path_has_the_router_write_envoys_routes_from_the_gateways_first_files():
    def initial_xds(xds_dir, **kw):
        return {xds_dir / "rds.json": f"first routes for REST port {kw['rest_port']}"}

    def specs(environ):
        return {p.name: p for p in plan(Layout(HOME), ports(), admin_key="k", nats=NATS, python="p", nats_server="n",
                                         descriptor_path=Path("/d"), render_envoy=render_envoy,
                                         envoy_command=envoy_command, environ=environ, initial_xds=initial_xds)}

    xds = HOME / "run" / "envoy-xds"
    direct = specs({"KINGPOST_DATA_PATH": "envoy"})
    router = tomllib.loads(direct["router"].files[HOME / "run" / "router.toml"])
    assert (router["data_path"], router["envoy_xds_dir"]) == ("envoy", str(xds))
    # Written before the router starts (it reads them), never again by kingpost up.
    assert direct["router"].files[xds / "rds.json"] == "first routes for REST port 8080"
    assert f"xds_dir: {xds}" in direct["envoy"].files[HOME / "run" / "envoy.yaml"]
    default = specs({})
    assert tomllib.loads(default["router"].files[HOME / "run" / "router.toml"])["data_path"] == "router"
    assert xds / "rds.json" not in default["router"].files
    assert "data_path" not in default["envoy"].files[HOME / "run" / "envoy.yaml"]
    with pytest.raises(ValueError, match="KINGPOST_DATA_PATH='fast' is neither 'router' nor 'envoy'"):
        specs({"KINGPOST_DATA_PATH": "fast"})


def test_other_users_may_only_pass_through_the_home_and_the_agents_dir():
    """Runners run as users of their own (docs/isolation.md): they pass through to their files under
    agent/, and cannot list the home nor enter state/, run/, logs/, nats/ or the builder's artifacts/."""
    layout = Layout(Path("/srv/kingpost"))
    assert {str(d.relative_to(layout.home)): oct(layout.mode(d)) for d in layout.dirs()} == {
        ".": "0o711", "agent": "0o711", "state": "0o700", "nats": "0o700", "artifacts": "0o700",
        "logs": "0o700", "run": "0o700"}

"""The install files under deploy/ parse, carry what their platform requires, and run commands that
exist: each `kingpost` subcommand and option they pass is one the CLI has, and each service's config
loads through that service's own settings (the agent's systemd unit and DaemonSet; the platform's
Kubernetes manifests)."""

from __future__ import annotations

import configparser
import os
import shlex
from pathlib import Path
from typing import Any

import click
import yaml

from kingpost.cli import cli

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def agent_options() -> set[str]:
    command = cli.commands["agent"]
    return {opt for p in command.params if isinstance(p, click.Option) for opt in p.opts}


def check_agent_argv(argv: list[str]) -> None:
    """`kingpost agent ...`: every --option is one of the agent's, and each takes its value."""
    assert argv[0] == "agent", argv
    known = agent_options()
    for word in argv[1:]:
        if word.startswith("--"):
            assert word in known, f"`kingpost agent` has no option {word} (it has {sorted(known)})"
    # And the CLI accepts the whole line (without running it).
    ctx = cli.commands["agent"].make_context("agent", [w for w in argv[1:]], resilient_parsing=True)
    assert ctx.params["join"], "the agent must be told the platform to join"


def test_the_systemd_unit_runs_kingpost_agent_with_options_it_has() -> None:
    unit = configparser.ConfigParser(strict=True, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((DEPLOY / "systemd" / "kingpost-agent.service").read_text())
    assert set(unit.sections()) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/kingpost"), argv
    check_agent_argv(argv[1:])
    assert service["Restart"] == "always" and service["KillMode"] == "process"
    assert service["RuntimeDirectory"] == "kingpost"  # /run/kingpost: the runner uid range locks
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    env_file = service["EnvironmentFile"]
    example = dict(line.split("=", 1) for line in (DEPLOY / "systemd" / "agent.env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    for variable in ("KINGPOST_JOIN", "KINGPOST_JOIN_TOKEN", "KINGPOST_ADVERTISE_HOST"):
        assert f"${{{variable}}}" in service["ExecStart"] or variable == "KINGPOST_JOIN_TOKEN"
        assert variable in example, f"{env_file}'s example lacks {variable}"


def test_the_daemonset_is_valid_and_runs_kingpost_agent_on_gpu_nodes() -> None:
    documents: list[dict[str, Any]] = [d for d in yaml.safe_load_all((DEPLOY / "k8s" / "agent-daemonset.yaml")
                                                                      .read_text()) if d]
    by_kind = {d["kind"]: d for d in documents}
    assert set(by_kind) == {"Secret", "DaemonSet"}
    for d in documents:
        assert d["apiVersion"] and d["metadata"]["name"] and d["metadata"]["namespace"] == "kingpost"
    ds = by_kind["DaemonSet"]
    assert ds["apiVersion"] == "apps/v1"
    spec = ds["spec"]
    template = spec["template"]
    labels = template["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items()), "selector matches no pod"
    pod = template["spec"]
    assert pod["nodeSelector"] and pod["hostNetwork"] is True
    (container,) = pod["containers"]
    assert container["image"] and container["command"] == ["kingpost"]
    check_agent_argv(container["args"])
    env = {e["name"]: e for e in container["env"]}
    secret = env["KINGPOST_JOIN_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert secret["name"] == by_kind["Secret"]["metadata"]["name"]
    assert secret["key"] in by_kind["Secret"]["stringData"]
    for arg in container["args"]:  # $(VAR) references resolve to variables the container defines
        if arg.startswith("$("):
            assert arg[2:-1] in env, f"{arg} is not a variable of the container"
    mounts = {m["name"] for m in container["volumeMounts"]}
    assert mounts == {v["name"] for v in pod["volumes"]}
    assert "/run/kingpost" in {m["mountPath"] for m in container["volumeMounts"]}


# ---------------------------------------------------------------------------------------------------
# The platform's manifests (deploy/k8s/*.yaml): every workload runs a command that exists, each
# service's ConfigMap TOML loads through the service's own settings, and names meet across files.

K8S = DEPLOY / "k8s"
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}
SETTINGS = {
    "scheduler": ("kingpost_scheduler.settings", "SchedulerSettings"),
    "builder": ("kingpost_builder.settings", "BuilderSettings"),
    "router": ("kingpost_router.settings", "RouterSettings"),
    "autoscaler": ("kingpost_autoscaler.settings", "AutoscalerSettings"),
}


def k8s_documents() -> list[dict[str, Any]]:
    documents = []
    for path in sorted(K8S.glob("*.yaml")):
        for d in yaml.safe_load_all(path.read_text()):
            if d:
                d["_file"] = path.name
                documents.append(d)
    return documents


def by_name(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in k8s_documents() if d["kind"] == kind}


def kingpost_containers() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, container) for each container of ours that runs `kingpost ...`."""
    return [(w, c) for w in k8s_documents() if w["kind"] in WORKLOADS
            for c in w["spec"]["template"]["spec"]["containers"] if c["command"] == ["kingpost"]]


def test_every_manifest_parses_and_has_the_fields_kubernetes_requires() -> None:
    documents = k8s_documents()
    kinds = {d["kind"] for d in documents}
    assert {"Deployment", "StatefulSet", "Service", "ConfigMap", "Secret", "DaemonSet"} <= kinds
    for d in documents:
        where = f"{d['_file']}: {d['kind']} {d['metadata'].get('name')}"
        assert d["apiVersion"] and d["metadata"]["name"] and d["metadata"]["namespace"] == "kingpost", where
        if d["kind"] in WORKLOADS:
            spec = d["spec"]
            labels = spec["template"]["metadata"]["labels"]
            assert all(labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items()), where
            pod = spec["template"]["spec"]
            volumes = {v["name"] for v in pod.get("volumes", [])}
            volumes |= {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
            for c in [*pod.get("initContainers", []), *pod["containers"]]:
                assert c["name"] and c["image"] and c["command"], f"{where}: container {c.get('name')}"
                for m in c.get("volumeMounts", []):
                    assert m["name"] in volumes, f"{where}: {c['name']} mounts unknown volume {m['name']}"
        if d["kind"] == "Service":  # selects a workload's pods, on ports its containers name
            pods = [w for w in documents if w["kind"] in WORKLOADS
                    and all(w["spec"]["template"]["metadata"]["labels"].get(k) == v
                            for k, v in d["spec"]["selector"].items())]
            assert pods, f"{where} selects no pods"
            ports = {p.get("name") for c in pods[0]["spec"]["template"]["spec"]["containers"]
                     for p in c.get("ports", [])} | {p["containerPort"] for c in pods[0]["spec"]["template"]["spec"]
                                                    ["containers"] for p in c.get("ports", [])}
            for p in d["spec"]["ports"]:
                assert p["targetPort"] in ports, f"{where}: targetPort {p['targetPort']} is no container port"


def test_the_platform_runs_each_service_as_a_deployment_with_a_service() -> None:
    deployments, services = by_name("Deployment"), by_name("Service")
    assert {"scheduler", "builder", "router", "autoscaler", "envoy"} <= set(deployments) & set(services)
    assert {"postgres", "nats"} <= set(by_name("StatefulSet")) & set(services)
    # The agents join the scheduler's Service at its gRPC port.
    (agent,) = [c for w, c in kingpost_containers() if w["kind"] == "DaemonSet"]
    join = agent["args"][agent["args"].index("--join") + 1]
    host, port = join.rsplit(":", 1)
    assert host.split(".")[:2] == ["scheduler", "kingpost"]
    assert int(port) in {p["port"] for p in services["scheduler"]["spec"]["ports"]}


def test_secret_references_name_keys_the_secrets_have() -> None:
    secrets, config_maps = by_name("Secret"), by_name("ConfigMap")
    for w in k8s_documents():
        if w["kind"] not in WORKLOADS:
            continue
        pod = w["spec"]["template"]["spec"]
        for c in [*pod.get("initContainers", []), *pod["containers"]]:
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets[ref["name"]]["stringData"], f"{w['metadata']['name']}: {ref}"
        for v in pod.get("volumes", []):
            if "configMap" in v:
                assert v["configMap"]["name"] in config_maps


def test_each_service_runs_a_kingpost_command_and_options_it_has(tmp_path: Path) -> None:
    config = by_name("ConfigMap")["kingpost-config"]["data"]
    for name, text in config.items():
        (tmp_path / name).write_text(text)
    seen = set()
    for workload, container in kingpost_containers():
        argv = list(container["args"])
        command = cli.commands.get(argv[0])
        assert command is not None, f"`kingpost` has no subcommand {argv[0]} (it has {sorted(cli.commands)})"
        if argv[0] == "agent":
            check_agent_argv(argv)
            continue
        known = {opt for p in command.params if isinstance(p, click.Option) for opt in p.opts}
        for word in argv[1:]:
            if word.startswith("--"):
                assert word in known, f"`kingpost {argv[0]}` has no option {word} (it has {sorted(known)})"
        path = argv[argv.index("--config") + 1]
        assert path.startswith("/etc/kingpost/"), path
        mounted = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/etc/kingpost" in mounted
        # The CLI accepts the whole line, with the ConfigMap's file where the pod mounts it.
        local = [str(tmp_path / Path(w).name) if w == path else w for w in argv[1:]]
        ctx = command.make_context(argv[0], local)
        assert ctx.params["config"] == tmp_path / Path(path).name
        seen.add(argv[0])
    assert seen == set(SETTINGS)


def test_each_services_config_loads_through_its_own_settings(tmp_path: Path, monkeypatch: Any) -> None:
    """The TOML in the ConfigMap plus the KINGPOST_* variables from the Secret, loaded as the service
    loads them (`<Service>Settings.load(config)`): no unknown key, no bad value, and the ports the
    service listens on are the ones its Service and Deployment expose."""
    import importlib

    config = by_name("ConfigMap")["kingpost-config"]["data"]
    secrets = by_name("Secret")
    services = by_name("Service")
    containers = {w["metadata"]["name"]: c for w, c in kingpost_containers() if w["kind"] == "Deployment"}
    for service, (module, cls_name) in SETTINGS.items():
        settings_cls = importlib.import_module(module).__dict__[cls_name]
        container = containers[service]
        file = tmp_path / f"{service}.toml"
        file.write_text(config[f"{service}.toml"])
        with monkeypatch.context() as m:
            for variable in [k for k in os.environ if k.startswith("KINGPOST_")]:
                m.delenv(variable)
            for e in container.get("env", []):
                assert e["name"].startswith("KINGPOST_"), e["name"]
                field = e["name"].removeprefix("KINGPOST_").lower()
                assert field in settings_cls.model_fields, f"{service}: {e['name']} sets no setting"
                ref = e["valueFrom"]["secretKeyRef"]
                m.setenv(e["name"], secrets[ref["name"]]["stringData"][ref["key"]])
            settings = settings_cls.load(file)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert settings.grpc_port == ports["grpc"] and settings.metrics_port == ports["metrics"]
        assert settings.grpc_host == "0.0.0.0" and settings.metrics_host == "0.0.0.0"
        service_ports = {p["name"]: p["port"] for p in services[service]["spec"]["ports"]}
        assert service_ports["grpc"] == settings.grpc_port
        assert settings.nats_url.startswith("nats://kingpost:")  # the Secret's, with NATS's user
        assert settings.internal_token
        for address_field in ("scheduler_address", "builder_address", "join_builder_address"):
            address = getattr(settings, address_field, "")
            if address:  # another Service of these manifests, at its gRPC port
                host, port = address.rsplit(":", 1)
                target = services[host.split(".")[0]]
                assert int(port) in {p["port"] for p in target["spec"]["ports"]}, f"{service}.{address_field}"
        if service == "scheduler":
            assert settings.database_url.startswith("postgresql+asyncpg://")
            assert settings.admin_key.get_secret_value() and settings.secrets_key.get_secret_value()
            assert settings.join_artifact_store == "nats"
        if service == "builder":
            assert settings.artifact_store == "nats"  # agents fetch from JetStream, as the scheduler tells them


def test_envoys_config_renders_with_the_arguments_the_pod_gives(tmp_path: Path) -> None:
    from kingpost import gateway

    envoy = by_name("Deployment")["envoy"]["spec"]["template"]["spec"]
    (render,) = [c for c in envoy["initContainers"] if c["command"][-1] == "kingpost.gateway"]
    args = list(render["args"])
    out = args[args.index("--out") + 1]
    (proxy,) = envoy["containers"]
    assert proxy["args"] == ["--config-path", out]
    args[args.index("--out") + 1] = str(tmp_path / "envoy.yaml")
    gateway.main(args)
    rendered = yaml.safe_load((tmp_path / "envoy.yaml").read_text())
    services = by_name("Service")
    for cluster in rendered["static_resources"]["clusters"]:
        address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
        target = services[address["address"].split(".")[0]]
        assert address["port_value"] in {p["port"] for p in target["spec"]["ports"]}, cluster["name"]
    listeners = {lst["address"]["socket_address"]["port_value"] for lst in rendered["static_resources"]["listeners"]}
    assert listeners == {p["containerPort"] for p in proxy["ports"]}
    # The descriptor the transcoder reads is copied where the config says, from the package.
    descriptor = args[args.index("--descriptor") + 1]
    copy = next(c for c in envoy["initContainers"] if c is not render)
    assert "kingpost.binpb" in copy["args"][0] and descriptor == "/etc/envoy/kingpost.binpb"
    from importlib.resources import files
    assert (files("kingpost") / "envoy" / "kingpost.binpb").is_file()

"""The agent's install files under deploy/ parse, carry what their platform requires, and run a
command that exists: each `kingpost agent` option they pass is one the CLI has."""

from __future__ import annotations

import configparser
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

"""`kingpost scheduler|builder|router|autoscaler|agent --config FILE`: run one service in the foreground."""

from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from kingpost.cli.app import cli
from kingpost.errors import KingpostError

# Command name → the importable package whose `main.main(config)` runs it, imported (lazily) only by the
# command that runs that service in this process.
SERVICE_PACKAGES = {
    "scheduler": "kingpost_scheduler",
    "builder": "kingpost_builder",
    "router": "kingpost_router",
    "autoscaler": "kingpost_autoscaler",
    "agent": "kingpost_worker_agent",
}


def run_service(name: str, config: Path | None, *args: Any, **overrides: Any) -> None:
    try:
        module = importlib.import_module(f"{SERVICE_PACKAGES[name]}.main")
        module.main(config, *args, **overrides)
    except KingpostError as e:  # bad settings and the like: one line in the log
        click.echo(f"error: {name}: {e.message}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(0)
    except Exception:  # noqa: BLE001 - a crash: the traceback belongs in the service's log
        traceback.print_exc()
        sys.exit(1)


def _make(name: str) -> click.Command:
    @click.command(name=name, short_help=f"Run the {name} service.",
                   help=f"Run the {name} service (settings: FILE, then KINGPOST_* variables).")
    @click.option("--config", "config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  default=None, help="The service's TOML config file.")
    def command(config: Path | None) -> None:
        run_service(name, config)

    return command


for _name in SERVICE_PACKAGES:
    if _name != "agent":
        cli.add_command(_make(_name))


def _labels(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    labels = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", ctx=ctx, param=param)
        labels[key] = text
    return labels


@cli.command(name="agent", short_help="Run the worker agent of this machine.")
@click.option("--config", "config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="The agent's TOML config file.")
@click.option("--join", "join", default="", metavar="HOST:PORT",
              help="Join the platform whose gRPC address this is (with --token) instead of a config's NATS.")
@click.option("--token", "token", default="", envvar="KINGPOST_JOIN_TOKEN",
              help="The join token (`kingpost nodes token`); also KINGPOST_JOIN_TOKEN.")
@click.option("--name", "name", default="", help="This node's name (unique among live nodes; default the host name).")
@click.option("--home", "home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The agent's home: its work dir is HOME/agent (one agent per home).")
@click.option("--gpus", "gpus", default="",
              help='Declare the GPUs ("H100:4", "A10G:1,T4:1") instead of asking NVML: tests, dev machines.')
@click.option("--label", "labels", multiple=True, callback=_labels, metavar="KEY=VALUE",
              help="A label of this node (repeatable).")
@click.option("--advertise-host", "advertise_host", default="",
              help="The address other machines reach this node at (default 127.0.0.1; set it on a cluster).")
def agent(config: Path | None, join: str, token: str, name: str, home: Path | None, gpus: str,
          labels: dict[str, str], advertise_host: str) -> None:
    """Run the worker agent (settings: FILE, then KINGPOST_* variables, then these options).

    On a new machine: `kingpost agent --join SCHEDULER:50051 --token kpjoin_...` registers it with its
    CPUs, memory and GPUs, and it runs replicas from then on."""
    if bool(join) != bool(token):
        raise click.UsageError("--join and --token go together: `kingpost nodes token` makes a token")
    overrides: dict[str, Any] = {}
    if home is not None:
        overrides.update(home=home.resolve(), work_dir=home.resolve() / "agent")
    if gpus:
        overrides["fake_gpus"] = gpus
    if name:
        overrides["node_name"] = name
    if labels:
        overrides["labels"] = labels
    if advertise_host:
        overrides["advertise_host"] = advertise_host
        overrides.setdefault("grpc_host", "0.0.0.0")
    run_service("agent", config, join=join, token=token, **overrides)

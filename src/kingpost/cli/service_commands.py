"""`kingpost scheduler|builder|router|autoscaler|agent --config FILE`: run one service in the foreground."""

from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path

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


def run_service(name: str, config: Path | None) -> None:
    try:
        module = importlib.import_module(f"{SERVICE_PACKAGES[name]}.main")
        module.main(config)
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
    cli.add_command(_make(_name))

"""`kingpost up`: run the whole platform locally, in the foreground."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from kingpost.cli.app import cli, json_option
from kingpost.client_config import home_dir


@cli.command("up")
@click.option("--port", "rest_port", type=click.IntRange(1, 65535), default=8080, show_default=True,
              help="REST port (inference and management).")
@click.option("--grpc-port", "grpc_port", type=click.IntRange(1, 65535), default=50051, show_default=True,
              help="gRPC port (the same services).")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="State, artifacts, logs and client config (default: $KINGPOST_HOME or ~/.kingpost).")
@json_option
def up(rest_port: int, grpc_port: int, home: Path | None, as_json: bool) -> None:
    """Start NATS, the services and Envoy; deploy the example on first start; Ctrl-C stops all."""
    from kingpost import up as up_module

    code = up_module.run(home=home or home_dir(os.environ), rest_port=rest_port, grpc_port=grpc_port,
                         as_json=as_json)
    sys.exit(code)

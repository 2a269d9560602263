"""`kingpost push DIR`: deploy a Truss and wait until it serves."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kingpost.cli.app import EXIT_FAILED, cli, json_option, load_config, print_json, run_async, to_dict
from kingpost.push import PushFailed, describe_status, push
from kingpost.v1 import builder_pb2, events_pb2, management_pb2


class Progress:
    """Upload progress and status lines on stderr (stdout stays for results)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()

    def line(self, text: str) -> None:
        if not self.quiet:
            click.echo(text, err=True)

    def upload(self, sent: int, total: int) -> None:
        if self.quiet:
            return
        text = f"Uploading {_size(sent)} / {_size(total)}"
        if self.tty:
            click.echo(f"\r{text}", err=True, nl=sent >= total)
        elif sent >= total:
            click.echo(text, err=True)

    def build(self, build: builder_pb2.Build) -> None:
        state = events_pb2.BuildState.Name(build.state).removeprefix("BUILD_STATE_")
        cached = " (cached)" if build.cached else ""
        self.line(f"Build {build.build_id}: {state}{cached}")
        for warning in build.warnings:
            self.line(f"warning: {warning}")

    def log(self, line: events_pb2.LogLine) -> None:
        if not self.quiet:
            if self.tty:
                click.echo("\r", err=True, nl=False)
            self.line(f"  | {line.text}")

    def status(self, deployment: management_pb2.Deployment) -> None:
        self.line(f"Deployment {describe_status(deployment)}")


def _size(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


@cli.command("push")
@click.argument("truss_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--publish", is_flag=True,
              help="Make a published deployment (what a plain push does; kept for scripts that say it).")
@click.option("--development", is_flag=True,
              help="Replace the development deployment instead of publishing (no watching; for scripts).")
@click.option("--watch", "watch_after", is_flag=True,
              help="Replace the development deployment, then live-reload it on every edit (`kingpost watch`).")
@click.option("--environment", default="", help="Deploy straight into this environment (implies --publish).")
@click.option("--deployment-name", default="", help="Name of the published deployment.")
@click.option("--model-name", default=None, help="Model name (default: config.yaml's model_name, else DIR's name).")
@click.option("--no-wait", is_flag=True, help="Return once the deployment is created.")
@click.option("--timeout", type=float, default=900.0, show_default=True,
              help="Seconds to wait for the deployment to become ACTIVE.")
@json_option
def push_command(truss_dir: Path, publish: bool, development: bool, watch_after: bool, environment: str,
                 deployment_name: str, model_name: str | None, no_wait: bool, timeout: float,
                 as_json: bool) -> None:
    """Push the Truss in DIR as a published deployment; wait until it is ACTIVE and print its
    predict URL. A model's first published deployment becomes its production deployment.

    As current truss: `--watch` makes the development deployment and live-reloads it,
    `--development` makes it without watching."""
    if development and watch_after:
        raise click.UsageError("--development and --watch both make the development deployment: give one")
    to_development = development or watch_after
    if to_development and (publish or environment or deployment_name):
        given = "--publish" if publish else "--environment" if environment else "--deployment-name"
        raise click.UsageError(f"{given} is for a published deployment; "
                               f"{'--watch' if watch_after else '--development'} replaces the development one")
    if watch_after:
        click.get_current_context().invoke(cli.commands["watch"], truss_dir=truss_dir, model_name=model_name)
        return
    config = load_config()
    progress = Progress(quiet=as_json)
    try:
        result = run_async(push(
            config, truss_dir, publish=not to_development, environment=environment,
            deployment_name=deployment_name, model_name=model_name, wait=not no_wait, timeout=timeout,
            first_to_production=not to_development,
            on_progress=progress.upload, on_build=progress.build, on_status=progress.status, on_log=progress.log,
        ))
    except PushFailed as e:
        if as_json:
            print_json({"error": e.message, "build_id": e.build_id, "logs": list(e.log_lines),
                        "deployment": to_dict(e.deployment) if e.deployment else None})
        click.echo(f"error: {e.message}", err=True)
        if e.log_lines:
            click.echo("Last log lines:", err=True)
            for line in e.log_lines:
                click.echo(f"  {line}", err=True)
        sys.exit(EXIT_FAILED)
    if as_json:
        print_json({
            "model": to_dict(result.model), "deployment": to_dict(result.deployment),
            "build": to_dict(result.build), "predict_url": result.predict_url, "warnings": result.warnings,
        })
        return
    d = result.deployment
    if no_wait:
        click.echo(f"Deployment {d.id} of model {result.model.name} ({result.model.id}) created: {d.status}.")
        click.echo(f"When it is ACTIVE it answers at {result.predict_url}")
        return
    click.echo(f"Model {result.model.name} ({result.model.id}), deployment {d.name or d.id} is ACTIVE.")
    click.echo(f"Predict URL: {result.predict_url}")
    click.echo(f"  {result.curl}")

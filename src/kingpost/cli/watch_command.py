"""`kingpost watch DIR`: push the Truss, then live-reload the development deployment on every edit."""

from __future__ import annotations

import time
from pathlib import Path

import click

from kingpost.cli.app import cli, load_config, run_async
from kingpost.cli.push_command import Progress
from kingpost.push import PushResult, push
from kingpost.watch import POLL_SECONDS, Reloaded, watch


def _now() -> str:
    return time.strftime("%H:%M:%S")


@cli.command("watch")
@click.argument("truss_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--model-name", default=None, help="Model name (default: config.yaml's model_name, else DIR's name).")
@click.option("--interval", type=float, default=POLL_SECONDS, show_default=True,
              help="Seconds between two looks at the files.")
def watch_command(truss_dir: Path, model_name: str | None, interval: float) -> None:
    """Push DIR as the development deployment, then reload it live on every edit (Ctrl-C stops).

    Model code reaches the running replica without a build; a change to requirements (config.yaml's
    requirements, python_version, the requirements file, ...) is a full push.
    """
    config = load_config()
    progress = Progress(quiet=False)

    async def push_once() -> PushResult:
        result = await push(config, truss_dir, model_name=model_name, on_progress=progress.upload,
                            on_build=progress.build, on_status=progress.status)
        click.echo(f"[{_now()}] Deployment {result.deployment.id} is ACTIVE: {result.predict_url}")
        return result

    def reloaded(r: Reloaded) -> None:
        shown = ", ".join(r.paths[:3]) + (f" and {len(r.paths) - 3} more" if len(r.paths) > 3 else "")
        click.echo(f"[{_now()}] Reloaded {shown} in {r.seconds:.2f} s "
                   f"(load {r.reply.load_seconds:.2f} s, {r.reply.reloaded} replica"
                   f"{'s' if r.reply.reloaded != 1 else ''})")

    def pushing(reason: str) -> None:
        click.echo(f"[{_now()}] {reason}: pushing")

    def failed(message: str) -> None:
        click.echo(f"[{_now()}] error: {message}", err=True)

    click.echo(f"Watching {truss_dir} (Ctrl-C stops)")
    try:
        run_async(watch(config, truss_dir, push=push_once, on_reload=reloaded, on_push=pushing,
                        on_error=failed, interval=interval))
    except KeyboardInterrupt:
        click.echo("Stopped watching.")

"""The `kingpost` command line (`kingpost --help`); `main` is the console script's entry point."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from kingpost.cli import (  # noqa: F401  (each module adds its commands to the group)
    async_commands,
    autoscaling_command,
    build_command,
    chains_command,
    init_command,
    inspect_commands,
    keys_command,
    lifecycle_commands,
    metrics_command,
    nodes_command,
    predict_command,
    push_command,
    secrets_command,
    service_commands,
    up_command,
    watch_command,
    webhook_secrets_command,
)
from kingpost.cli.app import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, cli, error_message
from kingpost.errors import KingpostError

__all__ = ["cli", "main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI; every error ends as one `error: ...` line and a non-zero exit."""
    try:
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="kingpost",
                        standalone_mode=False)
    except click.UsageError as e:
        click.echo(f"error: {error_message(e)}", err=True)
        sys.exit(EXIT_USAGE)
    except (KingpostError, click.ClickException) as e:
        click.echo(f"error: {error_message(e)}", err=True)
        detail = getattr(e, "detail", "")  # e.g. the tail of a failed process's log
        if detail:
            click.echo(detail, err=True)
        sys.exit(EXIT_FAILED)
    except (KeyboardInterrupt, click.Abort):
        click.echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        sys.exit(EXIT_FAILED)
    except Exception as e:  # a bug: still one line, unless asked for the traceback
        if os.environ.get("KINGPOST_DEBUG"):
            raise
        click.echo(f"error: unexpected {type(e).__name__}: {e} (KINGPOST_DEBUG=1 shows the traceback)",
                   err=True)
        sys.exit(EXIT_FAILED)
    sys.exit(code if isinstance(code, int) else 0)

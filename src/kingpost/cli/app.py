"""The `kingpost` command group, its `--json` option, and the one seam where errors become a line.

Every failure reaches the user as one line, `error: <message>`, on stderr, and a non-zero exit:
1 for a failed operation, 2 for a command line that does not parse, 130 for Ctrl-C.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from kingpost import client_config, rpc
from kingpost.client_config import ClientConfig
from kingpost.errors import KingpostError, Unavailable

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kingpost")
def cli() -> None:
    """kingpost: push a Truss, get a versioned API.

    Clients find the platform through KINGPOST_URL, KINGPOST_GRPC and KINGPOST_API_KEY, else
    $KINGPOST_HOME/config.toml (written by `kingpost up`; home is ~/.kingpost by default).
    """


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document for scripts.")(f)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def load_config() -> ClientConfig:
    return client_config.load()


async def call(stub_class: Callable[[Any], Any], method_name: str, request: Any) -> Any:
    """One call, with the API key, to the platform the client config names."""
    config = load_config()
    auth = rpc.api_key(config.require_api_key())
    async with rpc.channel(config.grpc) as channel:
        return await rpc.call(getattr(stub_class(channel), method_name), request, auth=auth)


def to_dict(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def error_message(e: BaseException) -> str:
    """The one line a user sees for an error."""
    if isinstance(e, Unavailable) and ("failed to connect" in e.message or "Connection refused" in e.message):
        return f"cannot reach kingpost ({e.message}); is `kingpost up` running? (KINGPOST_GRPC sets the address)"
    if isinstance(e, KingpostError):
        return e.message.strip().splitlines()[0] if e.message.strip() else type(e).__name__
    if isinstance(e, click.UsageError):
        hint = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
        return f"{e.format_message()}{hint}"
    if isinstance(e, click.ClickException):
        return e.format_message()
    return str(e) or type(e).__name__


def fail(message: str, code: int = EXIT_FAILED) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)

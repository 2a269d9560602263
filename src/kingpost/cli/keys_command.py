"""`kingpost keys create|list|revoke`: the API keys that may call the platform (`/v1/api_keys`)."""

from __future__ import annotations

import click

from kingpost.cli.app import cli, json_option, print_json, run_async, to_dict
from kingpost.cli.inspect_commands import management_call, table
from kingpost.v1 import management_pb2


@cli.group("keys")
def keys() -> None:
    """API keys (`Authorization: Api-Key <key>`)."""


@keys.command("create")
@click.option("--name", default="key", show_default=True, help="What the key is for.")
@json_option
def keys_create(name: str, as_json: bool) -> None:
    """Create a key; the whole key is shown once, and only its prefix afterwards."""
    reply = run_async(management_call("CreateApiKey", management_pb2.CreateApiKeyRequest(name=name)))
    if as_json:
        print_json({"api_key": to_dict(reply.api_key), "key": reply.key})
        return
    click.echo(f"API key {reply.api_key.prefix} ({reply.api_key.name}) created; it is shown only now:")
    click.echo(reply.key)


@keys.command("list")
@json_option
def keys_list(as_json: bool) -> None:
    """List the keys that are not revoked (prefix and name, never the key)."""
    reply = run_async(management_call("ListApiKeys", management_pb2.ListApiKeysRequest()))
    if as_json:
        print_json({"api_keys": [to_dict(k) for k in reply.api_keys]})
        return
    rows = [(k.prefix, k.name, k.created_at.ToJsonString()) for k in reply.api_keys]
    click.echo(table(rows, ("PREFIX", "NAME", "CREATED")))


@keys.command("revoke")
@click.argument("prefix")
@json_option
def keys_revoke(prefix: str, as_json: bool) -> None:
    """Revoke the key PREFIX names (as `keys list` shows it): the router refuses it from then on."""
    run_async(management_call("RevokeApiKey", management_pb2.RevokeApiKeyRequest(prefix=prefix)))
    if as_json:
        print_json({"success": True})
    else:
        click.echo(f"API key {prefix} revoked.")

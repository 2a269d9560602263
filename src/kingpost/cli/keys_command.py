"""`kingpost keys create|list|revoke`: the API keys that may call the platform (`/v1/api_keys`)."""

from __future__ import annotations

import click

from kingpost import key_scopes
from kingpost.cli.app import cli, json_option, print_json, run_async, to_dict
from kingpost.cli.inspect_commands import management_call, table
from kingpost.v1 import management_pb2


@cli.group("keys")
def keys() -> None:
    """API keys (`Authorization: Api-Key <key>`)."""


@keys.command("create")
@click.option("--name", default="key", show_default=True, help="What the key is for.")
@click.option("--invoke-only", is_flag=True,
              help="A key that may only call models (WORKSPACE_INVOKE), not manage them.")
@click.option("--model", "models", multiple=True, metavar="MODEL",
              help="With --invoke-only: the only model it may call (id or name; repeat for several).")
@json_option
def keys_create(name: str, invoke_only: bool, models: tuple[str, ...], as_json: bool) -> None:
    """Create a key; the whole key is shown once, and only its prefix afterwards.

    By default the key manages and invokes everything (WORKSPACE_MANAGE_ALL)."""
    if models and not invoke_only:
        raise click.UsageError("--model limits an invoke-only key: add --invoke-only")
    request = management_pb2.CreateApiKeyRequest(
        name=name, type=key_scopes.INVOKE if invoke_only else key_scopes.MANAGE_ALL, model_ids=models)
    reply = run_async(management_call("CreateApiKey", request))
    if as_json:
        print_json(to_dict(reply))
        return
    scope = "manage and invoke everything" if not invoke_only else (
        "invoke " + (", ".join(reply.model_ids) if reply.model_ids else "every model"))
    click.echo(f"API key {reply.prefix} ({reply.name}: {scope}) created; it is shown only now:")
    click.echo(reply.api_key)


@keys.command("list")
@json_option
def keys_list(as_json: bool) -> None:
    """List the keys that are not revoked (prefix and name, never the key)."""
    reply = run_async(management_call("ListApiKeys", management_pb2.ListApiKeysRequest()))
    if as_json:
        print_json({"keys": [to_dict(k) for k in reply.keys]})
        return
    rows = [(k.prefix, k.name, k.type, ",".join(k.model_ids) or "-", k.created_at.ToJsonString())
            for k in reply.keys]
    click.echo(table(rows, ("PREFIX", "NAME", "TYPE", "MODELS", "CREATED")))


@keys.command("revoke")
@click.argument("prefix")
@json_option
def keys_revoke(prefix: str, as_json: bool) -> None:
    """Revoke the key PREFIX names (as `keys list` shows it): the router refuses it from then on."""
    run_async(management_call("RevokeApiKey", management_pb2.RevokeApiKeyRequest(prefix=prefix)))
    if as_json:
        print_json({"prefix": prefix})
    else:
        click.echo(f"API key {prefix} revoked.")

"""`kingpost secrets set|list|delete`: the values a Truss's `secrets:` names (`/v1/secrets`).

A value is read from stdin (or typed, hidden, at a terminal), never from the command line, where
other users of the machine and the shell's history would see it."""

from __future__ import annotations

import sys

import click

from kingpost.cli.app import cli, json_option, print_json, run_async, to_dict
from kingpost.cli.inspect_commands import management_call, table
from kingpost.v1 import management_pb2


@cli.group("secrets")
def secrets() -> None:
    """Secrets: a model reads them as `secrets["NAME"]` (and the file /secrets/NAME, as truss mounts them)."""


@secrets.command("set")
@click.argument("name")
@json_option
def secrets_set(name: str, as_json: bool) -> None:
    """Create or replace the secret NAME; its value comes from stdin (a prompt at a terminal).

    Deployments started afterwards get the new value; push again (or deactivate and activate) to
    give it to running replicas."""
    if sys.stdin.isatty():
        value = click.prompt(f"Value of {name}", hide_input=True)
    else:
        value = sys.stdin.read().removesuffix("\n")
    reply = run_async(management_call("UpsertSecret", management_pb2.UpsertSecretRequest(name=name, value=value)))
    if as_json:
        print_json(to_dict(reply))
    else:
        click.echo(f"Secret {reply.name} set.")


@secrets.command("list")
@json_option
def secrets_list(as_json: bool) -> None:
    """List the secrets' names (never their values)."""
    reply = run_async(management_call("ListSecrets", management_pb2.ListSecretsRequest()))
    if as_json:
        print_json({"secrets": [to_dict(s) for s in reply.secrets]})
        return
    click.echo(table([(s.name, s.created_at.ToJsonString()) for s in reply.secrets], ("NAME", "CREATED")))


@secrets.command("delete")
@click.argument("name")
@json_option
def secrets_delete(name: str, as_json: bool) -> None:
    """Delete the secret NAME."""
    run_async(management_call("DeleteSecret", management_pb2.DeleteSecretRequest(secret_name=name)))
    if as_json:
        print_json({"name": name})
    else:
        click.echo(f"Secret {name} deleted.")

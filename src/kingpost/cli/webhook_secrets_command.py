"""`kingpost webhook-secrets create|list|delete`: what signs async results (`/v1/webhook_secrets`)."""

from __future__ import annotations

import click

from kingpost.cli.app import cli, json_option, print_json, run_async, to_dict
from kingpost.cli.inspect_commands import management_call, table
from kingpost.v1 import management_pb2


@cli.group("webhook-secrets")
def webhook_secrets() -> None:
    """Secrets that sign async results (X-BASETEN-SIGNATURE: v1=<HMAC-SHA256 of the body>, one per secret)."""


@webhook_secrets.command("create")
@json_option
def webhook_secrets_create(as_json: bool) -> None:
    """Create a secret; webhooks are signed with it (too) from now on."""
    reply = run_async(management_call("CreateWebhookSecret", management_pb2.CreateWebhookSecretRequest()))
    if as_json:
        print_json({"secret": reply.secret, "id": reply.id, "created_at": reply.created_at.ToJsonString()})
        return
    click.echo(f"Webhook secret {reply.id} created:")
    click.echo(reply.secret)


@webhook_secrets.command("list")
@json_option
def webhook_secrets_list(as_json: bool) -> None:
    """List the active secrets, newest first."""
    reply = run_async(management_call("ListWebhookSecrets", management_pb2.ListWebhookSecretsRequest()))
    if as_json:
        print_json({"webhook_secrets": [to_dict(w) for w in reply.webhook_secrets]})
        return
    rows = [(w.id, w.secret, w.created_at.ToJsonString()) for w in reply.webhook_secrets]
    click.echo(table(rows, ("ID", "SECRET", "CREATED")))


@webhook_secrets.command("delete")
@click.argument("secret_id")
@json_option
def webhook_secrets_delete(secret_id: str, as_json: bool) -> None:
    """Stop signing with SECRET_ID (the end of a rotation)."""
    run_async(management_call("DeleteWebhookSecret", management_pb2.DeleteWebhookSecretRequest(id=secret_id)))
    if as_json:
        print_json({"success": True})
    else:
        click.echo(f"Webhook secret {secret_id} deleted.")

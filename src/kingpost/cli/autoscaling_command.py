"""`kingpost autoscaling get|set MODEL [--deployment ID]`: a deployment's autoscaling settings."""

from __future__ import annotations

from typing import Any

import click

from kingpost import autoscaling_settings
from kingpost.cli.app import cli, json_option, print_json, run_async, to_dict
from kingpost.cli.inspect_commands import management_call, table
from kingpost.v1 import management_pb2

deployment_option = click.option(
    "--deployment", "deployment", default="production", show_default=True,
    help="Deployment id or name; 'production' and 'development' name the model's current ones.")


def settings_options(f: Any) -> Any:
    """Every autoscaling setting as an option (None when not given), for `autoscaling set` and
    `environments create|update`; the option names the field, `--backpressure` and `--cold-start-timeout`
    excepted, and the request logging ones (kingpost extensions, shorter to type)."""
    f = click.option("--request-log-max-bytes", "request_logging_max_bytes", type=int, default=None,
                     help="kingpost extension: each logged input and output is cut at this many bytes, "
                          f"1 to {autoscaling_settings.MAX_REQUEST_LOGGING_BYTES} (default "
                          f"{autoscaling_settings.DEFAULT_REQUEST_LOGGING_MAX_BYTES}).")(f)
    f = click.option("--request-log-sample-rate", "request_logging_sample_rate", type=float, default=None,
                     help="kingpost extension: the share of requests, 0 to 1, whose input and output the "
                          "runner logs (default 0: none); replicas started after the change apply it.")(f)
    f = click.option("--cold-start-timeout", "cold_start_timeout_seconds", type=int, default=None,
                     help="kingpost extension: seconds a request waits for a first ready replica before "
                          "its 503, 1 to 3600 (default 300).")(f)
    f = click.option("--backpressure", "backpressure_policy",
                     type=click.Choice(autoscaling_settings.BACKPRESSURE_POLICIES), default=None,
                     help="kingpost extension: what a request meets when every replica is busy: wait in the "
                          "router's queue (queue, the default) or 429 at once (reject).")(f)
    helps = {"autoscaling_window": "Seconds, 10 to 3600.", "scale_down_delay": "Seconds, 0 to 3600.",
             "target_utilization_percentage": "1 to 100."}
    for name in reversed(autoscaling_settings.BASETEN_FIELDS):
        f = click.option(f"--{name.replace('_', '-')}", name, type=int, default=None, help=helps.get(name))(f)
    return f


def given(values: dict[str, Any]) -> dict[str, Any]:
    """The settings among `values` that were given."""
    return {k: v for k, v in values.items() if k in autoscaling_settings.FIELDS and v is not None}


def settings_rows(settings: management_pb2.AutoscalingSettings) -> list[tuple[str, str]]:
    return [(f, str(getattr(settings, f))) for f in autoscaling_settings.FIELDS]


@cli.group("autoscaling")
def autoscaling() -> None:
    """A deployment's autoscaling settings (Baseten's: replicas, window, delay, target; kingpost's:
    back-pressure policy, cold-start timeout, request logging)."""


@autoscaling.command("get")
@click.argument("model")
@deployment_option
@json_option
def autoscaling_get(model: str, deployment: str, as_json: bool) -> None:
    """Show MODEL's deployment's autoscaling settings (MODEL: id or name)."""
    reply = run_async(management_call("GetDeployment", management_pb2.GetDeploymentRequest(
        model_id=model, deployment_id=deployment)))
    d = reply
    if as_json:
        print_json({"deployment_id": d.id, "status": d.status, "active_replica_count": d.active_replica_count,
                    "autoscaling_settings": to_dict(d.autoscaling_settings)})
        return
    click.echo(f"deployment {d.id} ({d.name}): {d.status}, {d.active_replica_count} ready replica(s)")
    click.echo(table(settings_rows(d.autoscaling_settings), ("SETTING", "VALUE")))


@autoscaling.command("set")
@click.argument("model")
@deployment_option
@settings_options
@json_option
def autoscaling_set(model: str, deployment: str, as_json: bool, **values: Any) -> None:
    """Change MODEL's deployment's autoscaling settings; settings not given keep their value."""
    changes = given(values)
    if not changes:
        raise click.UsageError("give at least one setting to change, e.g. --max-replica 4")
    get = run_async(management_call("GetDeployment", management_pb2.GetDeploymentRequest(
        model_id=model, deployment_id=deployment)))
    reply = run_async(management_call("UpdateAutoscalingSettings", management_pb2.UpdateAutoscalingSettingsRequest(
        model_id=get.model_id, deployment_id=get.id, **changes)))
    if as_json:
        print_json(to_dict(reply))
        return
    click.echo(f"{reply.status}: {reply.message}")

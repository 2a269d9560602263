"""`kingpost autoscaling get|set MODEL [--deployment ID]`: a deployment's autoscaling settings."""

from __future__ import annotations

import click

from kingpost.cli.app import cli, json_option, print_json, run_async, to_dict
from kingpost.cli.inspect_commands import management_call, table
from kingpost.v1 import management_pb2

FIELDS = ("min_replica", "max_replica", "autoscaling_window", "scale_down_delay", "concurrency_target",
          "target_utilization_percentage")
deployment_option = click.option(
    "--deployment", "deployment", default="production", show_default=True,
    help="Deployment id or name; 'production' and 'development' name the model's current ones.")


@cli.group("autoscaling")
def autoscaling() -> None:
    """A deployment's autoscaling settings (Baseten's: replicas, window, delay, target)."""


@autoscaling.command("get")
@click.argument("model")
@deployment_option
@json_option
def autoscaling_get(model: str, deployment: str, as_json: bool) -> None:
    """Show MODEL's deployment's autoscaling settings (MODEL: id or name)."""
    reply = run_async(management_call("GetDeployment", management_pb2.GetDeploymentRequest(
        model_id=model, deployment_id=deployment)))
    d = reply.deployment
    settings = d.autoscaling_settings
    if as_json:
        print_json({"deployment_id": d.id, "status": d.status, "active_replica_count": d.active_replica_count,
                    "autoscaling_settings": {f: getattr(settings, f) for f in FIELDS}})
        return
    rows = [(f, str(getattr(settings, f))) for f in FIELDS]
    click.echo(f"deployment {d.id} ({d.name}): {d.status}, {d.active_replica_count} ready replica(s)")
    click.echo(table(rows, ("SETTING", "VALUE")))


@autoscaling.command("set")
@click.argument("model")
@deployment_option
@click.option("--min-replica", type=int)
@click.option("--max-replica", type=int)
@click.option("--autoscaling-window", type=int, help="Seconds, 10 to 3600.")
@click.option("--scale-down-delay", type=int, help="Seconds, 0 to 3600.")
@click.option("--concurrency-target", type=int)
@click.option("--target-utilization-percentage", type=int, help="1 to 100.")
@json_option
def autoscaling_set(model: str, deployment: str, as_json: bool, **values: int | None) -> None:
    """Change MODEL's deployment's autoscaling settings; settings not given keep their value."""
    changes = {k: v for k, v in values.items() if v is not None}
    if not changes:
        raise click.UsageError("give at least one setting to change, e.g. --max-replica 4")
    get = run_async(management_call("GetDeployment", management_pb2.GetDeploymentRequest(
        model_id=model, deployment_id=deployment)))
    reply = run_async(management_call("UpdateAutoscalingSettings", management_pb2.UpdateAutoscalingSettingsRequest(
        model_id=get.deployment.model_id, deployment_id=get.deployment.id, **changes)))
    if as_json:
        print_json(to_dict(reply))
        return
    click.echo(f"{reply.status}: {reply.message}")

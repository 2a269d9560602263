"""The model lifecycle: `kingpost deployments get|activate|deactivate|delete|promote`,
`kingpost environments list|create|get|update|delete|promote|cancel-promotion`, `kingpost models get|delete`."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import click

from kingpost.cli.app import cli, json_option, print_json, run_async, to_dict
from kingpost.cli.autoscaling_command import given, settings_options
from kingpost.cli.inspect_commands import deployments, management_call, models, table, triton_summary
from kingpost.errors import Conflict, DeadlineExceeded
from kingpost.management_shapes import current_deployment
from kingpost.v1 import management_pb2

PRODUCTION = "production"


def _deployment_line(d: management_pb2.Deployment) -> str:
    where = f", {d.environment}" if d.environment else ""
    reason = f" ({d.status_reason})" if d.status_reason else ""
    return f"{d.name} ({d.id}): {d.status}{reason}{where}, {d.active_replica_count} ready replica(s)"


def _replica_lines(d: management_pb2.Deployment) -> list[str]:
    """Each replica: its state, restarts, and how its runner last ended with its last lines."""
    lines = []
    for r in d.replicas:
        state = "CRASH-LOOPING" if r.crash_looping else r.state
        restarts = f", restarted {r.restarts} time(s)" if r.restarts else ""
        lines.append(f"  replica {r.id} on {r.node_id or '-'}: {state}{restarts}")
        if r.last_exit:
            last = r.last_exit.strip().splitlines()
            lines.append(f"    last exit: {last[0]}")
            lines.extend(f"      {line}" for line in last[1:])
    return lines


def _autoscaling_line(s: management_pb2.AutoscalingSettings) -> str:
    return (f"autoscaling: replicas {s.min_replica}..{s.max_replica}, "
            f"window {s.autoscaling_window}s, scale-down delay {s.scale_down_delay}s, "
            f"concurrency target {s.concurrency_target}, utilization {s.target_utilization_percentage}%, "
            f"back-pressure {s.backpressure_policy}, cold-start timeout {s.cold_start_timeout_seconds}s, "
            + (f"request logging {s.request_logging_sample_rate:g} of requests, {s.request_logging_max_bytes} "
               "bytes a body" if s.request_logging_sample_rate > 0 else "request logging off"))


def _environment_line(e: management_pb2.Environment) -> str:
    serving = current_deployment(e)
    current = _deployment_line(serving) if serving is not None else "no deployment yet"
    promoting = f"; promoting {e.promoting_deployment_id}" if e.promoting_deployment_id else ""
    failure = f"; last promotion failed: {e.promotion_failure}" if e.promotion_failure else ""
    s = e.autoscaling_settings
    p = e.promotion_settings
    canary = ""
    if e.HasField("current_canary"):
        c = e.current_canary
        canary = (f"\n  canary: stage {c.stage}/{c.stages} over {c.ramp_up_duration_seconds}s, "
                  + (f"{c.candidate_weight}% to {c.deployment_id}" if c.stage else
                     f"waiting for {c.deployment_id}'s ready replicas"))
    traffic = ", ".join(f"{d} {w}%" for d, w in sorted(e.traffic.items(), key=lambda x: -x[1]))
    return (f"{e.name}: {current}{promoting}{failure}{canary}\n  traffic: {traffic or '-'}"
            f"\n  {_autoscaling_line(s)}"
            f"\n  promotion: ramp up while promoting {'on' if p.ramp_up_while_promoting else 'off'}, "
            f"over {p.ramp_up_duration_seconds}s")


def _done(as_json: bool, what: str) -> None:
    if as_json:
        print_json({"success": True})
    else:
        click.echo(what)


# --- models -------------------------------------------------------------------------------------


@models.command("get")
@click.argument("model")
@json_option
def models_get(model: str, as_json: bool) -> None:
    """Show MODEL (id or name)."""
    m = run_async(management_call("GetModel", management_pb2.GetModelRequest(model_id=model)))
    if as_json:
        print_json(to_dict(m))
        return
    click.echo(f"{m.name} ({m.id}): {m.deployments_count} deployment(s); production "
               f"{m.production_deployment_id or '-'}, development {m.development_deployment_id or '-'}")


@models.command("delete")
@click.argument("model")
@json_option
def models_delete(model: str, as_json: bool) -> None:
    """Delete MODEL, its deployments and environments."""
    run_async(management_call("DeleteModel", management_pb2.DeleteModelRequest(model_id=model)))
    _done(as_json, f"Model {model} deleted.")


# --- deployments --------------------------------------------------------------------------------


@deployments.command("get")
@click.argument("model")
@click.argument("deployment")
@json_option
def deployments_get(model: str, deployment: str, as_json: bool) -> None:
    """Show DEPLOYMENT (id, name, `development` or `production`) of MODEL."""
    d = run_async(management_call("GetDeployment", management_pb2.GetDeploymentRequest(
        model_id=model, deployment_id=deployment)))
    triton = run_async(triton_summary(d.build_id)) if d.build_id else ""
    if as_json:
        print_json(to_dict(d) | ({"triton": triton} if triton else {}))
        return
    click.echo(_deployment_line(d))
    click.echo(f"  {_autoscaling_line(d.autoscaling_settings)}")
    r = d.resources
    click.echo(f"  resources per replica: {r.cpu:g} CPU, {r.memory_bytes / 2**30:.3g} GiB"
               f"{', ' + r.accelerator if r.accelerator else ''}"
               f"{' (instance type ' + r.instance_type + ')' if r.instance_type else ''}")
    if triton:
        click.echo(f"  triton: {triton}")
    for line in _replica_lines(d):
        click.echo(line)


def _action(method: str, request_type: Any, verb: str) -> Any:
    @click.argument("model")
    @click.argument("deployment")
    @json_option
    def command(model: str, deployment: str, as_json: bool) -> None:
        run_async(management_call(method, request_type(model_id=model, deployment_id=deployment)))
        _done(as_json, f"Deployment {deployment} of {model} {verb}.")

    return command


deployments.command("activate", help="Activate DEPLOYMENT of MODEL: its replicas start again.")(
    _action("ActivateDeployment", management_pb2.ActivateDeploymentRequest, "activated"))
deployments.command("deactivate", help="Deactivate DEPLOYMENT of MODEL: no compute, requests 404, "
                                       "configuration kept.")(
    _action("DeactivateDeployment", management_pb2.DeactivateDeploymentRequest, "deactivated"))
deployments.command("delete", help="Delete DEPLOYMENT of MODEL for good (an environment's current "
                                   "deployment must be replaced first).")(
    _action("DeleteDeployment", management_pb2.DeleteDeploymentRequest, "deleted"))


@deployments.command("rename")
@click.argument("model")
@click.argument("deployment")
@click.argument("name")
@json_option
def deployments_rename(model: str, deployment: str, name: str, as_json: bool) -> None:
    """Rename DEPLOYMENT of MODEL to NAME (cosmetic: its id stays)."""
    d = run_async(management_call("UpdateDeployment", management_pb2.UpdateDeploymentRequest(
        model_id=model, deployment_id=deployment, name=name)))
    if as_json:
        print_json(to_dict(d))
        return
    click.echo(_deployment_line(d))


async def _promote(model: str, env: str, deployment: str, wait: bool, timeout: float, canary: int | None = None
                   ) -> tuple[management_pb2.Deployment, management_pb2.Environment | None]:
    reply = await management_call("PromoteDeployment", management_pb2.PromoteDeploymentRequest(
        model_id=model, env_name=env, deployment_id=deployment, ramp_up_duration_seconds=canary))
    candidate = reply
    if not wait:
        return candidate, None
    deadline = time.monotonic() + timeout
    while True:
        e = (await management_call("GetEnvironment", management_pb2.GetEnvironmentRequest(
            model_id=model, env_name=env)))
        serving = current_deployment(e)
        if serving is not None and serving.id == candidate.id and e.promoting_deployment_id != candidate.id:
            return candidate, e
        if e.promoting_deployment_id != candidate.id:
            raise Conflict(f"promotion of {candidate.id} to {env} failed: {e.promotion_failure or 'replaced'}")
        if time.monotonic() > deadline:
            raise DeadlineExceeded(f"{candidate.id} is not serving {env} after {timeout:.0f} s; "
                                   f"`kingpost environments get {model} {env}` shows the promotion")
        await asyncio.sleep(0.25)


def _promote_command(model: str, env: str, deployment: str, no_wait: bool, timeout: float, as_json: bool,
                     canary: int | None = None) -> None:
    candidate, e = run_async(_promote(model, env, deployment, not no_wait, timeout, canary))
    if as_json:
        print_json({"deployment": to_dict(candidate), "environment": to_dict(e) if e else None})
        return
    if e is None:
        click.echo(f"Promoting {candidate.name} ({candidate.id}) to {env}; "
                   f"`kingpost environments get {model} {env}` shows when it serves.")
    else:
        click.echo(f"{candidate.name} ({candidate.id}) now serves {env}.")


_wait_options = [
    click.option("--no-wait", is_flag=True, help="Return once the promotion has started."),
    click.option("--timeout", type=float, default=900.0, show_default=True,
                 help="Seconds to wait for the promoted deployment to serve."),
    click.option("--canary-duration", "canary", type=int, default=None, metavar="SECONDS",
                 help="Move traffic in 10 stages over SECONDS once the new deployment is ready (0: at once); "
                      "default: the environment's promotion settings."),
]


@deployments.command("promote")
@click.argument("model")
@click.argument("deployment")
@click.option("--environment", "env", default=PRODUCTION, show_default=True, help="The environment.")
@_wait_options[0]
@_wait_options[1]
@_wait_options[2]
@json_option
def deployments_promote(model: str, deployment: str, env: str, no_wait: bool, timeout: float,
                        as_json: bool, canary: int | None) -> None:
    """Promote DEPLOYMENT of MODEL to an environment (production by default); wait until it serves."""
    _promote_command(model, env, deployment, no_wait, timeout, as_json, canary)


# --- environments -------------------------------------------------------------------------------


@cli.group("environments")
def environments() -> None:
    """A model's environments: stable endpoints with their own autoscaling settings."""


def _patch(values: dict[str, Any]) -> management_pb2.EnvironmentAutoscalingPatch:
    return management_pb2.EnvironmentAutoscalingPatch(**given(values))


_PROMOTION_FIELDS = ("ramp_up_while_promoting", "ramp_up_duration_seconds")


def _promotion_options(f: Any) -> Any:
    f = click.option("--ramp-up-duration-seconds", type=int, default=None,
                     help="A canary's window: traffic moves in 10 even stages over it.")(f)
    return click.option("--ramp-up-while-promoting/--no-ramp-up-while-promoting", default=None,
                        help="Promotions into the environment are canaries (Baseten's setting).")(f)


def _promotion_patch(values: dict[str, Any]) -> management_pb2.PromotionSettings | None:
    given = {k: values[k] for k in _PROMOTION_FIELDS if values.get(k) is not None}
    return management_pb2.PromotionSettings(**given) if given else None


@environments.command("list")
@click.argument("model")
@json_option
def environments_list(model: str, as_json: bool) -> None:
    """List MODEL's environments."""
    reply = run_async(management_call("ListEnvironments", management_pb2.ListEnvironmentsRequest(model_id=model)))
    if as_json:
        print_json({"environments": [to_dict(e) for e in reply.environments]})
        return
    rows = [(e.name, (d := current_deployment(e) or management_pb2.Deployment()).id or "-", d.status or "-",
             e.promoting_deployment_id or "-") for e in reply.environments]
    click.echo(table(rows, ("NAME", "DEPLOYMENT", "STATUS", "PROMOTING")))


@environments.command("get")
@click.argument("model")
@click.argument("name")
@json_option
def environments_get(model: str, name: str, as_json: bool) -> None:
    """Show environment NAME of MODEL."""
    e = run_async(management_call("GetEnvironment", management_pb2.GetEnvironmentRequest(
        model_id=model, env_name=name)))
    if as_json:
        print_json(to_dict(e))
        return
    click.echo(_environment_line(e))


@environments.command("create")
@click.argument("model")
@click.argument("name")
@settings_options
@_promotion_options
@json_option
def environments_create(model: str, name: str, as_json: bool, **settings: Any) -> None:
    """Create environment NAME for MODEL (autoscaling settings default to Baseten's)."""
    e = run_async(management_call("CreateEnvironment", management_pb2.CreateEnvironmentRequest(
        model_id=model, name=name, autoscaling_settings=_patch(settings),
        promotion_settings=_promotion_patch(settings))))
    if as_json:
        print_json(to_dict(e))
        return
    click.echo(f"Environment {e.name} created; promote a deployment into it: "
               f"`kingpost environments promote {model} {e.name} DEPLOYMENT`")


@environments.command("update")
@click.argument("model")
@click.argument("name")
@settings_options
@_promotion_options
@json_option
def environments_update(model: str, name: str, as_json: bool, **settings: Any) -> None:
    """Change environment NAME's autoscaling and promotion settings (only those given)."""
    e = run_async(management_call("UpdateEnvironment", management_pb2.UpdateEnvironmentRequest(
        model_id=model, env_name=name, autoscaling_settings=_patch(settings),
        promotion_settings=_promotion_patch(settings)))).environment
    if as_json:
        print_json(to_dict(e))
        return
    click.echo(_environment_line(e))


@environments.command("delete")
@click.argument("model")
@click.argument("name")
@json_option
def environments_delete(model: str, name: str, as_json: bool) -> None:
    """Delete environment NAME of MODEL (never production); its deployment stays."""
    run_async(management_call("DeleteEnvironment", management_pb2.DeleteEnvironmentRequest(
        model_id=model, env_name=name)))
    _done(as_json, f"Environment {name} of {model} deleted.")


@environments.command("promote")
@click.argument("model")
@click.argument("name")
@click.argument("deployment")
@_wait_options[0]
@_wait_options[1]
@_wait_options[2]
@json_option
def environments_promote(model: str, name: str, deployment: str, no_wait: bool, timeout: float,
                         as_json: bool, canary: int | None) -> None:
    """Promote DEPLOYMENT into environment NAME of MODEL; wait until it serves."""
    _promote_command(model, name, deployment, no_wait, timeout, as_json, canary)


@environments.command("cancel-promotion")
@click.argument("model")
@click.argument("name")
@json_option
def environments_cancel_promotion(model: str, name: str, as_json: bool) -> None:
    """Cancel the promotion into environment NAME of MODEL: all traffic back to its current deployment."""
    e = run_async(management_call("CancelPromotion", management_pb2.CancelPromotionRequest(
        model_id=model, env_name=name))).environment
    if as_json:
        print_json(to_dict(e))
        return
    click.echo(_environment_line(e))

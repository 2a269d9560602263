"""`kingpost models list`, `deployments list MODEL`, `status`, `logs`: read the platform's state."""

from __future__ import annotations

import asyncio
import datetime
import json
import time
from collections.abc import Sequence
from typing import Any

import click

from kingpost import rpc
from kingpost.cli.app import call, cli, json_option, load_config, print_json, run_async, to_dict
from kingpost.push import format_log_line
from kingpost.v1 import builder_pb2, builder_pb2_grpc, management_pb2, management_pb2_grpc


async def management_call(method_name: str, request: Any) -> Any:
    return await call(management_pb2_grpc.ManagementServiceStub, method_name, request)


async def triton_summary(build_id: str) -> str:
    """A Triton deployment's models and batching, as its build read them ("" for a Truss)."""
    config = load_config()
    async with rpc.channel(config.grpc) as channel:
        stub = builder_pb2_grpc.BuildServiceStub(channel)
        build = await rpc.call(stub.GetBuild, builder_pb2.GetBuildRequest(build_id=build_id),
                               auth=rpc.api_key(config.require_api_key()))
    return build.build.truss.triton


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


@cli.group("models")
def models() -> None:
    """Models."""


@models.command("list")
@json_option
def models_list(as_json: bool) -> None:
    """List the models."""
    reply = run_async(management_call("ListModels", management_pb2.ListModelsRequest()))
    if as_json:
        print_json({"models": [to_dict(m) for m in reply.models]})
        return
    if not reply.models:
        click.echo("No models yet: `kingpost push DIR` deploys one.")
        return
    rows = [(m.id, m.name, str(m.deployments_count), m.production_deployment_id or "-",
             m.development_deployment_id or "-") for m in reply.models]
    click.echo(table(rows, ("ID", "NAME", "DEPLOYMENTS", "PRODUCTION", "DEVELOPMENT")))


@cli.group("deployments")
def deployments() -> None:
    """A model's deployments."""


@deployments.command("list")
@click.argument("model")
@json_option
def deployments_list(model: str, as_json: bool) -> None:
    """List MODEL's deployments (MODEL: id or name)."""
    reply = run_async(management_call("ListDeployments", management_pb2.ListDeploymentsRequest(model_id=model)))
    if as_json:
        print_json({"deployments": [to_dict(d) for d in reply.deployments]})
        return
    rows = [(d.id, d.name, d.status, str(d.active_replica_count), d.environment or "-",
             "yes" if d.is_development else "", d.status_reason) for d in reply.deployments]
    click.echo(table(rows, ("ID", "NAME", "STATUS", "REPLICAS", "ENVIRONMENT", "DEV", "REASON")))


@cli.command("status")
@json_option
def status(as_json: bool) -> None:
    """Nodes, the replicas on them, and the models."""

    async def both() -> tuple[Any, Any]:
        return (await management_call("GetStatus", management_pb2.GetStatusRequest()),
                await management_call("ListModels", management_pb2.ListModelsRequest()))

    reply, listed = run_async(both())
    if as_json:
        print_json({**to_dict(reply), "model_list": [to_dict(m) for m in listed.models]})
        return
    config = load_config()
    click.echo(f"kingpost at {config.url} (gRPC {config.grpc})")
    click.echo(f"{reply.models} model(s), {reply.active_deployments} active deployment(s), "
               f"{len(reply.nodes)} node(s)")
    for node in reply.nodes:
        gpus = ", ".join(f"{g.name or 'gpu'}" for g in node.gpus) if node.gpus else "no GPUs"
        memory = f"{node.memory_bytes / 2**30:.1f} GiB" if node.memory_bytes else "?"
        click.echo(f"node {node.node_id} {node.address}: {node.cpu_count} CPUs, {memory}, {gpus}; "
                   f"{len(node.replica_ids)} replica(s)")
        for replica in node.replica_ids:
            click.echo(f"  replica {replica}")
    for m in listed.models:
        click.echo(f"model {m.name} ({m.id}): {m.deployments_count} deployment(s)")


@cli.command("logs")
@click.argument("model", required=False, default="")
@click.option("--deployment", "deployment", default="", help="Only this deployment's logs (id).")
@click.option("--build", "build", default="", help="Only this build's logs (build id).")
@click.option("-n", "limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="At most this many lines, the newest.")
@click.option("--request-id", default="", help="Only the lines of this request (its X-Baseten-Request-Id).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines as they arrive (Ctrl-C stops).")
@click.option("--since", default="", help="Only lines from then on: a duration back from now (30s, 10m, 2h, "
                                          "1d) or a time (2026-01-31T12:00:00Z).")
@json_option
def logs(model: str, deployment: str, build: str, limit: int, request_id: str, follow: bool, since: str,
         as_json: bool) -> None:
    """Build and replica logs, oldest first: `time source level text` (all models without MODEL)."""
    if deployment and not model:
        raise click.UsageError("--deployment needs the MODEL it belongs to")
    try:
        since_at = parse_since(since, time.time()) if since else None
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--since") from None

    def wanted(lines: Sequence[Any]) -> list[Any]:
        return [line for line in lines if of_request(line.text, request_id)] if request_id else list(lines)

    # With --request-id, look further back: the request's lines are among many.
    request = management_pb2.GetLogsRequest(model_id=model, deployment_id=deployment, build_id=build,
                                            limit=10_000 if request_id else limit)
    if since_at is not None:
        request.since.FromNanoseconds(int(since_at * 1e9))
    lines = wanted(run_async(management_call("GetLogs", request)).lines)[-limit:]
    if as_json and not follow:
        print_json({"lines": [to_dict(line) for line in lines]})
        return
    for line in lines:
        click.echo(json.dumps(to_dict(line)) if as_json else format_log_line(line))
    if follow:
        run_async(_follow(request, lines, wanted, as_json))


def of_request(text: str, request_id: str) -> bool:
    """Whether a log line is one the runner wrote during that request: it carries the id as "[id]" in
    a text line, as "request_id": "id" in a JSON one (KINGPOST_LOG_FORMAT=json)."""
    return f"[{request_id}]" in text or json.dumps({"request_id": request_id})[1:-1] in text


async def _follow(request: Any, shown: Sequence[Any], wanted: Any, as_json: bool,
                  interval: float = 0.25) -> None:
    """Ask again every `interval` and print the lines not shown yet (a line is its time, replica and text)."""
    def key(line: Any) -> tuple[int, int, str, str]:
        return (line.at.seconds, line.at.nanos, line.replica_id or line.build_id, line.text)

    seen = {key(line) for line in shown}
    newest = max((key(line)[:2] for line in shown), default=(0, 0))
    request = management_pb2.GetLogsRequest(model_id=request.model_id, deployment_id=request.deployment_id,
                                            build_id=request.build_id, limit=1000, since=request.since)
    while True:
        await asyncio.sleep(interval)
        for line in wanted((await management_call("GetLogs", request)).lines):
            if key(line) in seen or key(line)[:2] < newest:
                continue
            seen.add(key(line))
            click.echo(json.dumps(to_dict(line)) if as_json else format_log_line(line))


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(value: str, now: float) -> float:
    """`--since`: a duration back from `now` (`30s`, `10m`, `1.5h`, `2d`) or an ISO 8601 time (UTC
    when it names no zone), as Unix seconds; ValueError naming the value otherwise."""
    text = value.strip()
    if text[-1:] in _UNITS:
        try:
            amount = float(text[:-1])
        except ValueError:
            amount = -1.0
        if amount >= 0:
            return now - amount * _UNITS[text[-1]]
    try:
        at = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is neither a duration (30s, 10m, 2h, 1d) nor a time "
                         f"(2026-01-31T12:00:00Z)") from None
    return (at if at.tzinfo else at.replace(tzinfo=datetime.timezone.utc)).timestamp()

"""`kingpost models list`, `deployments list MODEL`, `status`, `logs`: read the platform's state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from kingpost import rpc
from kingpost.cli.app import cli, json_option, load_config, print_json, run_async, to_dict
from kingpost.push import format_log_line
from kingpost.v1 import builder_pb2, builder_pb2_grpc, management_pb2, management_pb2_grpc


async def management_call(method_name: str, request: Any) -> Any:
    config = load_config()
    auth = rpc.api_key(config.require_api_key())
    async with rpc.channel(config.grpc) as channel:
        stub = management_pb2_grpc.ManagementServiceStub(channel)
        return await rpc.call(getattr(stub, method_name), request, auth=auth)


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
@json_option
def logs(model: str, deployment: str, build: str, limit: int, as_json: bool) -> None:
    """Build and replica logs, oldest first: `time source level text` (all models without MODEL)."""
    if deployment and not model:
        raise click.UsageError("--deployment needs the MODEL it belongs to")
    request = management_pb2.GetLogsRequest(model_id=model, deployment_id=deployment, build_id=build, limit=limit)
    reply = run_async(management_call("GetLogs", request))
    if as_json:
        print_json({"lines": [to_dict(line) for line in reply.lines]})
        return
    for line in reply.lines:
        click.echo(format_log_line(line))

"""`kingpost nodes token|list|get|drain|remove`: the machines replicas run on (`/v1/nodes`); and
`kingpost instance-types` (`/v1/instance_types`)."""

from __future__ import annotations

from typing import Any

import click

from kingpost.cli.app import call, cli, json_option, load_config, print_json, run_async, to_dict
from kingpost.cli.inspect_commands import table
from kingpost.v1 import nodes_pb2, nodes_pb2_grpc


async def node_call(method_name: str, request: Any) -> Any:
    return await call(nodes_pb2_grpc.NodeServiceStub, method_name, request)


def _gpus(node: nodes_pb2.Node) -> str:
    if not node.gpus:
        return "-"
    names: dict[str, int] = {}
    for g in node.gpus:
        names[g.name] = names.get(g.name, 0) + 1
    return ", ".join(f"{count}×{name}" for name, count in names.items())


def _row(node: nodes_pb2.Node) -> tuple[str, ...]:
    seen = node.last_seen.ToDatetime().strftime("%H:%M:%S") if node.last_seen.seconds else "-"
    cpus = node.cpu_count * (node.cpu_overcommit or 1)
    memory = node.memory_bytes * (node.memory_overcommit or 1) / 2**30
    return (node.name or "-", node.id, node.state, node.address,
            f"{node.cpus_free:g}/{cpus:g}", f"{node.memory_free_bytes / 2**30:.1f}/{memory:.1f}",
            f"{len(node.free_gpu_indices)}/{len(node.gpus)} {_gpus(node)}" if node.gpus else "-",
            str(len(node.replica_ids)), seen)


HEADER = ("NAME", "ID", "STATE", "ADDRESS", "CPUS FREE", "GIB FREE", "GPUS FREE", "REPLICAS", "LAST SEEN")


@cli.group("nodes")
def nodes() -> None:
    """The machines replicas run on, and the tokens new ones join with."""


@nodes.command("token")
@click.option("--ttl", "ttl", type=click.IntRange(min=1), default=86400, show_default=True,
              help="Seconds the token may be used to join.")
@click.option("--description", default="", help="What it is for (the scheduler's log shows it).")
@json_option
def nodes_token(ttl: int, description: str, as_json: bool) -> None:
    """Make a join token: on a new machine, `kingpost agent --join HOST:PORT --token TOKEN`."""
    reply = run_async(node_call("CreateJoinToken", nodes_pb2.CreateJoinTokenRequest(
        ttl_seconds=ttl, description=description)))
    if as_json:
        print_json({"token": reply.token, "expires_at": reply.expires_at.ToJsonString()})
        return
    config = load_config()
    click.echo(f"Join token (valid until {reply.expires_at.ToJsonString()}; it can only join nodes):")
    click.echo(reply.token)
    click.echo(f"On the new machine: kingpost agent --join {config.grpc} --token {reply.token}")


@nodes.command("list")
@json_option
def nodes_list(as_json: bool) -> None:
    """Each node: its state, what is free of its CPUs, memory and GPUs, its replicas, when last seen."""
    reply = run_async(node_call("ListNodes", nodes_pb2.ListNodesRequest()))
    if as_json:
        print_json({"nodes": [to_dict(n) for n in reply.nodes]})
        return
    if not reply.nodes:
        click.echo("No nodes: `kingpost nodes token`, then `kingpost agent --join` on a machine.")
        return
    click.echo(table([_row(n) for n in reply.nodes], HEADER))
    over = reply.nodes[0]
    if over.cpu_overcommit > 1 or over.memory_overcommit > 1:
        click.echo(f"(CPUs and memory counted {over.cpu_overcommit:g}× and {over.memory_overcommit:g}× what the "
                   "nodes have: the scheduler's over-commit, as `kingpost up` sets it)")


@nodes.command("get")
@click.argument("node")
@json_option
def nodes_get(node: str, as_json: bool) -> None:
    """One node (NODE: its id or name), with its replicas."""
    reply = run_async(node_call("GetNode", nodes_pb2.GetNodeRequest(node=node)))
    if as_json:
        print_json(to_dict(reply))
        return
    n = reply
    click.echo(table([_row(n)], HEADER))
    if n.labels:
        click.echo("labels: " + ", ".join(f"{k}={v}" for k, v in sorted(n.labels.items())))
    for replica in n.replica_ids:
        click.echo(f"  replica {replica}")


@nodes.command("drain")
@click.argument("node")
@click.option("--undo", is_flag=True, help="Stop draining: the node takes new replicas again.")
@json_option
def nodes_drain(node: str, undo: bool, as_json: bool) -> None:
    """Move NODE's replicas elsewhere (each stops once its replacement serves); it takes no new one."""
    reply = run_async(node_call("DrainNode", nodes_pb2.DrainNodeRequest(node=node, undo=undo)))
    if as_json:
        print_json(to_dict(reply))
        return
    n = reply
    if undo:
        click.echo(f"node {n.name or n.id} takes replicas again.")
    else:
        click.echo(f"node {n.name or n.id} is draining: {len(n.replica_ids)} replica(s) move elsewhere "
                   "(`kingpost nodes get` shows what is left).")


@nodes.command("remove")
@click.argument("node")
@json_option
def nodes_remove(node: str, as_json: bool) -> None:
    """Forget NODE (its agent must be stopped: a live node is refused)."""
    run_async(node_call("RemoveNode", nodes_pb2.RemoveNodeRequest(node=node)))
    if as_json:
        print_json({"success": True})
    else:
        click.echo(f"node {node} removed.")


@cli.command("instance-types")
@json_option
def instance_types(as_json: bool) -> None:
    """The instance types a Truss's `resources` map to (the smallest that meets them), cheapest first."""
    reply = run_async(node_call("ListInstanceTypes", nodes_pb2.ListInstanceTypesRequest()))
    if as_json:
        print_json({"instance_types": [to_dict(t) for t in reply.instance_types]})
        return
    click.echo(table([(t.name, str(t.vcpus), f"{t.memory_bytes / 2**30:g}",
                       f"{t.gpu_count}×{t.gpu_type} ({t.vram_bytes / 2**30:g} GiB)" if t.gpu_count else "-",
                       f"${t.usd_per_minute:.5f}") for t in reply.instance_types],
                     ("NAME", "VCPUS", "GIB", "GPUS", "$/MIN")))

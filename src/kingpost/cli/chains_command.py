"""`kingpost chains init|push|list|get|deployments|promote|delete`: Chains, each Chainlet its own
deployment (kingpost.chain_push)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from kingpost.chain_push import PushFailed, push_chain
from kingpost.chains.graph import ChainValidationError
from kingpost.cli.app import EXIT_FAILED, call, cli, json_option, load_config, print_json, run_async, to_dict
from kingpost.cli.inspect_commands import table
from kingpost.v1 import chains_pb2, chains_pb2_grpc
from kingpost.watch import POLL_SECONDS, diff, snapshot

TEMPLATE = '''"""A Chain: each Chainlet is its own deployment; the entrypoint answers run_remote."""

import truss_chains as chains


class Greeter(chains.ChainletBase):
    async def run_remote(self, name: str) -> str:
        return f"Hello, {name}!"


@chains.mark_entrypoint
class {cls}(chains.ChainletBase):
    def __init__(self, greeter: Greeter = chains.depends(Greeter, retries=2)) -> None:
        self._greeter = greeter

    async def run_remote(self, names: list[str]) -> list[str]:
        return [await self._greeter.run_remote(name) for name in names]
'''


async def chain_call(method_name: str, request: Any) -> Any:
    return await call(chains_pb2_grpc.ChainServiceStub, method_name, request)


@cli.group("chains")
def chains() -> None:
    """Chains: multi-model pipelines as typed Python, each Chainlet its own deployment."""


@chains.command("init")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@json_option
def chains_init(path: Path, as_json: bool) -> None:
    """Write a starter chain file at PATH (a .py file)."""
    if path.suffix != ".py" or not path.stem.isidentifier():
        raise click.UsageError(f"{path}: a chain file is a .py file named like a Python module (no '-')")
    if path.exists():
        raise click.UsageError(f"{path} exists; choose a new file")
    cls = "".join(part.capitalize() for part in path.stem.split("_")) or "Chain"
    path.write_text(TEMPLATE.replace("{cls}", cls if cls.isidentifier() else "Entrypoint"))
    if as_json:
        print_json({"path": str(path)})
    else:
        click.echo(f"Wrote {path}. Push it with `kingpost chains push {path}`.")


@chains.command("push")
@click.argument("chain_file", metavar="FILE", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--publish/--development", default=True,
              help="Published deployments (default), or replace the development ones.")
@click.option("--environment", default="", help="The environment the chain serves (default: production).")
@click.option("--watch", "watch_after", is_flag=True,
              help="Replace the development deployments, then push them again on every edit of FILE's folder.")
@click.option("--no-wait", is_flag=True, help="Return once the deployments are created.")
@click.option("--timeout", type=float, default=900.0, show_default=True,
              help="Seconds to wait for every Chainlet to be ACTIVE.")
@json_option
def chains_push(chain_file: Path, publish: bool, environment: str, watch_after: bool, no_wait: bool,
                timeout: float, as_json: bool) -> None:
    """Push the chain in FILE: every Chainlet as its own deployment, as one chain version."""
    if watch_after:
        if environment or as_json or no_wait:
            raise click.UsageError("--watch pushes the development deployments and keeps watching: "
                                   "drop --environment, --json and --no-wait")
        publish = False
    if environment and not publish:
        raise click.UsageError("--environment needs a published push: drop --development")

    def progress(chainlet: str, what: str) -> None:
        if not as_json:
            click.echo(f"{chainlet}: {what}", err=True)

    try:
        result = run_async(push_chain(load_config(), chain_file, publish=publish, environment=environment,
                                      wait=not no_wait, timeout=timeout, on_chainlet=progress))
    except ChainValidationError as e:
        if as_json:
            print_json({"error": str(e), "problems": list(e.problems)})
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_FAILED)
    except PushFailed as e:
        if as_json:
            print_json({"error": e.message, "logs": list(e.log_lines)})
        click.echo(f"error: {e.message}", err=True)
        for line in e.log_lines:
            click.echo(f"  {line}", err=True)
        sys.exit(EXIT_FAILED)
    if as_json:
        print_json({"chain": to_dict(result.chain), "deployment": to_dict(result.deployment),
                    "run_remote_url": result.run_remote_url, "warnings": result.warnings})
        return
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(f"Chain {result.chain.name} ({result.chain.id}), deployment {result.deployment.id}: "
               f"{len(result.deployment.chainlets)} Chainlets, {result.deployment.status}.")
    click.echo(f"run_remote URL: {result.run_remote_url}")
    click.echo(f"  {result.curl}")
    if watch_after:
        watch_chain(chain_file)


def watch_chain(chain_file: Path, interval: float = POLL_SECONDS) -> None:
    """Push the development deployments again whenever a file of the chain's folder (all of which
    the Chainlets get) changes; a failed push is shown and watching goes on. Each push is its own
    `kingpost chains push` process, so the chain file is imported afresh every time."""
    root = chain_file.resolve().parent
    seen = snapshot(root)
    click.echo(f"Watching {root} (Ctrl-C stops)")
    try:
        while True:
            time.sleep(interval)
            now = snapshot(root)
            changed, deleted = diff(seen, now)
            if not changed and not deleted:
                continue
            seen = now  # an edit made while pushing is seen on the next look
            paths = sorted(changed | deleted)
            shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
            click.echo(f"[{time.strftime('%H:%M:%S')}] {shown} changed: pushing")
            pushed = subprocess.run([sys.executable, "-m", "kingpost.cli", "chains", "push", str(chain_file),
                                     "--development"], check=False)
            if pushed.returncode != 0:
                click.echo(f"[{time.strftime('%H:%M:%S')}] the push failed (above); still watching", err=True)
    except KeyboardInterrupt:
        click.echo("Stopped watching.")


@chains.command("list")
@json_option
def chains_list(as_json: bool) -> None:
    """List chains."""
    reply = run_async(chain_call("ListChains", chains_pb2.ListChainsRequest()))
    if as_json:
        print_json([to_dict(c) for c in reply.chains])
        return
    click.echo(table([(c.id, c.name, str(c.deployments_count)) for c in reply.chains],
                     ("ID", "NAME", "DEPLOYMENTS")))


@chains.command("get")
@click.argument("chain")
@json_option
def chains_get(chain: str, as_json: bool) -> None:
    """Show CHAIN (id or name) and its deployments, Chainlet by Chainlet."""
    c = run_async(chain_call("GetChain", chains_pb2.GetChainRequest(chain_id=chain)))
    versions = run_async(chain_call("ListChainDeployments",
                                    chains_pb2.ListChainDeploymentsRequest(chain_id=c.id))).deployments
    if as_json:
        print_json({"chain": to_dict(c), "deployments": [to_dict(v) for v in versions]})
        return
    click.echo(f"{c.name} ({c.id}): {c.deployments_count} deployment(s)")
    for v in versions:
        where = "development" if v.is_development else (v.environment or "-")
        click.echo(f"  {v.id}: {v.status} ({where})")
        for cl in v.chainlets:
            mark = " [entrypoint]" if cl.is_entrypoint else ""
            click.echo(f"    {cl.name}{mark}: {cl.status}, {cl.active_replica_count} ready "
                       f"(model {cl.model_id}, deployment {cl.deployment_id})")


@chains.command("promote")
@click.argument("chain")
@click.argument("deployment_id")
@click.option("--environment", default="production", show_default=True)
@json_option
def chains_promote(chain: str, deployment_id: str, environment: str, as_json: bool) -> None:
    """Promote chain deployment DEPLOYMENT_ID of CHAIN to an environment."""
    reply = run_async(chain_call("PromoteChainDeployment", chains_pb2.PromoteChainDeploymentRequest(
        chain_id=chain, env_name=environment, deployment_id=deployment_id)))
    if as_json:
        print_json(to_dict(reply))
        return
    click.echo(f"Promoting {reply.id} of {chain} to {environment} (entrypoint deployment "
               f"{reply.promoted_entrypoint_deployment_id}); it serves once ready.")


@chains.command("delete")
@click.argument("chain")
@json_option
def chains_delete(chain: str, as_json: bool) -> None:
    """Delete CHAIN, its versions and its Chainlets' models."""
    run_async(chain_call("DeleteChain", chains_pb2.DeleteChainRequest(chain_id=chain)))
    if as_json:
        print_json({"success": True})
    else:
        click.echo(f"Deleted chain {chain}.")

"""`kingpost metrics MODEL`: a model's deployments' traffic over a window; `kingpost metrics targets`:
every /metrics endpoint of the platform (Prometheus http_sd)."""

from __future__ import annotations

import json
from typing import Any

import click

from kingpost.cli.app import cli, json_option, print_json, run_async, to_dict
from kingpost.cli.inspect_commands import management_call, table
from kingpost.v1 import management_pb2


@cli.command("metrics")
@click.argument("what", metavar="MODEL|targets")
@click.option("--deployment", default="", help="Only this deployment (id); default: every active one.")
@click.option("--window", type=click.IntRange(1, 3600), default=300, show_default=True,
              help="Seconds back from now.")
@json_option
def metrics(what: str, deployment: str, window: int, as_json: bool) -> None:
    """MODEL's request rate, errors, latency p50/p95/p99 and replicas per deployment over the last
    --window seconds; `targets`: the platform's scrape targets (GET /v1/metrics/targets)."""
    if what == "targets":
        _targets(as_json)
        return

    async def fetch() -> list[Any]:
        ids = [deployment]
        if not deployment:
            listed = await management_call("ListDeployments", management_pb2.ListDeploymentsRequest(model_id=what))
            ids = [d.id for d in listed.deployments if d.status not in ("INACTIVE", "FAILED")]
        return [await management_call("GetDeploymentMetrics", management_pb2.GetDeploymentMetricsRequest(
            model_id=what, deployment_id=d, window_seconds=window)) for d in ids]

    replies = run_async(fetch())
    if as_json:
        print_json({"deployments": [to_dict(r) for r in replies]})
        return
    if not replies:
        click.echo(f"model {what} has no active deployment")
        return

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.1f}" if seconds else "-"

    rows = [(r.deployment_id, f"{r.request_rate:.2f}", str(r.requests), str(r.errors), ms(r.latency_p50_seconds),
             ms(r.latency_p95_seconds), ms(r.latency_p99_seconds), f"{r.ready_replicas}/{r.desired_replicas}")
            for r in replies]
    covered = min(r.observed_seconds for r in replies)
    note = f" (history covers {covered:.0f} s)" if covered < window - 15 else ""
    click.echo(f"last {window} s{note}")
    click.echo(table(rows, ("DEPLOYMENT", "REQ/S", "REQUESTS", "ERRORS", "P50 MS", "P95 MS", "P99 MS",
                            "READY/DESIRED")))


def _targets(as_json: bool) -> None:
    reply = run_async(management_call("GetMetricsTargets", management_pb2.GetMetricsTargetsRequest()))
    groups = json.loads(reply.data)
    if as_json:
        print_json(groups)
        return
    rows = []
    for group in groups:
        labels = dict(group.get("labels", {}))
        service = labels.pop("service", "")
        path = labels.pop("__metrics_path__", "/metrics")
        extra = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        rows.extend((service, f"http://{target}{path}", extra) for target in group["targets"])
    click.echo(table(rows, ("SERVICE", "URL", "LABELS")))

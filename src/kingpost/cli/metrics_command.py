"""`kingpost metrics targets`: every /metrics endpoint of the platform (Prometheus http_sd)."""

from __future__ import annotations

import json

import click

from kingpost.cli.app import cli, json_option, print_json, run_async
from kingpost.cli.inspect_commands import management_call, table
from kingpost.v1 import management_pb2


@cli.command("metrics")
@click.argument("what", metavar="targets")
@json_option
def metrics(what: str, as_json: bool) -> None:
    """`targets`: the platform's scrape targets, the list GET /v1/metrics/targets gives Prometheus."""
    if what != "targets":
        raise click.UsageError(f"unknown metrics command {what!r}: `kingpost metrics targets`")
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

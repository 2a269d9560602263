"""The platform's scrape-target list, in Prometheus `http_sd` format (`GET /v1/metrics/targets`).

    http_sd(["router=10.0.0.5:9101", "envoy=10.0.0.5:9901/stats/prometheus"], {"node_a": "10.0.0.7:9105"})
    → [{"targets": ["10.0.0.5:9101"], "labels": {"service": "router"}},
       {"targets": ["10.0.0.5:9901"], "labels": {"service": "envoy", "__metrics_path__": "/stats/prometheus"}},
       {"targets": ["10.0.0.7:9105"], "labels": {"service": "agent", "node": "node_a"}}]

The services' own endpoints are configured (the scheduler's `metrics_targets`, written by `kingpost up`);
each node's agent is learnt from its heartbeats, so a node that joins is scraped without a restart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

_ENTRY = re.compile(r"^(?P<service>[a-z][a-z0-9_-]*)=(?P<target>[^/\s=]+:[0-9]{1,5})(?P<path>/[^\s]*)?$")


def parse(entry: str) -> tuple[str, str, str]:
    """"service=host:port[/path]" → (service, host:port, path or ""); ValueError naming what is wrong."""
    match = _ENTRY.match(entry)
    if match is None:
        raise ValueError(f"metrics target {entry!r} is not 'service=host:port' or 'service=host:port/path' "
                         "(e.g. 'router=10.0.0.5:9101')")
    return match["service"], match["target"], match["path"] or ""


def http_sd(static: Iterable[str], agents: Mapping[str, str]) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for entry in static:
        service, target, path = parse(entry)
        labels = {"service": service}
        if path and path != "/metrics":
            labels["__metrics_path__"] = path
        groups.append({"targets": [target], "labels": labels})
    for node_id, address in sorted(agents.items()):
        if address:
            groups.append({"targets": [address], "labels": {"service": "agent", "node": node_id}})
    return groups

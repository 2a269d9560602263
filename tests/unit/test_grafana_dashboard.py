"""deploy/grafana/kingpost.json: a dashboard a team imports as it is, every query over metrics kingpost serves."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "kingpost.json"
NAME = re.compile(r"\bkingpost_[a-z0-9_]+")


def dashboard_metrics(dashboard: dict) -> set[str]:
    """The metric families the panels' queries name (a histogram's _bucket/_sum/_count, a counter's _total)."""
    names = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", ()):
            names.update(re.sub(r"_(bucket|sum|count|total)$", "", n) for n in NAME.findall(target["expr"]))
    return names


def served_families() -> set[str]:
    # Every service's metrics module, as its process loads it (they share no names).
    import kingpost_autoscaler.metrics  # noqa: F401
    import kingpost_builder.metrics  # noqa: F401
    import kingpost_router.metrics  # noqa: F401
    import kingpost_scheduler.metrics  # noqa: F401
    from kingpost_worker_agent import metrics as agent_metrics

    node = CollectorRegistry()
    node.register(agent_metrics.NodeUsage("node_a", list))
    return {family.name for registry in (REGISTRY, node) for family in registry.collect()}


def test_the_dashboard_is_importable_json_with_unique_panels_each_querying_the_chosen_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    queries = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(queries) >= 15
    for panel in queries:
        assert panel["title"] and set(panel["gridPos"]) == {"h", "w", "x", "y"}, panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert panel["targets"] and len(refs) == len(set(refs)) and all(t["expr"] for t in panel["targets"])
        assert all(t["expr"].count("(") == t["expr"].count(")") for t in panel["targets"]), panel["title"]


def test_every_metric_a_panel_queries_is_one_the_platform_serves() -> None:
    named = dashboard_metrics(json.loads(DASHBOARD.read_text()))
    assert {"kingpost_router_requests", "kingpost_router_request_seconds", "kingpost_scheduler_ready_replicas",
            "kingpost_builder_build_seconds", "kingpost_worker_agent_gpu_utilization"} <= named
    unknown = named - served_families()
    assert not unknown, f"panels query metrics no service serves: {sorted(unknown)}"

"""GET /v1/metrics/targets: the configured services and each node's agent, as Prometheus http_sd reads them."""

from __future__ import annotations

import pytest

from kingpost.errors import InvalidArgument
from kingpost_scheduler.metrics_targets import http_sd
from kingpost_scheduler.settings import SchedulerSettings


def test_services_envoys_path_and_each_agent_with_its_node() -> None:
    groups = http_sd(["router=10.0.0.5:9101", "envoy=10.0.0.5:9901/stats/prometheus", "builder=b:9102/metrics"],
                     {"node_b": "10.0.0.8:9105", "node_a": "10.0.0.7:9105"})
    assert groups == [
        {"targets": ["10.0.0.5:9101"], "labels": {"service": "router"}},
        {"targets": ["10.0.0.5:9901"], "labels": {"service": "envoy", "__metrics_path__": "/stats/prometheus"}},
        {"targets": ["b:9102"], "labels": {"service": "builder"}},
        {"targets": ["10.0.0.7:9105"], "labels": {"service": "agent", "node": "node_a"}},
        {"targets": ["10.0.0.8:9105"], "labels": {"service": "agent", "node": "node_b"}},
    ]


@pytest.mark.parametrize("entry", ["router", "router=10.0.0.5", "=1.2.3.4:9", "router=http://x:9101"])
def test_a_malformed_target_in_the_config_is_refused_naming_it(entry: str) -> None:
    with pytest.raises(InvalidArgument, match="metrics_targets") as e:
        SchedulerSettings.load(metrics_targets=[entry])
    assert repr(entry) in str(e.value.message)

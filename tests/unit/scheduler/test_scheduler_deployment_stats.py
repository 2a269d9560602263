"""A deployment's rate and latency percentiles over a window, from cumulative router figures."""

from __future__ import annotations

import pytest

from kingpost_scheduler.deployment_stats import Counts, History, per_deployment, quantile, window_stats

INF = float("inf")


def scrape(ok: float, failed: float, buckets: dict[float, float], deployment: str = "dep_1") -> list:
    labels = {"model": "mdl_1", "deployment": deployment, "environment": "production"}
    samples = [("kingpost_router_requests_total", {**labels, "code": "OK"}, ok),
               ("kingpost_router_requests_total", {**labels, "code": "UNAVAILABLE"}, failed)]
    samples += [("kingpost_router_request_seconds_bucket", {**labels, "le": "+Inf" if le == INF else str(le)}, n)
                for le, n in buckets.items()]
    return samples


def test_quantiles_interpolate_within_the_bucket_as_prometheus_does() -> None:
    buckets = {0.1: 50.0, 0.2: 90.0, 0.5: 100.0, INF: 100.0}
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.7, buckets) == pytest.approx(0.15)
    assert quantile(0.95, buckets) == pytest.approx(0.35)
    assert quantile(0.99, {0.1: 1.0, INF: 10.0}) == 0.1  # in +Inf: the largest finite bound
    assert quantile(0.5, {0.1: 0.0, INF: 0.0}) is None


def test_a_window_is_the_increase_between_two_scrapes_summed_over_routers() -> None:
    history = History(keep=600)
    history.add(100.0, per_deployment(scrape(10, 0, {0.1: 10, 1.0: 10, INF: 10})))
    # Two routers by the next scrapes; 60 s later 130 more requests, 10 of them failed, 20 slow.
    history.add(130.0, per_deployment(scrape(50, 5, {0.1: 50, 1.0: 55, INF: 55})))
    history.add(160.0, per_deployment(scrape(70, 5, {0.1: 60, 1.0: 70, INF: 75})
                                      + scrape(60, 5, {0.1: 55, 1.0: 65, INF: 65})))
    stats = window_stats(history.before(160.0 - 60), history.latest(), "dep_1")
    assert (stats.observed_seconds, stats.requests, stats.errors) == (60.0, 130, 10)
    assert stats.request_rate == pytest.approx(130 / 60)
    assert stats.p50 == pytest.approx(0.1 * 65 / 105)  # the 65th of 130 is among the 105 fast ones
    assert stats.p95 == pytest.approx(0.1 + 0.9 * (0.95 * 130 - 105) / 20)
    assert stats.p99 == 1.0  # the 5 past 1 s sit in +Inf: the largest finite bound
    # A window longer than the history: what it covers, said so.
    longer = window_stats(history.before(160.0 - 3600), history.latest(), "dep_1")
    assert (longer.observed_seconds, longer.requests) == (60.0, 130)
    # A deployment no router has seen: zeros and no percentiles.
    assert window_stats(history.before(100.0), history.latest(), "dep_none").p50 is None


def test_a_router_that_restarted_counts_from_zero_and_old_scrapes_are_dropped() -> None:
    history = History(keep=100)
    history.add(0.0, {"dep_1": Counts(requests=500, buckets={INF: 500})})
    history.add(50.0, {"dep_1": Counts(requests=500, buckets={INF: 500})})
    history.add(200.0, {"dep_1": Counts(requests=7, buckets={INF: 7})})
    stats = window_stats(history.before(140.0), history.latest(), "dep_1")
    assert (stats.observed_seconds, stats.requests) == (150.0, 7)
    assert history.before(-1.0).at == 50.0  # the scrape at 0 s is gone
    single = History(keep=100)
    single.add(0.0, {"dep_1": Counts(requests=3, buckets={INF: 3})})
    assert window_stats(single.before(-60), single.latest(), "dep_1").requests == 3

from kingpost_autoscaler.window import ConcurrencyWindow


def test_routers_are_summed_per_second_and_silent_seconds_count_as_zero() -> None:
    window = ConcurrencyWindow(3600)
    window.record("r1", "dep", 2, at=100.2)
    window.record("r2", "dep", 3, at=100.7)
    window.record("r1", "dep", 4, at=100.9)  # r1's later report in the same second replaces its first
    samples = window.samples("dep", now=103.5, window=60)
    assert [(s.at, s.concurrency) for s in samples] == [(100, 7), (101, 0), (102, 0), (103, 0)]


def test_samples_cover_only_the_window() -> None:
    window = ConcurrencyWindow(3600)
    window.record("r1", "dep", 1, at=0)
    assert len(window.samples("dep", now=500, window=60)) == 60
    assert window.samples("other", now=500, window=60) == []


def test_prune_and_forget() -> None:
    window = ConcurrencyWindow(10)
    window.record("r1", "dep", 5, at=0)
    window.prune(now=100)
    assert all(s.concurrency == 0 for s in window.samples("dep", now=100, window=10))
    window.forget("dep")
    assert window.deployments() == []


def test_a_shared_async_backlog_reported_by_every_router_counts_once() -> None:
    window = ConcurrencyWindow(3600)
    window.record("r1", "dep", 2, at=100.1)  # each router's own in-flight requests add up
    window.record("r2", "dep", 3, at=100.2)
    window.record("async-backlog", "dep", 500, at=100.3)  # the one queue in NATS, seen by r1
    window.record("async-backlog", "dep", 498, at=100.8)  # and by r2 a moment later
    assert [(s.at, s.concurrency) for s in window.samples("dep", now=100.9, window=60)] == [(100, 503)]

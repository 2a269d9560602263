"""Node liveness from heartbeats, pure: what a heartbeat changes, quiet nodes, the last-seen batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kingpost_scheduler.liveness import NodeReport, News, gone_quiet, news, to_persist

T0 = datetime(2025, 1, 1, tzinfo=UTC)
TIMEOUT = timedelta(seconds=15)
A = NodeReport("node_a", "10.0.0.1:7000", cpu_count=8, memory_bytes=32 << 30, gpus=(("A100", 80 << 30),))


def test_a_heartbeat_that_says_only_still_here_changes_nothing() -> None:
    assert news(A, stored=A, counted_live=True) == News()
    assert not news(A, stored=A, counted_live=True).any


def test_a_new_node_is_stored_and_reconciled() -> None:
    assert news(A, stored=None, counted_live=False) == News(store=True, reconcile=True)


def test_a_node_with_a_new_address_or_resources_is_stored_again() -> None:
    moved = NodeReport("node_a", "10.0.0.2:7000", 8, 32 << 30, (("A100", 80 << 30),))
    assert news(moved, stored=A, counted_live=True) == News(store=True)
    lost_a_gpu = NodeReport("node_a", "10.0.0.1:7000", 8, 32 << 30)
    assert news(lost_a_gpu, stored=A, counted_live=True) == News(store=True)


def test_a_node_back_after_a_silence_is_reconciled() -> None:
    assert news(A, stored=A, counted_live=False) == News(reconcile=True)


def test_only_nodes_counted_live_and_silent_past_the_timeout_went_quiet() -> None:
    seen = {"a": T0, "b": T0 + timedelta(seconds=10), "c": T0}
    now = T0 + TIMEOUT + timedelta(seconds=1)
    assert gone_quiet(seen, counted_live={"a", "b"}, now=now, node_timeout=TIMEOUT) == ["a"]
    assert gone_quiet(seen, counted_live={"a"}, now=T0 + TIMEOUT, node_timeout=TIMEOUT) == []  # not yet


def test_the_batch_holds_each_stored_node_whose_last_seen_moved() -> None:
    later = T0 + timedelta(seconds=2)
    seen = {"a": later, "b": T0, "new": later}
    assert to_persist(seen, persisted={"a": T0, "b": T0}) == {"a": later}  # "new" is not stored yet

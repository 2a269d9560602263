"""Node liveness from heartbeats, decided in memory: what a heartbeat changes, which nodes went
quiet, and which last-seen times are due to be written.

A heartbeat is the commonest message the scheduler hears (1,000 nodes every 2 s are 500 a second),
and nearly always it says only "still here". The shell keeps each node's last heartbeat time in
memory and writes only what a heartbeat changes:

    heartbeat ─┬─ node not stored, or its address or resources differ ─▶ store it (one transaction)
               ├─ the last reconcile pass did not count it live ────────▶ a pass (new capacity)
               ├─ replicas it no longer lists (placement) ──────────────▶ forget them, a pass
               └─ otherwise ────────────────────────────────────────────▶ last seen, in memory only

A node the last pass counted live that has been quiet for longer than the node timeout makes the
next tick run a pass (its replicas are forgotten and placed elsewhere). Last-seen times alone are
written in one batch at most every `persist_every` (a third of the node timeout by default), so a
restarted scheduler knows which nodes were live a moment ago.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

# Last-seen times are written at most this often, as a fraction of the node timeout.
PERSIST_FRACTION = 3


@dataclass(frozen=True)
class NodeReport:
    """What a heartbeat says about its node, beyond "still here"."""

    id: str
    address: str
    cpu_count: int = 0
    memory_bytes: int = 0
    gpus: tuple[tuple[str, int], ...] = ()  # (name, memory bytes)
    name: str = ""
    labels: tuple[tuple[str, str], ...] = ()  # sorted (key, value)


@dataclass(frozen=True)
class News:
    store: bool = False  # the node is new, or its description changed: store it
    reconcile: bool = False  # the last pass did not count it live: run one

    @property
    def any(self) -> bool:
        return self.store or self.reconcile


def news(report: NodeReport, stored: NodeReport | None, counted_live: bool) -> News:
    """What a heartbeat from `report.id` changes. `stored`: its description in the database (None:
    not stored); `counted_live`: whether the last reconcile pass counted it among the live nodes."""
    return News(store=stored != report, reconcile=not counted_live)


def gone_quiet(last_seen: Mapping[str, datetime], counted_live: Collection[str], now: datetime,
               node_timeout: timedelta) -> list[str]:
    """Nodes the last pass counted live whose last heartbeat is now older than `node_timeout`."""
    return sorted(n for n in counted_live if n not in last_seen or now - last_seen[n] > node_timeout)


def to_persist(last_seen: Mapping[str, datetime], persisted: Mapping[str, datetime]) -> dict[str, datetime]:
    """The last-seen times to write in the next batch: each stored node's that moved since it was
    written. `persisted`: what the database holds, for the stored nodes only."""
    return {n: seen for n, seen in last_seen.items() if n in persisted and persisted[n] != seen}

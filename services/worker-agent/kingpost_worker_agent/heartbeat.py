"""NodeHeartbeat on kp.node.<node_id>: at once, then every few seconds, so the scheduler knows this node."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from kingpost.bus import Publisher, subjects
from kingpost.v1 import events_pb2

from kingpost_worker_agent.node import NodeFacts
from kingpost_worker_agent.replicas import now_ts

log = logging.getLogger(__name__)


def heartbeat(facts: NodeFacts, address: str, replica_ids: Sequence[str],
              metrics_address: str = "") -> events_pb2.NodeHeartbeat:
    return events_pb2.NodeHeartbeat(
        node_id=facts.node_id, address=address, cpu_count=facts.cpu_count, memory_bytes=facts.memory_bytes,
        gpus=[events_pb2.Gpu(name=g.name, memory_bytes=g.memory_bytes) for g in facts.gpus],
        replica_ids=list(replica_ids), at=now_ts(), metrics_address=metrics_address, name=facts.name,
        labels=dict(facts.labels),
    )


async def heartbeat_loop(
    publisher: Publisher,
    facts: NodeFacts,
    address: str,
    replica_ids: Callable[[], Sequence[str]],
    interval_seconds: float,
    metrics_address: str = "",
) -> None:
    """Runs until cancelled. A failed publish is logged; the next beat supersedes it."""
    subject = subjects.node_subject(facts.node_id)
    while True:
        try:
            await publisher.publish_fast(subject, heartbeat(facts, address, replica_ids(), metrics_address))
        except Exception:
            log.warning("heartbeat on %s failed", subject, exc_info=True)
        await asyncio.sleep(interval_seconds)

"""Nodes as `kingpost nodes` shows them, and the rules for joining: pure.

A node is READY (live, taking replicas), DRAINING (live; its replicas move elsewhere) or LOST (no
heartbeat for the node timeout: its replicas were placed elsewhere). What is free on it is its
capacity (times the over-commit factors) less what its replicas were promised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from kingpost.errors import Conflict, InvalidArgument, Unauthenticated
from kingpost_scheduler.facts import Node, Replica
from kingpost_scheduler.placement import Demand, Overcommit, Used

READY = "READY"
DRAINING = "DRAINING"
LOST = "LOST"

NAME_RULE = "1 to 63 characters: letters, digits, '-', '_' and '.', starting with a letter or digit"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
DEFAULT_TOKEN_TTL = timedelta(days=1)
MAX_TOKEN_TTL = timedelta(days=365)


def state(node: Node, now: datetime, node_timeout: timedelta) -> str:
    if now - node.last_seen > node_timeout:
        return LOST
    return DRAINING if node.draining else READY


@dataclass(frozen=True)
class Free:
    cpus: float
    memory_bytes: int
    gpus: tuple[int, ...]


def free(node: Node, replicas: Iterable[Replica], demands: Mapping[str, Demand], over: Overcommit) -> Free:
    """What `node` has not promised to `replicas` (those placed on it)."""
    used = Used()
    for r in replicas:
        used.take(demands.get(r.deployment_id, Demand(0, 0)), r.gpus)
    held = used.gpus or set()
    return Free(cpus=max(0.0, node.cpu_count * over.cpu - used.cpu_millis / 1000),
                memory_bytes=max(0, int(node.memory_bytes * over.memory) - used.memory_bytes),
                gpus=tuple(i for i in range(len(node.gpus)) if i not in held))


def validate_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise InvalidArgument(f"node name {name!r} is not valid: {NAME_RULE}")
    return name


def token_ttl(seconds: int) -> timedelta:
    if seconds < 0:
        raise InvalidArgument(f"ttl_seconds {seconds} must be positive (0 for the default, a day)")
    ttl = timedelta(seconds=seconds) if seconds else DEFAULT_TOKEN_TTL
    if ttl > MAX_TOKEN_TTL:
        raise InvalidArgument(f"ttl_seconds {seconds} is more than a year ({int(MAX_TOKEN_TTL.total_seconds())})")
    return ttl


def check_token(prefix: str | None, found: bool, expires_at: datetime | None, now: datetime) -> None:
    """Refuse a join token that is malformed, unknown (or wrong) or expired, naming it."""
    if prefix is None:
        raise Unauthenticated("the join token is not a kingpost join token (kpjoin_...): "
                              "make one with `kingpost nodes token`")
    if not found:
        raise Unauthenticated(f"join token {prefix}... is not valid: make one with `kingpost nodes token`")
    if expires_at is not None and expires_at <= now:
        raise Unauthenticated(f"join token {prefix}... expired at {expires_at.isoformat(timespec='seconds')}: "
                              "make a new one with `kingpost nodes token`")


def name_holder(name: str, node_id: str, nodes: Iterable[Node], now: datetime,
                node_timeout: timedelta) -> Node | None:
    """The other node that holds `name`: a live one refuses the join (raises Conflict); a lost one
    is returned, to be replaced by the node joining under its name."""
    for other in nodes:
        if other.name != name or other.id == node_id:
            continue
        if now - other.last_seen <= node_timeout:
            raise Conflict(f"a live node is already named {name!r} ({other.id} at {other.address}): "
                           "give this agent another name (--name)")
        return other
    return None

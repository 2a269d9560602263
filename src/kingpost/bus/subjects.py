"""Every NATS subject, JetStream stream and key-value bucket kingpost uses: named here, nowhere else.

    subject                                       message            stored in       from → to
    kp.build.<build_id>                           BuildEvent         KP_EVENTS       builder → scheduler
    kp.replica.<replica_id>                       ReplicaEvent       KP_EVENTS       agent → scheduler
    kp.node.<node_id>                             NodeHeartbeat      (not stored)    agent → scheduler
    kp.metrics.concurrency.<router_id>            ConcurrencySample  (not stored)    router → autoscaler
    kp.metrics.poke.<deployment_id>               ScalePoke          (not stored)    router → autoscaler
    kp.logs.build.<build_id>                      LogLine            KP_LOGS         builder → `kingpost logs`
    kp.logs.replica.<deployment_id>.<replica_id>  LogLine            KP_LOGS         agent → `kingpost logs`
    kp.async.<deployment_id>.<priority>           an async request   KP_ASYNC        router → async workers
    key-value bucket KP_ASYNC_STATUS: <request_id> → the request's status

Facts that must not be lost go to a stream and are published with an ack; heartbeats and metrics
are plain subjects, where the next message supersedes a lost one. KP_ASYNC is a work queue: a
request leaves the stream once a worker acks it, and each deployment's priority has its own
subject, so a worker can take priority 0 before 2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kingpost.errors import InvalidArgument

DAY = 24 * 3600


@dataclass(frozen=True)
class StreamSpec:
    """A JetStream stream: what it stores and for how long."""

    name: str
    subjects: tuple[str, ...]
    max_age_seconds: float
    max_bytes: int = -1  # -1: no limit
    work_queue: bool = False  # a message leaves the stream when a consumer acks it


@dataclass(frozen=True)
class BucketSpec:
    """A JetStream key-value bucket."""

    name: str
    ttl_seconds: float = 0  # a key not written for this long disappears; 0: kept
    history: int = 1  # revisions kept per key


EVENTS_STREAM = StreamSpec("KP_EVENTS", ("kp.build.>", "kp.replica.>"), max_age_seconds=7 * DAY)
LOGS_STREAM = StreamSpec("KP_LOGS", ("kp.logs.>",), max_age_seconds=14 * DAY, max_bytes=1 << 30)
# Baseten's longest max_time_in_queue_seconds is 259,200 s (3 days): a request older than that expires.
ASYNC_STREAM = StreamSpec("KP_ASYNC", ("kp.async.>",), max_age_seconds=3 * DAY, work_queue=True)
STREAMS = (EVENTS_STREAM, LOGS_STREAM, ASYNC_STREAM)

# A status outlives its request's time in the queue by four days, for the status call and webhooks.
ASYNC_STATUS_BUCKET = BucketSpec("KP_ASYNC_STATUS", ttl_seconds=7 * DAY)

# What a subscriber or consumer listens to.
BUILDS = "kp.build.>"
REPLICAS = "kp.replica.>"
NODES = "kp.node.>"
CONCURRENCY_SAMPLES = "kp.metrics.concurrency.>"
SCALE_POKES = "kp.metrics.poke.>"
ASYNC_PRIORITIES = (0, 1, 2)  # lower first, as Baseten's `priority`

_BAD_TOKEN = re.compile(r"[.*>\s]")


def token(value: str, what: str) -> str:
    """`value` as one subject token; InvalidArgument naming `what` when it would be more or less."""
    if not value or _BAD_TOKEN.search(value):
        raise InvalidArgument(f"{what} {value!r} cannot be part of a NATS subject: it must be non-empty, "
                              "without '.', '*', '>' or whitespace")
    return value


def build_subject(build_id: str) -> str:
    return f"kp.build.{token(build_id, 'build_id')}"


def replica_subject(replica_id: str) -> str:
    return f"kp.replica.{token(replica_id, 'replica_id')}"


def node_subject(node_id: str) -> str:
    return f"kp.node.{token(node_id, 'node_id')}"


def concurrency_subject(router_id: str) -> str:
    # The default router_id is `router-<hostname>`, and a host name may have dots.
    return f"kp.metrics.concurrency.{token(router_id.replace('.', '_'), 'router_id')}"


def scale_poke_subject(deployment_id: str) -> str:
    return f"kp.metrics.poke.{token(deployment_id, 'deployment_id')}"


def build_log_subject(build_id: str) -> str:
    return f"kp.logs.build.{token(build_id, 'build_id')}"


def replica_log_subject(deployment_id: str, replica_id: str) -> str:
    return f"kp.logs.replica.{token(deployment_id, 'deployment_id')}.{token(replica_id, 'replica_id')}"


def replica_logs_of(deployment_id: str) -> str:
    """Every replica's log lines of one deployment."""
    return f"kp.logs.replica.{token(deployment_id, 'deployment_id')}.>"


def async_request_subject(deployment_id: str, priority: int) -> str:
    if priority not in ASYNC_PRIORITIES:
        raise InvalidArgument(f"priority {priority} is not one of {', '.join(map(str, ASYNC_PRIORITIES))}")
    return f"kp.async.{token(deployment_id, 'deployment_id')}.{priority}"


def matches(pattern: str, subject: str) -> bool:
    """Whether NATS delivers `subject` to a subscription on `pattern` (`*` one token, `>` the rest).
    A wildcard in `subject` (a filter) matches only the same wildcard or a wider one in `pattern`."""
    want, have = pattern.split("."), subject.split(".")
    for i, part in enumerate(want):
        if part == ">":
            return len(have) > i
        if i >= len(have) or (part != "*" and part != have[i]) or (part == "*" and have[i] == ">"):
            return False
    return len(have) == len(want)


def stream_of(subject: str) -> StreamSpec | None:
    """The stream that stores `subject` (or every subject of a filter), None when none does."""
    for stream in STREAMS:
        if any(matches(pattern, subject) for pattern in stream.subjects):
            return stream
    return None

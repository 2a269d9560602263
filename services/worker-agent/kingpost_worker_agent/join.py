"""`kingpost agent --join HOST:PORT --token T`: register this node with the scheduler, and take from
its answer how to reach the platform (NATS, artifacts, the internal token)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from kingpost import rpc
from kingpost.errors import KingpostError, Unauthenticated
from kingpost.v1 import events_pb2, nodes_pb2, nodes_pb2_grpc

from kingpost_worker_agent.node import NodeFacts
from kingpost_worker_agent.settings import AgentSettings

log = logging.getLogger(__name__)

# In the work dir: the secret this node joins again with, once it has joined with a token.
SECRET_FILE = "node_secret"


class JoinRefused(Exception):
    """The scheduler would not have this node; the message says why (the token, the name)."""


async def join(settings: AgentSettings, scheduler: str, token: str, facts: NodeFacts,
               address: str) -> AgentSettings:
    """JoinNode at `scheduler`; the settings this agent runs with from then on."""
    secret_path = settings.work_dir / SECRET_FILE
    try:
        secret = secret_path.read_text().strip()
    except OSError:
        secret = ""
    request = nodes_pb2.JoinNodeRequest(
        token=token, node_secret=secret, node_id=facts.node_id, name=facts.name, address=address, cpu_count=facts.cpu_count,
        memory_bytes=facts.memory_bytes, labels=dict(facts.labels),
        gpus=[events_pb2.Gpu(name=g.name, memory_bytes=g.memory_bytes) for g in facts.gpus])
    channel = rpc.channel(scheduler)
    try:
        reply = await rpc.call(nodes_pb2_grpc.NodeServiceStub(channel).JoinNode, request, timeout=30.0,
                               attempts=5, backoff=1.0)
    except Unauthenticated as e:
        raise JoinRefused(f"cannot join {scheduler}: the join token was refused: {e.message}") from None
    except KingpostError as e:
        raise JoinRefused(f"cannot join {scheduler}: {e.message}") from None
    finally:
        await channel.close()
    if reply.node_secret:
        _write_secret(secret_path, reply.node_secret)
    log.info("joined %s as node %s (%s); NATS at %s, artifacts from %s", scheduler, facts.name, reply.node_id,
             rpc_shown(reply.nats_url), reply.artifact_store)
    update = {"nats_url": reply.nats_url, "internal_token": reply.internal_token,
              "artifact_store": reply.artifact_store or "file"}
    if reply.builder_address:
        update["builder_address"] = reply.builder_address
    if reply.artifact_bucket:
        update["artifact_bucket"] = reply.artifact_bucket
    if reply.heartbeat_interval_seconds > 0:
        update["heartbeat_interval_seconds"] = min(settings.heartbeat_interval_seconds,
                                                   reply.heartbeat_interval_seconds)
    return settings.model_copy(update=update)


def _write_secret(path: Path, secret: str) -> None:
    """The node's secret for its next join: root's alone, replaced whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    os.replace(tmp, path)


def rpc_shown(url: str) -> str:
    """A URL without its password, for the log."""
    from kingpost.bus.connection import shown_url

    return shown_url(url)

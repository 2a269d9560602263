"""The rows of nodes joining and leaving the cluster: join tokens, and a node looked up or removed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from kingpost.errors import NotFound
from kingpost_scheduler.tables import JoinTokenRecord, NodeRecord, ReplicaRecord


async def add_join_token(session: AsyncSession, *, prefix: str, sha256: str, description: str,
                         now: datetime, expires_at: datetime) -> JoinTokenRecord:
    token = JoinTokenRecord(prefix=prefix, sha256=sha256, description=description, created_at=now,
                            expires_at=expires_at)
    session.add(token)
    await session.flush()
    return token


async def join_token(session: AsyncSession, prefix: str) -> JoinTokenRecord | None:
    return await session.get(JoinTokenRecord, prefix)


async def find_node(session: AsyncSession, ref: str) -> NodeRecord:
    """A node by id, else by name."""
    node = await session.get(NodeRecord, ref)
    if node is None:
        node = (await session.scalars(select(NodeRecord).where(NodeRecord.name == ref)
                                      .order_by(NodeRecord.last_seen.desc()))).first()
    if node is None:
        raise NotFound(f"node {ref!r} not found: `kingpost nodes list` shows the nodes")
    return node


async def delete_node(session: AsyncSession, node_id: str) -> None:
    """The node and the replica rows placed on it."""
    await session.execute(delete(ReplicaRecord).where(ReplicaRecord.node_id == node_id))
    await session.execute(delete(NodeRecord).where(NodeRecord.id == node_id))
    await session.flush()

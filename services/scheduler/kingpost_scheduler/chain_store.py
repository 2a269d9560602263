"""The chains' rows: data-access functions that take a session and flush, never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kingpost.errors import NotFound
from kingpost_scheduler.tables import ChainDeploymentRecord, ChainRecord


async def find_chain(session: AsyncSession, ref: str) -> ChainRecord:
    """A chain by id or name."""
    found = (await session.scalars(
        select(ChainRecord).where(or_(ChainRecord.id == ref, ChainRecord.name == ref)))).first()
    if found is None:
        raise NotFound(f"chain {ref!r} not found")
    return found


async def chain_by_name(session: AsyncSession, name: str) -> ChainRecord | None:
    return (await session.scalars(select(ChainRecord).where(ChainRecord.name == name))).first()


async def list_chains(session: AsyncSession) -> Sequence[ChainRecord]:
    return (await session.scalars(select(ChainRecord).order_by(ChainRecord.created_at, ChainRecord.id))).all()


async def add_chain(session: AsyncSession, chain_id: str, name: str, entrypoint_model_id: str,
                    now: datetime) -> ChainRecord:
    chain = ChainRecord(id=chain_id, name=name, entrypoint_model_id=entrypoint_model_id, created_at=now)
    session.add(chain)
    await session.flush()
    return chain


async def chain_deployments(session: AsyncSession, chain_id: str) -> Sequence[ChainDeploymentRecord]:
    return (await session.scalars(
        select(ChainDeploymentRecord).where(ChainDeploymentRecord.chain_id == chain_id)
        .order_by(ChainDeploymentRecord.created_at, ChainDeploymentRecord.id))).all()


async def add_chain_deployment(session: AsyncSession, deployment_id: str, chain_id: str, is_development: bool,
                               chainlets: list[dict[str, Any]], now: datetime) -> ChainDeploymentRecord:
    """A new version; a development push replaces the chain's development version."""
    if is_development:
        for old in await chain_deployments(session, chain_id):
            if old.is_development:
                await session.delete(old)
    existing = await session.get(ChainDeploymentRecord, deployment_id)
    if existing is not None:
        await session.delete(existing)
    await session.flush()
    record = ChainDeploymentRecord(id=deployment_id, chain_id=chain_id, is_development=is_development,
                                   chainlets=chainlets, created_at=now)
    session.add(record)
    await session.flush()
    return record


async def delete_chain(session: AsyncSession, chain: ChainRecord) -> None:
    for d in await chain_deployments(session, chain.id):
        await session.delete(d)
    await session.delete(chain)
    await session.flush()

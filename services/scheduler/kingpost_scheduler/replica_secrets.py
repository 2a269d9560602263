"""The secrets a deployment's replicas get: the names its Truss declares (config.yaml `secrets:`, as
the builder read them), with the values set through `/v1/secrets`, opened only here, on the way to
the agent that writes them for the runner.

A declared secret without a default that is not set stops the replica from starting, and the
message names it; a push checks the same first (`missing`), so that it fails before anything is made.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kingpost.errors import InvalidArgument
from kingpost_scheduler import store
from kingpost_scheduler.clients import BuildLookup
from kingpost_scheduler.secret_box import SecretBox
from kingpost_scheduler.tables import SecretRecord

Read = Callable[[str, Callable[[AsyncSession], Awaitable[Any]]], Awaitable[Any]]


def missing(required: Iterable[str], stored: Iterable[str]) -> list[str]:
    """The required secrets that are not set, sorted."""
    return sorted(set(required) - set(stored))


def missing_error(names: list[str]) -> InvalidArgument:
    listed = ", ".join(repr(n) for n in names)
    first = names[0]
    return InvalidArgument(
        f"the Truss's config.yaml declares secret{'s' if len(names) > 1 else ''} {listed} without a default, "
        f"and {'they are' if len(names) > 1 else 'it is'} not set: `kingpost secrets set {first}` "
        "(or POST /v1/secrets) first")


async def stored_names(session: AsyncSession) -> list[str]:
    return list((await session.scalars(select(SecretRecord.name))).all())


class ReplicaSecrets:
    def __init__(self, builds: BuildLookup, box: SecretBox, read: Read) -> None:
        self._builds = builds
        self._box = box
        self._read = read
        # build id → (declared names, required names); a build never changes.
        self._declared: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}

    async def for_deployment(self, deployment_id: str) -> Mapping[str, str]:
        """name → value of each declared secret that is set. Raises InvalidArgument naming the
        required ones that are not set; Unavailable while the builder cannot be asked."""
        async def build_of(session: AsyncSession) -> str:
            return (await store.get_deployment(session, deployment_id)).build_id

        build_id = await self._read("reading a deployment's build", build_of)
        if build_id not in self._declared:
            info = await self._builds.get_build(build_id)
            self._declared[build_id] = (info.secrets, info.required_secrets)
        names, required = self._declared[build_id]
        if not names:
            return {}

        async def sealed(session: AsyncSession) -> dict[str, str]:
            rows = await session.scalars(select(SecretRecord).where(SecretRecord.name.in_(names)))
            return {r.name: r.ciphertext for r in rows}

        stored = await self._read("reading secrets", sealed)
        if absent := missing(required, stored):
            raise missing_error(absent)
        return {name: self._box.open(name, ciphertext) for name, ciphertext in stored.items()}

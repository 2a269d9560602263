"""The one writer: every change to the scheduler's database is a transaction run here, one at a time.

The scheduler is the only writer of its tables; serialising its writes under one lock keeps SQLite
happy and reasoning simple (each transaction sees the last one's result). A write's `then` runs
after the commit, still under the lock, so what it publishes (a route table) goes out in commit
order. Reads take no lock. Every transaction runs to its end even when its caller is cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kingpost_scheduler.db import translate_errors

T = TypeVar("T")


class Transactions:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self._lock = asyncio.Lock()
        self._running: set[asyncio.Future[Any]] = set()

    async def write(self, doing: str, fn: Callable[[AsyncSession], Awaitable[T]], *,
                    then: Callable[[T], Awaitable[None]] | None = None) -> T:
        """`fn` in one transaction (`doing` names it in errors); then, once committed, `then(result)`."""
        return await self.to_the_end(self._write(doing, fn, then))

    async def read(self, doing: str, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        return await self.to_the_end(self._read(doing, fn))

    def to_the_end(self, work: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Run `work` to its end even when its caller is cancelled (a client that gave up, a
        shutdown); the caller still sees the cancellation. A transaction cut off mid-query leaves a
        connection the driver must tear down: on SQLite its write lock then stalls every other writer
        for the busy timeout, and aiosqlite's teardown can wait forever. `close` waits for these."""
        task = asyncio.ensure_future(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return asyncio.shield(task)

    async def _write(self, doing: str, fn: Callable[[AsyncSession], Awaitable[T]],
                     then: Callable[[T], Awaitable[None]] | None) -> T:
        async with self._lock:
            async with translate_errors(doing), self.sessions.begin() as session:
                result = await fn(session)
            if then is not None:
                await then(result)
        return result

    async def _read(self, doing: str, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async with translate_errors(doing), self.sessions() as session:
            return await fn(session)

    async def close(self, timeout: float = 30.0) -> None:
        """Let the transactions in flight end (commit or roll back)."""
        if self._running:
            await asyncio.wait(set(self._running), timeout=timeout)

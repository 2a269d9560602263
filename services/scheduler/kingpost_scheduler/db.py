"""The database at one seam: engine and sessions, migrations at start, and error translation.

Data-access functions (store.py) take a session and flush; the caller that owns the
transaction commits (`async with sessions.begin()`). SQLAlchemy, aiosqlite and asyncpg errors
become kingpost.errors here and nowhere else. Each session notes the tables its transaction
changed (`changed_tables`), so the route table is rebuilt only after a change it could show.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy import event, inspect
from sqlalchemy.engine import Connection, Result, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from kingpost.errors import Conflict, Internal, KingpostError, Unavailable

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str) -> AsyncEngine:
    """An async engine; for SQLite the directory is made, and WAL, foreign keys and a busy timeout set."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True)


class TrackedSession(Session):
    """A session that notes, in `info[CHANGED]`, the tables whose rows its transaction changed."""


CHANGED = "kingpost.changed_tables"


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=TrackedSession)


def changed_tables(session: AsyncSession) -> frozenset[str]:
    """The tables this session's transaction changed so far (flushed changes)."""
    return frozenset(session.info.get(CHANGED, ()))


@event.listens_for(TrackedSession, "after_flush")
def _note_flushed(session: Session, _flush: UOWTransaction) -> None:
    # Here `new`, `dirty` and `deleted` still hold what this flush wrote; `dirty` also holds rows
    # whose attributes were set to the values they had, which wrote nothing.
    changed = session.info.setdefault(CHANGED, set())
    for row in (*session.new, *session.deleted):
        changed.add(inspect(row).mapper.local_table.name)
    for row in session.dirty:
        if session.is_modified(row, include_collections=False):
            changed.add(inspect(row).mapper.local_table.name)


@event.listens_for(TrackedSession, "do_orm_execute")
def _note_statement(state: ORMExecuteState) -> Result[Any] | None:
    """A bulk UPDATE or DELETE changed its table if it matched a row (an UPDATE by primary key of
    many rows does not say: it counts as a change)."""
    if not (state.is_update or state.is_delete):
        return None
    result = state.invoke_statement()
    if getattr(result, "rowcount", -1) != 0:
        state.session.info.setdefault(CHANGED, set()).add(state.statement.table.name)  # type: ignore[attr-defined]
    return result


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """`alembic upgrade head` on this engine (what the service does at start).

    On SQLite, with foreign keys off: a batch migration copies a table and drops the old one, and with
    them on, that DROP deletes every row that references it (ON DELETE CASCADE: a model's deployments).
    SQLite ignores the pragma inside a transaction, so it is set around the migration's, and the
    references are checked before it commits.
    """

    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()):
            raise Internal(f"migrating the database left broken references: {broken[:5]}")

    sqlite = engine.dialect.name == "sqlite"
    async with translate_errors("migrating the database"), engine.connect() as conn:
        if sqlite:
            await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await conn.commit()
        try:
            async with conn.begin():
                await conn.run_sync(run)
        finally:
            if sqlite:
                await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                await conn.commit()


@contextlib.asynccontextmanager
async def translate_errors(doing: str) -> AsyncIterator[None]:
    """The one place database errors turn into the platform's."""
    try:
        yield
    except KingpostError:
        raise
    except IntegrityError as e:
        raise Conflict(f"{doing}: conflicts with what is stored ({_first_line(e.orig)})") from e
    except (OperationalError, InterfaceError, OSError, asyncpg.exceptions.InterfaceError,
            asyncpg.exceptions.CannotConnectNowError, asyncpg.exceptions.ConnectionDoesNotExistError,
            sqlite3.OperationalError) as e:
        raise Unavailable(f"{doing}: the database is not available ({_first_line(e)})") from e
    except (DBAPIError, SQLAlchemyError, asyncpg.PostgresError) as e:
        log.exception("database error while %s", doing)
        raise Internal(f"{doing}: database error ({_first_line(e)})") from e


def _first_line(e: object) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__

"""The database at one seam: engine and sessions, migrations at start, and error translation.

Data-access functions (store.py) take a session and flush; the caller that owns the
transaction commits (`async with sessions.begin()`). SQLAlchemy, aiosqlite and asyncpg errors
become kingpost.errors here and nowhere else.
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
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

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


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


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
    async with translate_errors("migrating the database"):
        async with engine.connect() as conn:
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

"""The shared server fixtures give real, working servers."""

from __future__ import annotations

import nats
import pytest
import sqlalchemy as sa
from nats.js.api import StreamConfig
from sqlalchemy.ext.asyncio import create_async_engine


async def test_nats_jetstream_round_trip(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="FIXTURE_SELFTEST", subjects=["selftest.>"]))
        ack = await js.publish("selftest.one", b"hello")
        assert ack.stream == "FIXTURE_SELFTEST"
        sub = await js.pull_subscribe("selftest.>", durable="selftest")
        [msg] = await sub.fetch(1, timeout=5)
        await msg.ack()
        assert (msg.subject, msg.data) == ("selftest.one", b"hello")
        await js.delete_stream("FIXTURE_SELFTEST")
    finally:
        await nc.close()


# Twice: the second round would see the first round's table if databases were reused.
@pytest.mark.parametrize("round_", [1, 2])
async def test_database_accepts_schema_and_rows(database_url: str, round_: int) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            tables = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
            assert tables == []  # a fresh, empty database
            await conn.execute(sa.text("CREATE TABLE models (id TEXT PRIMARY KEY, name TEXT NOT NULL)"))
            await conn.execute(sa.text("INSERT INTO models VALUES ('m1', 'llama')"))
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT id, name FROM models"))).all()
        assert [tuple(r) for r in rows] == [("m1", "llama")]
    finally:
        await engine.dispose()


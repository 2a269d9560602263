"""A scheduler database made by the first release upgrades to the current schema with its rows intact,
on SQLite and PostgreSQL.

The database is created at the first revision and filled as a running platform fills it; then it is
upgraded one revision at a time. Every step, for every revision there is or will be:
  - runs on tables that hold rows (a NOT NULL column without a server default fails here);
  - keeps every row, and every value of every column that existed before the step;
  - gives the rows it found, in each column it adds, that column's server default (NULL without one),
    unless BACKFILLED names the column: a migration that computes values says what they are there.
At head, the scheduler's own store reads the rows back as a user's models, keys and environments.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from kingpost_scheduler import db, store

# (revision, table, column) → the value the revision gives rows that existed before it, keyed by
# primary key. Empty while every added column takes its server default.
# JSON columns' defaults ('{}', '[]') do not read back through a CAST on SQLite: say them here.
BACKFILLED: Mapping[tuple[str, str, str], Mapping[tuple[Any, ...], Any]] = {
    # Deployments that were ACTIVE or scaled to zero have served: a load failure no longer fails them.
    ("0009", "deployments", "has_served"): {
        ("dep_echodev001",): True, ("dep_echopub001",): True, ("dep_draftdev01",): True},
    ("0005", "nodes", "labels"): {("node_gpu_a",): {}},
    ("0005", "replicas", "gpus"): {("rep_echopub0001",): []},
    # A JSON server default ('[]') reads back through CAST as a number on SQLite: say the value.
    ("0008", "api_keys", "model_ids"): {("kp_1a2b3c4d",): [], ("kp_9f8e7d6c",): []},
}

T0 = datetime(2025, 11, 28, 9, 30, tzinfo=UTC)
T1 = datetime(2025, 11, 29, 17, 5, 12, 250000, tzinfo=UTC)
ADMIN_KEY, OLD_KEY = "kp_1a2b3c4d_admin-secret", "kp_9f8e7d6c_old-secret"


def sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def deployment(id: str, model_id: str, name: str, **values: Any) -> dict[str, Any]:
    return {
        "id": id, "model_id": model_id, "name": name, "is_development": False, "environment": "",
        "status": "ACTIVE", "status_reason": "", "build_id": f"bld_{id[4:]}",
        "artifact_digest": "sha256:" + "ab" * 32,
        "predict_concurrency": 1, "min_replica": 0, "max_replica": 1, "autoscaling_window": 60,
        "scale_down_delay": 900, "concurrency_target": 1, "target_utilization_percentage": 70,
        "desired_replicas": 1, "active": True, "deleted": False, "created_at": T0, **values,
    }


# What a platform of the first release held: a model in production with a development deployment
# too, a model with only a development deployment (scaled to zero), a replica on a GPU node, an
# admin key and a revoked one. Insertion order respects the foreign keys.
FIRST_RELEASE_ROWS: dict[str, list[dict[str, Any]]] = {
    "models": [
        {"id": "mdl_echo000001", "name": "echo", "created_at": T0},
        {"id": "mdl_draft00001", "name": "draft", "created_at": T1},
    ],
    "deployments": [
        deployment("dep_echodev001", "mdl_echo000001", "development", is_development=True,
                   predict_concurrency=2),
        deployment("dep_echopub001", "mdl_echo000001", "deployment-1", environment="production",
                   min_replica=1, max_replica=3, scale_down_delay=60, concurrency_target=4),
        deployment("dep_draftdev01", "mdl_draft00001", "development", is_development=True,
                   status="SCALED_TO_ZERO", status_reason="no traffic for 900 s", desired_replicas=0,
                   created_at=T1),
    ],
    "nodes": [
        {"id": "node_gpu_a", "address": "10.0.0.7:50070", "cpu_count": 32, "memory_bytes": 256 << 30,
         "gpus": [{"name": "NVIDIA H100 80GB HBM3", "memory_bytes": 80 << 30}], "last_seen": T0},
    ],
    "replicas": [
        {"id": "rep_echopub0001", "deployment_id": "dep_echopub001", "node_id": "node_gpu_a",
         "state": "READY", "address": "10.0.0.7:41000", "message": "", "created_at": T0, "updated_at": T0},
    ],
    "environments": [
        {"model_id": "mdl_echo000001", "name": "production", "deployment_id": "dep_echopub001"},
    ],
    "api_keys": [
        {"prefix": "kp_1a2b3c4d", "name": "admin", "sha256": sha256(ADMIN_KEY), "created_at": T0,
         "revoked": False},
        {"prefix": "kp_9f8e7d6c", "name": "ci", "sha256": sha256(OLD_KEY), "created_at": T0, "revoked": True},
    ],
}


def revisions_oldest_first() -> list[str]:
    script = ScriptDirectory.from_config(db.alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


Snapshot = dict[str, dict[tuple[Any, ...], dict[str, Any]]]  # table → primary key → row


def snapshot(connection: sa.Connection) -> tuple[Snapshot, dict[str, dict[str, Any]]]:
    """Every row of every table (but alembic's), and each table's columns as reflected."""
    metadata = sa.MetaData()
    metadata.reflect(connection)
    rows: Snapshot = {}
    columns: dict[str, dict[str, Any]] = {}
    for name, table in metadata.tables.items():
        if name == "alembic_version":
            continue
        key = [c.name for c in table.primary_key.columns]
        found = connection.execute(sa.select(table)).mappings()
        rows[name] = {tuple(r[k] for k in key): dict(r) for r in found}
        columns[name] = {c["name"]: c for c in sa.inspect(connection).get_columns(name)}
    return rows, columns


def server_default(connection: sa.Connection, column: Mapping[str, Any]) -> Any:
    """The value the database gives a row that does not name this column, read as the column's type."""
    if column["default"] is None:
        return None
    return connection.execute(sa.select(sa.cast(sa.text(column["default"]), column["type"]))).scalar_one()


def insert_first_release_rows(connection: sa.Connection) -> None:
    metadata = sa.MetaData()
    metadata.reflect(connection)
    for table, rows in FIRST_RELEASE_ROWS.items():
        connection.execute(sa.insert(metadata.tables[table]), rows)


async def test_each_revision_upgrades_a_filled_database_keeping_its_rows(database_url: str) -> None:
    revisions = revisions_oldest_first()
    assert revisions[0] == "0001"
    engine = db.make_engine(database_url)
    try:
        await db.upgrade(engine, revisions[0])
        async with engine.begin() as conn:
            await conn.run_sync(insert_first_release_rows)
            before, before_columns = await conn.run_sync(snapshot)
        assert {t: len(r) for t, r in before.items()} == {t: len(r) for t, r in FIRST_RELEASE_ROWS.items()}

        for revision in revisions[1:]:
            await db.upgrade(engine, revision)
            async with engine.connect() as conn:
                after, after_columns = await conn.run_sync(snapshot)
                for table, old_rows in before.items():
                    assert table in after, f"{revision} dropped table {table}"
                    assert set(old_rows) <= set(after[table]), f"{revision} lost rows of {table}"
                    added = set(after_columns[table]) - set(before_columns[table])
                    for key, old in old_rows.items():
                        new = after[table][key]
                        assert {c: new[c] for c in old} == old, f"{revision} changed {table} row {key}"
                        for column in added:
                            backfilled = BACKFILLED.get((revision, table, column))
                            want = (backfilled[key] if backfilled is not None else
                                    await conn.run_sync(server_default, after_columns[table][column]))
                            assert new[column] == want, f"{revision}: {table}.{column} of row {key}"
            before, before_columns = after, after_columns

        # The current code reads the upgraded rows as what the user had.
        async with db.session_factory(engine)() as session:
            assert [m.name for m in await store.list_models(session)] == ["echo", "draft"]
            environments = {(e.model_id, e.name): e for e in await store.environments(session)}
            assert environments.keys() == {("mdl_echo000001", "production"), ("mdl_draft00001", "production")}
            production = environments["mdl_echo000001", "production"]
            assert production.deployment_id == "dep_echopub001"
            assert (production.candidate_deployment_id, production.canary_stage) == ("", 0)
            # 0002 gave every model a production environment, empty where nothing was promoted.
            assert environments["mdl_draft00001", "production"].deployment_id is None
            admin = await store.api_key_by_digest(session, sha256(ADMIN_KEY))
            old = await store.api_key_by_digest(session, sha256(OLD_KEY))
            assert admin is not None and old is not None
            assert (admin.name, admin.revoked, admin.created_at) == ("admin", False, T0)
            assert (old.name, old.revoked) == ("ci", True)
            assert [k.prefix for k in await store.list_api_keys(session)] == ["kp_1a2b3c4d"]

        # References are enforced again once migrated (SQLite's are switched off while it migrates).
        with pytest.raises(sa.exc.IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(sa.text(
                    "INSERT INTO replicas (id, deployment_id, node_id, state, address, message, created_at,"
                    " updated_at) VALUES ('rep_orphan', 'dep_missing', 'node_gpu_a', 'READY', '', '',"
                    " :t, :t)"), {"t": T0})
    finally:
        await engine.dispose()

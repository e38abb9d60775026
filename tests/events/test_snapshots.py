"""The snapshot repository on a really migrated database: SQLite always, PostgreSQL when
PANELQL_TEST_POSTGRES_URL is set (a throwaway database per run)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from panelql.db.snapshots import SnapshotRow, Snapshots
from tests.events.conftest import Sessions, open_sessions


@pytest.fixture
async def pg_sessions() -> AsyncIterator[Sessions]:
    base = os.environ.get("PANELQL_TEST_POSTGRES_URL")
    if not base:
        print("PANELQL_TEST_POSTGRES_URL is not set: PostgreSQL snapshot test skipped")
        pytest.skip("PANELQL_TEST_POSTGRES_URL is not set; PostgreSQL snapshot test skipped")
    database = f"panelql_snap_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{database}"'))
    url = make_url(base).set(database=database).render_as_string(hide_password=False)
    try:
        sessions, engine = await open_sessions(url)
        yield sessions
        await engine.dispose()
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        await admin.dispose()


async def _exercise(sessions: Sessions) -> None:
    repo = Snapshots(sessions)
    many = [SnapshotRow("server", f"s{i:04d}", "RUNNING", "running") for i in range(400)]
    await repo.save("cat", many)  # more rows than one INSERT chunk
    await repo.save("other", [SnapshotRow("server", "s0000", "STOPPED")])
    loaded = await repo.load("cat")
    assert len(loaded) == 400 and loaded[("server", "s0001")].raw_status == "running"

    # upsert changes in place; deletes remove only what is named, only on that connection
    await repo.save("cat", [SnapshotRow("server", "s0001", "STOPPED", "stopped")],
                    deletes=[("server", f"s{i:04d}") for i in range(200, 400)])
    loaded = await repo.load("cat")
    assert len(loaded) == 200
    assert loaded[("server", "s0001")] == SnapshotRow("server", "s0001", "STOPPED", "stopped")
    assert await repo.find("other", "server", "s0000") == SnapshotRow("server", "s0000",
                                                                      "STOPPED")
    assert await repo.find("cat", "server", "s0300") is None

    # webhook ingestion: previous status returned once, a replay changes nothing
    row = SnapshotRow("invoice", "in_1", "PAID", "paid")
    await repo.save("stripe", [SnapshotRow("invoice", "in_1", "OPEN", "open")])
    assert await repo.ingest("stripe", "evt_1", [row]) == {("invoice", "in_1"): "OPEN"}
    assert await repo.ingest("stripe", "evt_1", [SnapshotRow("invoice", "in_1", "VOID")]) is None
    assert await repo.find("stripe", "invoice", "in_1") == row
    assert await repo.ingest("stripe", "evt_2", [SnapshotRow("invoice", "in_2", "OPEN")]) == {
        ("invoice", "in_2"): None}


async def test_snapshot_repository_sqlite(sessions: Sessions) -> None:
    await _exercise(sessions)


@pytest.mark.postgres
async def test_snapshot_repository_postgres(pg_sessions: Sessions) -> None:
    await _exercise(pg_sessions)

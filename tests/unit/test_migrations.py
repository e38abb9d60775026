"""The migration chain really builds the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock
from sqlalchemy import Connection, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from panelql.db.engine import create_engine
from panelql.db.migrate import (
    ADVISORY_LOCK_KEY,
    WAITING,
    alembic_config,
    current_revision,
    upgrade,
)
from panelql.db.models import Base


def _head() -> str:
    """The chain's single head (several helpers add migrations; it must stay linear)."""
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"the migration chain forked: heads {heads}"
    return heads[0]


async def _assert_matches_models(url: str) -> None:
    await upgrade(url)
    assert await current_revision(url) == _head()
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            def diff(sync: Connection) -> list[object]:
                return list(compare_metadata(MigrationContext.configure(sync), Base.metadata))
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()


async def test_sqlite_file_migrates_to_the_models(tmp_path: Path) -> None:
    await _assert_matches_models(f"sqlite+aiosqlite:///{tmp_path / 'state.db'}")


async def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'again.db'}"
    await upgrade(url)
    await upgrade(url)
    assert await current_revision(url) == _head()


async def test_postgres_migrates_to_the_models() -> None:
    base = os.environ.get("PANELQL_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("PANELQL_TEST_POSTGRES_URL is not set; PostgreSQL migration test skipped")
    database = f"panelql_mig_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{database}"'))
    try:
        await _assert_matches_models(make_url(base).set(database=database).render_as_string(
            hide_password=False))
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        await admin.dispose()


async def _waits_for_the_holder(url: str, hold: object, release: object) -> None:
    """While another process holds the migration lock, an upgrade says it waits and does
    nothing; once released it finishes."""
    assert callable(hold) and callable(release)
    notices: list[str] = []
    await hold()
    try:
        upgrading = asyncio.create_task(upgrade(url, notify=notices.append))
        async with asyncio.timeout(30):
            while not notices:
                await asyncio.sleep(0.01)
        assert notices == [WAITING]
        await asyncio.sleep(0.3)
        assert not upgrading.done()  # still waiting: it never migrates beside the holder
    finally:
        await release()
    await asyncio.wait_for(upgrading, 60)
    assert await current_revision(url) == _head()


async def test_sqlite_upgrade_waits_for_another_process_holding_the_lock(
        tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'locked.db'}"
    other = FileLock(f"{tmp_path / 'locked.db'}.migrate-lock")

    async def hold() -> None:
        other.acquire()

    async def release() -> None:
        other.release()

    await _waits_for_the_holder(url, hold, release)


async def test_sqlite_upgrades_at_once_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'race.db'}"
    await asyncio.gather(*(upgrade(url, notify=lambda _: None) for _ in range(3)))
    assert await current_revision(url) == _head()


async def test_postgres_upgrade_waits_for_the_advisory_lock() -> None:
    base = os.environ.get("PANELQL_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("PANELQL_TEST_POSTGRES_URL is not set; PostgreSQL migration test skipped")
    database = f"panelql_miglock_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{database}"'))
    url = make_url(base).set(database=database).render_as_string(hide_password=False)
    holder = create_async_engine(url, isolation_level="AUTOCOMMIT")
    held = await holder.connect()

    async def hold() -> None:
        await held.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})

    async def release() -> None:
        await held.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})

    try:
        await _waits_for_the_holder(url, hold, release)
        # Three at once on a database already at head: nothing to do, nobody fails.
        await asyncio.gather(*(upgrade(url, notify=lambda _: None) for _ in range(3)))
    finally:
        await held.close()
        await holder.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        await admin.dispose()

"""The migration chain really builds the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from panelql.db.engine import create_engine
from panelql.db.migrate import alembic_config, current_revision, upgrade
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

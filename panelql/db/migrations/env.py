"""Alembic environment: async engine, both SQLite and PostgreSQL.

``panelql.db.migrate`` passes the connection it holds the migration lock on
(``config.attributes["connection"]``); a bare ``alembic`` run opens its own."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from panelql.db.engine import create_engine
from panelql.db.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection, target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


given = config.attributes.get("connection")
if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif given is not None:  # panelql.db.migrate: on its connection, under its lock
    _run(given)
else:
    asyncio.run(_online())

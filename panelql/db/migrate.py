"""Run Alembic migrations from code (``panelql db upgrade`` and start-up auto-migration).

Several replicas starting at once on an empty database must not all run the same DDL (on
PostgreSQL two concurrent ``CREATE TABLE`` end in a duplicate ``pg_type`` key), so an upgrade
runs under a lock that every PanelQL process of that database takes first:

- PostgreSQL: a session-level advisory lock (scoped to the database by the server), held on
  the very connection the migration runs on, so it is released when that connection ends even
  if the process dies;
- SQLite: a lock file beside the database file (``<file>.migrate-lock``), since SQLite's own
  write lock is only taken at the first write and a second process would otherwise read an
  empty version table too.

Whoever waits says so once ("waiting for another replica's migration") and, once it has the
lock, finds the database at head and does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from filelock import FileLock
from filelock import Timeout as FileLockTimeout
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from panelql.db.engine import create_engine, ensure_sqlite_dir

MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed 64-bit number works; this one spells "panelql" in ASCII so it is easy to spot in
# pg_locks (objid) while a migration runs.
ADVISORY_LOCK_KEY = 0x70616E656C716C
WAITING = "waiting for another replica's migration"

log = logging.getLogger("panelql.db.migrate")
Notify = Callable[[str], None]


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _log_notice(message: str) -> None:
    log.warning(message)


@contextlib.contextmanager
def _advisory_lock(connection: Connection, notify: Notify) -> Iterator[None]:
    got = connection.execute(text("SELECT pg_try_advisory_lock(:k)"),
                             {"k": ADVISORY_LOCK_KEY}).scalar()
    if not got:
        notify(WAITING)
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
    connection.commit()  # the lock is the session's; the migration runs its own transaction
    try:
        yield
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
        connection.commit()


@contextlib.contextmanager
def _file_lock(url: str, notify: Notify) -> Iterator[None]:
    database = make_url(url).database
    if database in (None, "", ":memory:"):  # one connection, one process: nothing to share
        yield
        return
    ensure_sqlite_dir(url)
    lock = FileLock(f"{database}.migrate-lock")
    try:
        lock.acquire(timeout=0)
    except FileLockTimeout:
        notify(WAITING)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _upgrade_on(connection: Connection, url: str, revision: str, notify: Notify) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = connection  # env.py migrates on this connection
    if connection.dialect.name == "postgresql":
        with _advisory_lock(connection, notify):
            command.upgrade(config, revision)
            connection.commit()
    else:
        command.upgrade(config, revision)
        connection.commit()


async def upgrade(url: str, revision: str = "head", *, notify: Notify = _log_notice) -> None:
    """Bring the database to ``revision``; safe to run from several processes at once."""
    if make_url(url).get_backend_name() == "sqlite":
        # The file lock blocks, so it lives in a thread of its own, taken and released there.
        await asyncio.to_thread(_sqlite_upgrade, url, revision, notify)
    else:
        await _upgrade(url, revision, notify)


def _sqlite_upgrade(url: str, revision: str, notify: Notify) -> None:
    with _file_lock(url, notify):
        asyncio.run(_upgrade(url, revision, notify))


async def _upgrade(url: str, revision: str, notify: Notify) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_upgrade_on, url, revision, notify)
    finally:
        await engine.dispose()


async def current_revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            def read(sync_conn: Connection) -> str | None:
                return MigrationContext.configure(sync_conn).get_current_revision()
            return await conn.run_sync(read)
    finally:
        await engine.dispose()

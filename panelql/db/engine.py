"""Engine and session factory.

SQLite gets WAL and a busy timeout so the watcher, mutations and queries can share one file, and
the factory's :meth:`Sessions.write` queues this process's writers before SQLite sees them:
SQLite admits one writer at a time and its busy handler is sleep-and-retry, not a queue. Fifty
identical ``createServer`` calls at once on a loaded CI machine left one writer retrying past
the busy timeout ("database is locked", answered as INTERNAL). In the gate they wait their turn
in order, and the busy timeout is left for the rare writer in another process (the CLI).
PostgreSQL takes concurrent writers itself; there the gate is not used.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# Set while this task holds the write gate: a write opened inside another (the outer one has
# not written yet, or SQLite would refuse it anyway) must not wait for itself.
_holding_gate: ContextVar[bool] = ContextVar("panelql_holding_write_gate", default=False)


def ensure_sqlite_dir(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def create_engine(url: str) -> AsyncEngine:
    ensure_sqlite_dir(url)
    engine = create_async_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
    return engine


class Sessions(async_sessionmaker[AsyncSession]):
    """``sessions()`` for reads, ``sessions.write()`` for a write transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, expire_on_commit=False)
        self.serial_writes = engine.dialect.name == "sqlite"
        # One gate per event loop: the CLI and tests open several loops over one factory, and
        # an asyncio.Lock belongs to the loop that first waited on it.
        self._gates: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            WeakKeyDictionary())

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction committed on leaving the block (rolled back on an exception)."""
        if not self.serial_writes or _holding_gate.get():
            async with self.begin() as session:
                yield session
            return
        gate = self._gates.setdefault(asyncio.get_running_loop(), asyncio.Lock())
        async with gate:
            token = _holding_gate.set(True)
            try:
                async with self.begin() as session:
                    yield session
            finally:
                _holding_gate.reset(token)


def session_factory(engine: AsyncEngine) -> Sessions:
    return Sessions(engine)

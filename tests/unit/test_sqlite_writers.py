"""Writers on one SQLite file (db/engine.py ``Sessions.write``), on a real file.

SQLite admits one writer at a time and makes the others sleep and retry; with fifty identical
``createServer`` calls on a loaded CI machine one retried past the busy timeout and its caller
got INTERNAL ("database is locked"). The gateway now queues its own writers, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from panelql.db.engine import Sessions, create_engine, session_factory
from panelql.db.migrate import upgrade
from panelql.db.models import AuditEntry
from panelql.db.repositories import Audit

WRITERS = 40


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[Sessions]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'writers.db'}"
    await upgrade(url)
    engine = create_engine(url)
    yield session_factory(engine)
    await engine.dispose()


async def _append(audit: Audit, actor: str) -> None:
    await audit.append(actor=actor, action="test", target=None, input_summary={},
                       outcome="ok", error_code=None, upstream_request_id=None, duration_ms=0)


async def test_writers_wait_their_turn_in_arrival_order(sessions: Sessions) -> None:
    audit = Audit(sessions)
    holding, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with sessions.write() as session:
            session.add(AuditEntry(actor="holder", action="test", target=None, input_summary={},
                                   outcome="ok", error_code=None, upstream_request_id=None,
                                   duration_ms=0))
            await session.flush()  # the file's write lock is taken here
            holding.set()
            await release.wait()

    first = asyncio.create_task(holder())
    await holding.wait()
    writers = []
    for n in range(WRITERS):
        writers.append(asyncio.create_task(_append(audit, f"w{n:02d}")))
        await asyncio.sleep(0.005)  # each is waiting before the next arrives
    await asyncio.sleep(0.3)
    release.set()
    await asyncio.wait_for(asyncio.gather(first, *writers), 30)
    async with sessions() as session:
        actors = list(await session.scalars(select(AuditEntry.actor).order_by(AuditEntry.id)))
    # Waiting in SQLite's busy handler instead, they come out in whatever order its sleeps
    # end, and the slowest past the busy timeout.
    assert actors == ["holder"] + [f"w{n:02d}" for n in range(WRITERS)]


async def test_a_write_opened_inside_a_write_does_not_wait_for_itself(
        sessions: Sessions) -> None:
    audit = Audit(sessions)

    async def nested() -> None:
        async with sessions.write():  # has not written: SQLite lets the inner one in
            await _append(audit, "inner")

    await asyncio.wait_for(nested(), 10)
    async with sessions() as session:
        assert list(await session.scalars(select(AuditEntry.actor))) == ["inner"]


def test_postgresql_takes_concurrent_writers_itself() -> None:
    engine = create_engine("postgresql+asyncpg://panelql@127.0.0.1:5432/none")
    assert session_factory(engine).serial_writes is False

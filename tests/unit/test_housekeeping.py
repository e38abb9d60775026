"""Expired idempotency records are purged; fresh ones survive."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from panelql.application.gateway import Gateway
from panelql.application.housekeeping import Housekeeping
from panelql.db.engine import create_engine, session_factory
from panelql.db.migrate import upgrade
from panelql.settings import Settings


async def test_purges_expired_idempotency_records(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"
    await upgrade(url)
    engine = create_engine(url)
    gateway = Gateway(settings=Settings(database_url=url), providers={},
                      sessions=session_factory(engine))
    try:
        await gateway.idempotency.claim("k", "old", "x", timedelta(seconds=-1))
        await gateway.idempotency.claim("k", "fresh", "x", timedelta(hours=1))
        house = Housekeeping(gateway)
        await house.start()
        assert await house.run_once() == 0  # start() already purged the expired one
        again = await gateway.idempotency.claim("k", "old", "x", timedelta(hours=1))
        assert again.state == "new"  # purged: the key is free again
        fresh = await gateway.idempotency.claim("k", "fresh", "x", timedelta(hours=1))
        assert fresh.state == "busy"  # the fresh record survived
        await house.aclose()
    finally:
        await gateway.aclose()
        await engine.dispose()


async def test_a_cancellation_handed_back_as_an_error_still_stops_the_loop(
        tmp_path: Path) -> None:
    """A client library may turn our cancellation into an error of its own (the redis client
    does); the loop, which survives errors, must end on it rather than log it and go on."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"
    await upgrade(url)
    engine = create_engine(url)
    gateway = Gateway(settings=Settings(database_url=url), providers={},
                      sessions=session_factory(engine))
    purging = asyncio.Event()

    class Converting(Housekeeping):
        armed = False  # the first purge, inside start(), is not the one interrupted

        async def run_once(self) -> int:
            if not purging.is_set() and self.armed:
                purging.set()
                try:
                    await asyncio.sleep(30)
                except asyncio.CancelledError:
                    raise ConnectionError("connection closed by the client") from None
            return 0

    house = Converting(gateway, interval=0.01)
    try:
        await house.start()
        house.armed = True
        await asyncio.wait_for(purging.wait(), 10)
        task = next(t for t in asyncio.all_tasks() if t.get_coro().__qualname__.endswith(
            "Housekeeping._loop"))
        await house.aclose()
        # Without the check the loop logs the error and sleeps on, and aclose gives up on it
        # after background.STOP_SECONDS with the task still running.
        assert task.done()
    finally:
        await gateway.aclose()
        await engine.dispose()

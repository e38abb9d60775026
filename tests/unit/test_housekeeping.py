"""Expired idempotency records are purged; operations of a dead process are closed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from panelql.application.gateway import Gateway
from panelql.application.housekeeping import Housekeeping
from panelql.db.engine import create_engine, session_factory
from panelql.db.migrate import upgrade
from panelql.settings import Settings


async def test_purges_expired_records_and_interrupts_stale_operations(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"
    await upgrade(url)
    engine = create_engine(url)
    gateway = Gateway(settings=Settings(database_url=url), providers={},
                      sessions=session_factory(engine))
    try:
        await gateway.idempotency.claim("k", "old", "x", timedelta(seconds=-1))
        await gateway.idempotency.claim("k", "fresh", "x", timedelta(hours=1))
        stale = await gateway.operations.create("startServer", "cat", "s1", status="RUNNING")
        live = await gateway.operations.create("stopServer", "cat", "s2", status="RUNNING")
        long_ago = stale.updated_at - timedelta(hours=2)
        await gateway.operations.update(stale.id, updated_at=long_ago)
        house = Housekeeping(gateway)
        await house.start()
        assert await house.run_once() == 0  # start() already purged and interrupted
        row = await gateway.operations.get(stale.id)
        assert row is not None and row.status == "FAILED" and row.error_code == "INTERRUPTED"
        still = await gateway.operations.get(live.id)
        assert still is not None and still.status == "RUNNING"  # another replica's, maybe
        again = await gateway.idempotency.claim("k", "fresh", "x", timedelta(hours=1))
        assert again.state == "busy"  # the fresh record survived
        await house.aclose()
    finally:
        await gateway.aclose()
        await engine.dispose()

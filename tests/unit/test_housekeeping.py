"""Expired idempotency records are purged; fresh ones survive."""

from __future__ import annotations

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

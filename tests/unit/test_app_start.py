"""The gateway's start: a start that fails halfway closes what it had already opened."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, event

from panelql.app import create_app
from panelql.db.connections import ProviderConnections, StoredConnectionError
from panelql.db.engine import create_engine, session_factory
from panelql.db.migrate import upgrade
from panelql.settings import Settings


async def test_a_start_that_fails_after_the_engine_opened_disposes_it(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    await upgrade(url)
    engine = create_engine(url)
    # A stored connection and no secret key to decrypt it: the start fails while loading the
    # connections, after it opened the engine.
    await ProviderConnections(session_factory(engine)).add(
        name="stored", kind="stripe", base_url="http://127.0.0.1:1",
        credentials={"api_key": "sk_test_x"}, encrypt=lambda _: "not-decryptable")
    await engine.dispose()

    disposed: list[Engine] = []

    def note(engine: Engine) -> None:
        disposed.append(engine)

    event.listen(Engine, "engine_disposed", note)
    try:
        app = create_app(Settings(database_url=url, auto_migrate=False, watcher={"enabled": False}))
        with pytest.raises(StoredConnectionError):
            async with app.router.lifespan_context(app):
                pytest.fail("the start should have failed")
    finally:
        event.remove(Engine, "engine_disposed", note)
    assert [str(e.url) for e in disposed] == [url]


def test_a_single_process_gateway_never_loads_the_redis_client(tmp_path: Path) -> None:
    """Without PANELQL_REDIS_URL the redis package stays unimported through a whole start and
    stop (it costs a gateway about 9 MB of memory). A fresh interpreter: this test process has
    long imported it for the scale-out tests."""
    script = f"""
import asyncio, sys
from panelql.app import create_app
from panelql.settings import Settings

async def main():
    app = create_app(Settings(database_url="sqlite+aiosqlite:///{tmp_path / 'g.db'}"))
    async with app.router.lifespan_context(app):
        pass

asyncio.run(main())
print(sorted(m for m in sys.modules if m == "redis" or m.startswith("redis.")))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr

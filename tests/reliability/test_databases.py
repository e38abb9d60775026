"""The lifecycle flow and concurrent idempotent creates on SQLite and on PostgreSQL (asyncpg).

The PostgreSQL half runs when ``PANELQL_TEST_POSTGRES_URL`` is set (for example
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``): the session creates a throwaway
database, the gateway migrates it at start like any other, and it is dropped at the end.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers
from tests.e2e import test_catalyst_lifecycle as lifecycle
from tests.e2e.harness import GatewayUnderTest, serve_sim, start_gateway


async def _admin(base: str, statement: str) -> None:
    engine = create_async_engine(base, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    base = os.environ.get("PANELQL_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("PANELQL_TEST_POSTGRES_URL is not set; PostgreSQL runs skipped")
    database = f"panelql_e2e_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(base, f'CREATE DATABASE "{database}"'))
    try:
        yield make_url(base).set(database=database).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres",
                                                                marks=pytest.mark.postgres)])
def gw(request: pytest.FixtureRequest, background: BackgroundServers,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayUnderTest]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    sim = CatalystSim(servers=6, nodes=3)
    sim.knobs.transition_seconds = 0.2
    # The shared lifecycle tests address the panel as "cat-life".
    entry = serve_sim(background, "cat-life", sim, "catalyst", {"api_key": sim.api_key})
    gateway = start_gateway(background, f"gw-db-{request.param}", {"cat-life": sim}, [entry],
                            tmp_path_factory.mktemp("db") / "life.db", database_url=url,
                            operation_poll_seconds=0.05, watcher={"enabled": False})
    yield gateway
    gateway.client.close()
    # Shut the gateway (and its engine) down before the session drops the database.
    background.stop_one(f"gw-db-{request.param}")


def test_backend_is_the_one_asked_for(gw: GatewayUnderTest,
                                      request: pytest.FixtureRequest) -> None:
    dialect = gw.app.state.gateway.sessions.kw["bind"].dialect.name
    assert dialect == ("postgresql" if "postgres" in request.node.callspec.id else "sqlite")


def test_lifecycle_flow(gw: GatewayUnderTest) -> None:
    lifecycle.test_billing_flow_provision_to_termination(gw)


def test_concurrent_identical_creates(gw: GatewayUnderTest) -> None:
    lifecycle.test_concurrent_identical_creates_make_one_server(gw)

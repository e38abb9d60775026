"""Fixtures for the event pipeline: a migrated database file and a Catalyst simulator on HTTP."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panelql.db.engine import create_engine, session_factory
from panelql.db.migrate import upgrade
from panelql.providers.catalyst.adapter import CatalystProvider
from panelql.providers.config import ConnectionConfig, Secret
from panelql.providers.http import ClientFactory
from panelql.providers.registry import build_provider
from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers

Sessions = async_sessionmaker[AsyncSession]


async def open_sessions(url: str) -> tuple[Sessions, Any]:
    """A migrated database; returns (sessions, engine) so callers dispose the engine."""
    await upgrade(url)
    engine = create_engine(url)
    return session_factory(engine), engine


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'events.db'}"


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[Sessions]:
    factory, engine = await open_sessions(db_url)
    yield factory
    await engine.dispose()


@dataclass
class ServedCatalyst:
    sim: CatalystSim
    provider: CatalystProvider
    name: str


@pytest.fixture
async def catalyst(background: BackgroundServers) -> AsyncIterator[ServedCatalyst]:
    """A fresh Catalyst simulator on a real loopback port and an adapter pointing at it.

    Four servers: running, running, stopped, running (nothing transitional), two nodes.
    """
    sim = CatalystSim(servers=4, nodes=2, users=3)
    name = f"cat-{uuid.uuid4().hex[:8]}"
    served = background.serve(name, sim.app())
    clients = ClientFactory()
    config = ConnectionConfig(name=name, kind="catalyst", base_url=served.url,
                              credentials={"api_key": Secret(sim.api_key)}, timeout_seconds=5)
    provider = build_provider(config, clients)
    assert isinstance(provider, CatalystProvider)
    yield ServedCatalyst(sim, provider, name)
    await clients.aclose()
    background.stop_one(name)


@pytest.fixture
def redis_url() -> Iterator[str]:
    url = os.environ.get("PANELQL_TEST_REDIS_URL")
    if not url:
        print("PANELQL_TEST_REDIS_URL is not set: Redis tests skipped")
        pytest.skip("PANELQL_TEST_REDIS_URL is not set; Redis tests need a real Redis")
    yield url

"""`panelql demo` gives newcomers a working admin key, kept across restarts."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from panelql.admin import ensure_demo_key, revoke_key
from panelql.cli import demo_banner
from panelql.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/demo.db")


def test_demo_key_is_created_written_and_reused(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / ".panelql" / "demo-api-key"
    key, created = asyncio.run(ensure_demo_key(settings, path))
    assert created and path.read_text().strip() == key and key.startswith("pql_")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, created_again = asyncio.run(ensure_demo_key(settings, path))
    assert (again, created_again) == (key, False)


def test_a_revoked_or_foreign_key_is_replaced(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "key"
    key, _ = asyncio.run(ensure_demo_key(settings, path))
    asyncio.run(revoke_key(settings, 1))
    fresh, created = asyncio.run(ensure_demo_key(settings, path))
    assert created and fresh != key and path.read_text().strip() == fresh
    path.write_text("pql_from_another_database\n")
    _, created = asyncio.run(ensure_demo_key(settings, path))
    assert created


def test_banner_shows_curl_and_graphiql_header() -> None:
    text = demo_banner("http://127.0.0.1:8000/graphql", "pql_k", True, Path("f"))
    assert "-H 'x-api-key: pql_k'" in text
    assert '{"x-api-key": "pql_k"}' in text and "Headers" in text

"""Every CLI test gets its own SQLite file and a clean PANELQL_* environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from panelql.secrets import generate_key


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("PANELQL_"):
            monkeypatch.delenv(name)
    db = tmp_path / "cli.db"
    monkeypatch.setenv("PANELQL_DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    monkeypatch.chdir(tmp_path)
    return db


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = generate_key()
    monkeypatch.setenv("PANELQL_SECRET_KEY", key)
    return key

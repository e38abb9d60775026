"""`panelql config check`, `audit tail`, `db`, `schema export` and the error contract."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from panelql.admin import database
from panelql.cli import main
from panelql.db.repositories import Audit
from panelql.settings import load_settings

CONFIG = """
[gateway]
port = 9200
database_url = "postgresql+asyncpg://panelql:db-password-77@db.internal/panelql"

[[providers]]
name = "cat"
kind = "catalyst"
base_url = "https://games.example.com"
credentials = { api_key = "literal-secret-55", other = { env = "CAT_OTHER" } }
"""


def test_config_check_prints_effective_settings_with_secrets_redacted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "panelql.toml"
    config.write_text(CONFIG)
    monkeypatch.delenv("PANELQL_DATABASE_URL")
    monkeypatch.setenv("CAT_OTHER", "env-secret-66")
    monkeypatch.setenv("PANELQL_SECRET_KEY", "bad-key")
    assert main(["--config", str(config), "config", "check"]) == 2
    assert "key #1 is not a valid Fernet key" in capsys.readouterr().err
    monkeypatch.delenv("PANELQL_SECRET_KEY")
    monkeypatch.setenv("PANELQL_PORT", "9300")
    assert main(["--config", str(config), "config", "check"]) == 0
    captured = capsys.readouterr()
    for secret in ("db-password-77", "literal-secret-55", "env-secret-66"):
        assert secret not in captured.out
    effective = json.loads(captured.out)
    assert effective["port"] == 9300  # the environment wins over the file
    assert effective["database_url"] == "postgresql+asyncpg://panelql:***@db.internal/panelql"
    assert effective["providers"][0]["credentials"] == {
        "api_key": "**********", "other": {"env": "CAT_OTHER"}}
    assert "configuration OK" in captured.err


def test_config_check_names_the_wrong_key(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[providers]]\nname = "x"\nkind = "cpanel"\nbase_url = "https://h"\n')
    assert main(["--config", str(config), "config", "check"]) == 2
    err = capsys.readouterr().err
    assert "providers[0].kind" in err and "Traceback" not in err


def test_audit_tail_prints_newest_entries_oldest_first(
        capsys: pytest.CaptureFixture[str]) -> None:
    async def seed() -> None:
        async with database(load_settings()) as sessions:
            audit = Audit(sessions)
            for n, action in enumerate(["startServer", "stopServer", "suspendServer"]):
                await audit.append(actor="key:1:whmcs", action=action, target=f"srv-{n}",
                                   input_summary={}, outcome="ok" if n < 2 else "error",
                                   error_code=None if n < 2 else "CONFLICT",
                                   upstream_request_id=None, duration_ms=12.0)

    asyncio.run(seed())
    assert main(["audit", "tail", "-n", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[3] for line in lines] == ["stopServer", "suspendServer"]
    assert lines[1].endswith("error CONFLICT 12ms")
    assert main(["audit", "tail", "--json", "--action", "startServer"]) == 0
    (entry,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert entry["target"] == "srv-0" and entry["actor"] == "key:1:whmcs"


def test_db_upgrade_and_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "current"]) == 0
    assert "(empty database)" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out.startswith("database migrated from (empty) to ")
    assert main(["db", "upgrade"]) == 0  # nothing left to do, and it says so
    assert capsys.readouterr().out.startswith("database already at the latest revision (")
    assert main(["db", "current"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] != "(empty database)"


def test_schema_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out.graphql"
    assert main(["schema", "export", "--output", str(target)]) == 0
    assert "type Query" in target.read_text()
    assert main(["schema", "export", "--output", "-"]) == 0  # standard output, no file "-"
    assert "type Query" in capsys.readouterr().out and not Path("-").exists()


def test_providers_list_without_connections_says_where_they_come_from(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["providers", "list"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no provider connections" in captured.err and "demo.toml" in captured.err


def test_database_errors_are_one_line(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PANELQL_AUTO_MIGRATE", "false")  # so the tables are missing
    assert main(["keys", "list"]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("panelql: database error") and "no such table" in captured.err
    assert "panelql db upgrade" in captured.err and "Traceback" not in captured.err
    assert captured.out == ""


def test_help_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["providers", "--help"])
    assert done.value.code == 0
    assert "rotate-secrets" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["keys", "create", "--scope", "admin"])  # --name missing
    assert done.value.code == 2

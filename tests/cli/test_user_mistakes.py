"""A user's mistake gets one line (or one line per problem), a hint and a non-zero exit: never a
traceback. Each case here is one a new user made."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from panelql.cli import main


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.mark.parametrize("url,expected", [
    ("mysql://u:p@localhost/db", "unsupported database 'mysql'"),
    ("postgresql://u:p@localhost/db", "driver must be asyncpg"),
    ("sqlite:///x.db", "driver must be aiosqlite"),
    ("sqlite+aiosqlite:///no/such/folder/x.db", "folder no/such/folder does not exist"),
    ("not a url", "not a database URL"),
])
def test_unusable_database_urls(url: str, expected: str, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setenv("PANELQL_DATABASE_URL", url)
    code, err = _run(capsys, "db", "current")
    assert code == 2
    assert f"PANELQL_DATABASE_URL: {err.split('PANELQL_DATABASE_URL: ')[1]}".strip() in err
    assert expected in err
    assert "p@" not in err  # the URL's password is not echoed
    assert not (tmp_path / "no").exists()  # nothing created on the way


def test_unreachable_postgres_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    port = _free_port()  # nothing listens there
    monkeypatch.setenv("PANELQL_DATABASE_URL",
                       f"postgresql+asyncpg://panelql:hunter2@127.0.0.1:{port}/panelql")
    for argv in (["db", "current"], ["db", "upgrade"], ["keys", "list"]):
        code, err = _run(capsys, *argv)
        assert code == 1, argv
        assert "cannot reach the database" in err and "is the server running?" in err
        assert "hunter2" not in err
        assert len(err.strip().splitlines()) <= 2, err  # `db upgrade` says "migrating…" first


def test_config_check_reports_every_problem_with_dotted_paths(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "panelql.toml"
    config.write_text('[gateway]\nprot = 9000\ndatabase_ulr = "x"\nport = "high"\n'
                      '[gatway]\nhost = "0.0.0.0"\n'
                      '[[providers]]\nname = "c"\nkind = "catalyst"\nbase_url = "https://c"\n'
                      'tiemout_seconds = 3\n')
    code, err = _run(capsys, "--config", str(config), "config", "check")
    assert code == 2
    for line in ("gateway.prot: unknown key (did you mean 'port'?)",
                 "gateway.database_ulr: unknown key (did you mean 'database_url'?)",
                 "[gatway]: unknown table (did you mean [gateway]?)",
                 "gateway.port: Input should be a valid integer",
                 "providers[0].tiemout_seconds: unknown key (did you mean 'timeout_seconds'?)"):
        assert line in err, err
    assert "5 problems" in err


def test_an_environment_value_is_named_as_the_variable(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PANELQL_PORT", "eighty")
    code, err = _run(capsys, "config", "check")
    assert code == 2 and "PANELQL_PORT: Input should be a valid integer" in err


def test_literal_secrets_in_the_file_are_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "panelql.toml"
    config.write_text('[gateway]\nredis_url = "redis://:s3cret@127.0.0.1:6379/0"\n'
                      '[[providers]]\nname = "c"\nkind = "catalyst"\nbase_url = "https://c"\n'
                      'credentials = { api_key = "catalyst_literal", '
                      'other = { env = "C_OTHER" } }\n')
    monkeypatch.setenv("C_OTHER", "x")
    code = main(["--config", str(config), "config", "check"])
    captured = capsys.readouterr()
    assert code == 0
    assert "warning: providers[0].credentials.api_key: a literal secret in the file" in captured.err
    assert "credentials.other" not in captured.err  # an env reference is the right way
    assert "warning: gateway.redis_url: a password in the file" in captured.err
    assert "catalyst_literal" not in captured.err + captured.out
    assert "s3cret" not in captured.err + captured.out

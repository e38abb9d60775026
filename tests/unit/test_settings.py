from pathlib import Path

import pytest

from panelql.cli import main
from panelql.settings import ConfigError, load_settings

GOOD = """
[gateway]
port = 9100
graphiql = false

[[providers]]
name = "catalyst-eu"
kind = "catalyst"
base_url = "https://panel.example.com"
timeout_seconds = 10
credentials = { api_key = { env = "TEST_CATALYST_KEY" } }
"""


def test_toml_file_with_env_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "panelql.toml"
    path.write_text(GOOD)
    monkeypatch.setenv("TEST_CATALYST_KEY", "catalyst_secret_value")
    settings = load_settings(path)
    assert settings.port == 9100 and settings.graphiql is False
    (connection,) = settings.connections()
    assert connection.credential("api_key") == "catalyst_secret_value"
    assert "catalyst_secret_value" not in repr(connection)


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "panelql.toml"
    path.write_text(GOOD)
    monkeypatch.setenv("TEST_CATALYST_KEY", "x")
    monkeypatch.setenv("PANELQL_PORT", "9200")
    monkeypatch.setenv("PANELQL_LIMITS__MAX_DEPTH", "5")
    settings = load_settings(path)
    assert settings.port == 9200 and settings.limits.max_depth == 5


@pytest.mark.parametrize("body,where", [
    (GOOD.replace('kind = "catalyst"', 'kind = "cpanel"'), "providers[0].kind"),
    (GOOD.replace("https://panel", "ftp://panel"), "providers[0].base_url"),
    (GOOD.replace("port = 9100", 'port = "high"'), "port"),
    (GOOD + "\n[[providers]]\nname='x'\nkind='catalyst'\nbase_url='http://a'\nbogus=1\n",
     "providers[1].bogus"),
    (GOOD, "providers[0].credentials.api_key: environment variable TEST_CATALYST_KEY"),
    ("[gateway\n", "not valid TOML"),
])
def test_invalid_configuration_names_the_key(tmp_path: Path, body: str, where: str) -> None:
    path = tmp_path / "panelql.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert where in str(info.value)


def test_cli_prints_config_errors_without_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace('kind = "catalyst"', 'kind = "cpanel"'))
    assert main(["--config", str(path), "providers", "list"]) == 2
    err = capsys.readouterr().err
    assert "providers[0].kind" in err and "Traceback" not in err


def test_duplicate_connection_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_CATALYST_KEY", "x")
    path = tmp_path / "dup.toml"
    path.write_text(GOOD + GOOD.split("[gateway]")[1].split("graphiql = false")[1])
    with pytest.raises(ConfigError, match="duplicate"):
        load_settings(path)


def test_deployment_name_follows_the_database_not_its_credentials() -> None:
    from panelql.settings import Settings, deployment_from_database

    def name(url: str) -> str:
        return Settings(database_url=url).deployment_name

    prod = name("postgresql+asyncpg://panelql:secret@db:5432/panelql")
    assert prod == name("postgresql+asyncpg://other:changed@db:5432/panelql")  # same database
    assert prod == deployment_from_database("postgresql://panelql:secret@db:5432/panelql")
    assert prod != name("postgresql+asyncpg://panelql:secret@db:5432/panelql_staging")
    assert prod != name("postgresql+asyncpg://panelql:secret@db2:5432/panelql")
    assert "secret" not in prod and "panelql" not in prod.removeprefix("db-")
    explicit = Settings(database_url="sqlite+aiosqlite:///x.db", deployment="staging")
    assert explicit.deployment_name == "staging"
    assert explicit.redis_prefix == "panelql:staging:"


def test_deployment_name_is_checked() -> None:
    with pytest.raises(ConfigError, match="deployment"):
        load_settings(None, deployment="has spaces and : colons")

"""`panelql providers …`: stored connections (encrypted), health checks, rotation, and the
gateway loading stored connections next to the config file's."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from panelql.cli import main
from panelql.secrets import generate_key
from panelql.settings import ProviderEntry
from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import serve_sim, start_gateway

SECRET = "catalyst-secret-value-123"


def _add(name: str, url: str, *extra: str) -> int:
    return main(["providers", "add", name, "--kind", "catalyst", "--base-url", url,
                 "--credential", f"api_key={SECRET}", "--region", "eu-west", *extra])


@pytest.fixture(scope="module")
def catalyst(background: BackgroundServers) -> ProviderEntry:
    sim = CatalystSim(api_key=SECRET, servers=3, users=2, nodes=1)
    return serve_sim(background, "cli-catalyst", sim, "catalyst", {"api_key": SECRET})


def test_add_refuses_without_a_secret_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert _add("cat", "http://127.0.0.1:9") == 2
    err = capsys.readouterr().err
    assert "PANELQL_SECRET_KEY is not set" in err and "panelql keys secret" in err


def test_added_credentials_are_encrypted_at_rest(isolated_env: Path, secret_key: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert _add("cat", "http://127.0.0.1:9", "--option", "page_size=50") == 0
    out = capsys.readouterr().out
    assert "added cat" in out and SECRET not in out
    stored = sqlite3.connect(isolated_env).execute(
        "select credentials_encrypted, options from provider_connections").fetchall()
    assert len(stored) == 1
    token, options = stored[0]
    assert SECRET not in token and token.startswith("gAAAA")  # a Fernet token
    assert '"page_size": 50' in options and '"region": "eu-west"' in options
    assert main(["providers", "list"]) == 0
    assert capsys.readouterr().out.split("\n")[0].split("\t") == [
        "cat", "catalyst", "http://127.0.0.1:9", "database", "eu-west"]


def test_add_validation_and_duplicates(secret_key: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert _add("cat", "http://127.0.0.1:9") == 0
    assert _add("cat", "http://127.0.0.1:9") == 1
    assert "exists" in capsys.readouterr().err
    assert main(["providers", "add", "x", "--kind", "cpanel", "--base-url", "http://h"]) == 2
    assert "unknown provider kind 'cpanel'" in capsys.readouterr().err
    assert main(["providers", "add", "Bad Name", "--kind", "catalyst", "--base-url",
                 "http://h"]) == 2
    assert main(["providers", "add", "y", "--kind", "catalyst", "--base-url", "http://h",
                 "--credential", "novalue"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    config = tmp_path / "panelql.toml"
    config.write_text('[[providers]]\nname = "filed"\nkind = "catalyst"\n'
                      'base_url = "http://h"\ncredentials = { api_key = "k" }\n')
    assert main(["--config", str(config), "providers", "add", "filed", "--kind", "catalyst",
                 "--base-url", "http://h"]) == 1
    assert "config file already" in capsys.readouterr().err


def test_credential_from_environment(secret_key: str, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    args = ["providers", "add", "cat", "--kind", "catalyst", "--base-url", "http://h",
            "--credential-env", "api_key=CAT_KEY"]
    assert main(args) == 2
    assert "CAT_KEY is not set" in capsys.readouterr().err
    monkeypatch.setenv("CAT_KEY", SECRET)
    assert main(args) == 0


def test_remove(secret_key: str, capsys: pytest.CaptureFixture[str]) -> None:
    _add("cat", "http://127.0.0.1:9")
    assert main(["providers", "remove", "cat"]) == 0
    assert main(["providers", "remove", "cat"]) == 1
    assert "no stored connection named 'cat'" in capsys.readouterr().err
    main(["providers", "list"])
    assert capsys.readouterr().out == ""


def test_test_reports_latency_and_auth(secret_key: str, catalyst: ProviderEntry,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert _add("good", catalyst.base_url) == 0
    assert main(["providers", "add", "badkey", "--kind", "catalyst", "--base-url",
                 catalyst.base_url, "--credential", "api_key=wrong"]) == 0
    capsys.readouterr()
    assert main(["providers", "test", "good"]) == 0
    line = capsys.readouterr().out
    assert line.startswith("ok") and "auth=ok" in line and " ms" in line
    assert main(["providers", "test"]) == 1
    captured = capsys.readouterr()
    bad = next(x for x in captured.out.splitlines() if "badkey" in x)
    assert bad.startswith("FAIL") and "auth=rejected" in bad
    assert "1 of 2 connection(s) failed: badkey" in captured.err
    assert "wrong" not in captured.out + captured.err and SECRET not in captured.out
    assert main(["providers", "test", "nope"]) == 2


def test_add_with_check_refuses_a_failing_connection(
        secret_key: str, catalyst: ProviderEntry, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["providers", "add", "badkey", "--kind", "catalyst", "--base-url",
                 catalyst.base_url, "--credential", "api_key=wrong", "--check"]) == 1
    assert "not saved" in capsys.readouterr().err
    main(["providers", "list"])
    assert capsys.readouterr().out == ""


def test_rotate_secrets(secret_key: str, monkeypatch: pytest.MonkeyPatch, catalyst: ProviderEntry,
                        capsys: pytest.CaptureFixture[str]) -> None:
    assert _add("good", catalyst.base_url) == 0
    newer = generate_key()
    monkeypatch.setenv("PANELQL_SECRET_KEY", f"{newer},{secret_key}")
    assert main(["providers", "rotate-secrets"]) == 0
    assert "re-encrypted 1" in capsys.readouterr().out
    monkeypatch.setenv("PANELQL_SECRET_KEY", newer)  # the old key is gone: still readable
    assert main(["providers", "test"]) == 0
    monkeypatch.setenv("PANELQL_SECRET_KEY", secret_key)  # only the old key: not readable
    assert main(["providers", "test"]) == 2
    assert "cannot be decrypted" in capsys.readouterr().err


def test_gateway_serves_stored_connections_next_to_configured_ones(
        background: BackgroundServers, isolated_env: Path, secret_key: str,
        catalyst: ProviderEntry) -> None:
    assert _add("stored-cat", catalyst.base_url) == 0
    configured = catalyst.model_copy(update={"name": "filed-cat"})
    gw = start_gateway(background, "gw-cli-stored", {}, [configured], isolated_env,
                       secret_key=secret_key)
    body = gw.query("{ providers { name health { ok } } servers(first: 50) { totalCount } }")
    assert "errors" not in body, body
    assert {p["name"]: p["health"]["ok"] for p in body["data"]["providers"]} == {
        "filed-cat": True, "stored-cat": True}
    assert body["data"]["servers"]["totalCount"] == 6


def test_name_clash_between_file_and_database_stops_serve(
        secret_key: str, catalyst: ProviderEntry, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert _add("dup", catalyst.base_url) == 0
    config = tmp_path / "clash.toml"
    config.write_text(f'[[providers]]\nname = "dup"\nkind = "catalyst"\n'
                      f'base_url = "{catalyst.base_url}"\ncredentials = {{ api_key = "k" }}\n')
    assert main(["--config", str(config), "serve", "--port", "1"]) == 2
    assert "same name as connections in the config file" in capsys.readouterr().err

"""`panelql keys …` in-process against a temporary SQLite file."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest

from panelql.admin import CliError, list_keys, parse_expiry
from panelql.cli import main
from panelql.secrets import CredentialCipher
from panelql.settings import load_settings

KEY = re.compile(r"^pql_[0-9a-f]{8}_\S+$", re.M)


def _create(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["keys", "create", *args]) == 0
    out = capsys.readouterr().out.strip()
    assert KEY.match(out), out
    return out


def test_create_prints_the_key_once_and_list_never_shows_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    raw = _create(capsys, "--name", "whmcs", "--scope", "server.view", "--scope",
                  "server.suspend", "--customer", "whmcs:42", "--rate-limit", "60",
                  "--expires", "30d")
    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert "whmcs" in listing and "server.suspend,server.view" in listing
    assert "whmcs:42" in listing and "\t60\t" in listing and "active" in listing
    # The secret is everything after "pql_<id>_" (urlsafe base64 may hold "_" itself).
    assert raw not in listing and raw.split("_", 2)[2] not in listing
    (info,) = asyncio.run(list_keys(load_settings()))
    assert info.expires_at is not None
    assert timedelta(days=29) < info.expires_at - datetime.now(UTC) <= timedelta(days=30)


def test_quiet_prints_only_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    raw = _create(capsys, "--name", "ci", "--scope", "admin", "-q")
    assert "\n" not in raw
    assert capsys.readouterr().err == ""


def test_revoke(capsys: pytest.CaptureFixture[str]) -> None:
    _create(capsys, "--name", "old", "--scope", "admin")
    assert main(["keys", "revoke", "1"]) == 0
    assert "revoked key 1 (old)" in capsys.readouterr().out
    main(["keys", "list"])
    assert "revoked" in capsys.readouterr().out
    assert main(["keys", "revoke", "42"]) == 1
    assert "no API key with id 42" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--scope", "server.view", "--scope", "root"], "unknown scopes: root"),
    ([], "give at least one scope"),
    (["--scope", "admin", "--expires", "someday"], "--expires"),
    (["--scope", "admin", "--expires", "2001-01-01"], "has passed"),
    (["--scope", "admin", "--rate-limit", "0"], "--rate-limit"),
])
def test_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], args: list[str],
                                          message: str) -> None:
    assert main(["keys", "create", "--name", "x", *args]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert captured.out == ""


def test_parse_expiry_forms() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert parse_expiry("12h", now) == now + timedelta(hours=12)
    assert parse_expiry("90m", now) == now + timedelta(minutes=90)
    assert parse_expiry("2030-02-01", now) == datetime(2030, 2, 1, tzinfo=UTC)
    assert parse_expiry(None, now) is None
    with pytest.raises(CliError):
        parse_expiry("7w", now)


def test_secret_generates_a_usable_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "secret"]) == 0
    key = capsys.readouterr().out.strip()
    cipher = CredentialCipher([key])
    assert cipher.decrypt(cipher.encrypt({"a": "b"})) == {"a": "b"}

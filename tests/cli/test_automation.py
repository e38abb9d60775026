"""`panelql automation …` in-process against a temporary SQLite file."""

from __future__ import annotations

import pytest

from panelql.cli import main


def _out(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["automation", *args]) == 0
    return capsys.readouterr().out


def test_policies_are_created_switched_and_deleted(capsys: pytest.CaptureFixture[str]) -> None:
    assert "created policy 1" in _out(capsys, "create", "suspend after 3 days overdue",
                                      "--trigger", "overdue", "--overdue-days", "3")
    assert "created policy 2" in _out(capsys, "create", "games", "--trigger", "payment-failed",
                                      "--kind", "catalyst", "--kind", "pterodactyl",
                                      "--dry-run")
    listing = _out(capsys, "list")
    assert "1\tsuspend after 3 days overdue\tyes\tOVERDUE\t3\tall\tyes\tno" in listing
    assert "2\tgames\tyes\tPAYMENT_FAILED\t0\tcatalyst,pterodactyl\tyes\tyes" in listing
    assert "disabled" in _out(capsys, "disable", "1")
    assert "automation paused" in _out(capsys, "pause")
    listing = _out(capsys, "list")
    assert "1\tsuspend after 3 days overdue\tno\t" in listing and "(paused" in listing
    assert "automation resumed" in _out(capsys, "resume")
    assert "(paused" not in _out(capsys, "list")
    assert "deleted policy 2" in _out(capsys, "delete", "2")
    assert "games" not in _out(capsys, "list")
    assert _out(capsys, "runs").splitlines() == [
        "created\tid\tpolicy\tcustomer\taction\tstatus\tinvoice\tsteps"]


@pytest.mark.parametrize(("args", "message"), [
    (["create", "x", "--trigger", "dispute", "--overdue-days", "3"],
     "--overdue-days: overdueDays only applies to OVERDUE policies"),
    (["create", "x", "--trigger", "overdue", "--kind", "nope"], "--kind: unknown kinds: nope"),
    (["create", "bad\\name", "--trigger", "overdue"], "--name: name must be"),
    (["enable", "7"], "no automation policy with this id"),
    (["delete", "7"], "no automation policy with id 7"),
])
def test_mistakes_are_one_line_and_change_nothing(capsys: pytest.CaptureFixture[str],
                                                  args: list[str], message: str) -> None:
    assert main(["automation", *args]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert _out(capsys, "list").count("\n") == 1  # the header only


def test_a_name_is_taken_once(capsys: pytest.CaptureFixture[str]) -> None:
    _out(capsys, "create", "same", "--trigger", "overdue")
    assert main(["automation", "create", "same", "--trigger", "dispute"]) != 0
    assert "a policy named 'same' exists" in capsys.readouterr().err

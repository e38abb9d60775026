"""Audit redaction: secret-looking keys at any depth, env values, lists (issue: only a key named
exactly ``password`` was redacted, so root passwords, API tokens and env values were kept)."""

from __future__ import annotations

import json

from panelql.application.redaction import REDACTED, is_secret, sanitize


def test_secret_names_in_every_spelling() -> None:
    for name in ("password", "root_password", "rootPassword", "newPassword", "apiToken",
                 "api_token", "secret", "clientSecret", "token", "key", "apiKey", "api-key",
                 "privateKey", "ssh_keys", "licenseKey", "passphrase", "credentials"):
        assert is_secret(name), name
    for name in ("name", "memoryMb", "idempotencyKey", "customerRef", "template", "ports"):
        assert not is_secret(name), name


def test_nested_lists_and_env_values_are_redacted() -> None:
    values = {
        "input": {
            "name": "web-1", "rootPassword": "hunter2",
            "options": {"env": {"DB_PASSWORD": "s3cr3t", "MODE": "production"},
                        "environment": [{"name": "LICENSE", "value": "ABC-123"}, "X=y"],
                        "nested": [{"deeper": {"apiToken": "tok_live_1"}}]},
            "resources": {"memoryMb": 2048},
        },
        "idempotencyKey": "whmcs-42-create",
    }
    clean = sanitize(values)
    text = json.dumps(clean)
    for secret in ("hunter2", "s3cr3t", "production", "ABC-123", "X=y", "tok_live_1"):
        assert secret not in text, secret
    assert clean["input"]["name"] == "web-1"
    assert clean["input"]["resources"] == {"memoryMb": 2048}
    assert clean["input"]["options"]["env"] == {"DB_PASSWORD": REDACTED, "MODE": REDACTED}
    assert clean["input"]["options"]["environment"][0] == {"name": "LICENSE", "value": REDACTED}
    assert clean["idempotencyKey"] == "whmcs-42-create"
    assert values["input"]["rootPassword"] == "hunter2"  # the caller's values are untouched

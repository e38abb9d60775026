"""What of a mutation's input may be stored in the audit log: secrets out, at any depth.

Only a key named exactly ``password`` used to be redacted, so ``root_password``,
``rootPassword``, ``apiToken`` and a server's ``env`` values (database passwords, licence keys)
sat in the audit log in clear. A key is secret when its name, lower-cased with ``_``/``-``
dropped, contains a secret word or ends in ``key``; under an ``env``/``environment`` key every
value is redacted (names stay: they say what was set). Lists and nested objects are walked too.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[redacted]"
SECRET_WORDS = ("password", "passwd", "passphrase", "secret", "token", "credential",
                "privatekey", "apikey", "license", "licence", "cookie", "signature")
NOT_SECRET_KEYS = frozenset({"idempotencykey"})  # ends in "key", says nothing secret
ENV_KEYS = frozenset({"env", "environment", "envvars", "environmentvariables"})
MAX_DEPTH = 32  # inputs are bounded far below this by the JSON and GraphQL limits


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def is_secret(name: str) -> bool:
    normal = _normal(name)
    if normal in NOT_SECRET_KEYS:
        return False
    return any(word in normal for word in SECRET_WORDS) or normal.endswith("key") \
        or normal.endswith("keys")


def sanitize(values: dict[str, Any]) -> dict[str, Any]:
    """Input as it may be stored and logged: secret values replaced, structure kept."""
    clean = _clean(values, 0, hide_values=False)
    assert isinstance(clean, dict)
    return clean


def _clean(value: Any, depth: int, *, hide_values: bool) -> Any:
    if depth > MAX_DEPTH:
        return REDACTED
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key)
            if is_secret(name):
                out[name] = REDACTED
            elif _normal(name) in ENV_KEYS:
                out[name] = _clean(item, depth + 1, hide_values=True)
            elif hide_values and not isinstance(item, dict | list):
                # an env value; {"name": …, "value": …} entries keep their name
                out[name] = item if _normal(name) == "name" else REDACTED
            else:
                out[name] = _clean(item, depth + 1, hide_values=hide_values)
        return out
    if isinstance(value, list | tuple):
        return [_clean(item, depth + 1, hide_values=hide_values) for item in value]
    if hide_values:
        return REDACTED  # a bare value in an env list ("KEY=value" strings)
    return value

"""Encryption at rest for provider credentials stored in the database.

Credentials added with ``panelql providers add`` are Fernet tokens (AES-128-CBC + HMAC-SHA256,
with a timestamp) in ``provider_connections.credentials_encrypted``. The key comes from
``PANELQL_SECRET_KEY``; several comma-separated keys, newest first, make a MultiFernet, so a
key can be rotated without downtime:

1. prepend the new key (``new,old``) on every replica and restart;
2. ``panelql providers rotate-secrets`` re-encrypts every row with the newest key;
3. drop the old key.

Decrypted values exist only in memory, wrapped in ``Secret`` by the callers; this module never
logs or prints them, and its errors never contain them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

ENV_NAME = "PANELQL_SECRET_KEY"


class SecretKeyError(Exception):
    """The secret key is missing, malformed, or does not open a stored value."""


def generate_key() -> str:
    """A fresh key for ``PANELQL_SECRET_KEY`` (url-safe base64 of 32 random bytes)."""
    return Fernet.generate_key().decode()


def parse_keys(raw: str | None) -> list[str]:
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


class CredentialCipher:
    """Encrypts a credentials mapping to one token and back, with key rotation."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SecretKeyError(f"{ENV_NAME} is not set; generate one with "
                                 "`panelql keys secret` and export it")
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode()))
            except (ValueError, TypeError):
                # Say which key is wrong, never what it is.
                raise SecretKeyError(f"{ENV_NAME}: key #{position} is not a valid Fernet key "
                                     "(32 url-safe base64-encoded bytes)") from None
        self._fernet = MultiFernet(fernets)
        self.key_count = len(fernets)

    @classmethod
    def from_setting(cls, raw: str | None) -> CredentialCipher:
        return cls(parse_keys(raw))

    def encrypt(self, credentials: Mapping[str, str]) -> str:
        payload = json.dumps(dict(credentials), sort_keys=True, separators=(",", ":"))
        return self._fernet.encrypt(payload.encode()).decode()

    def decrypt(self, token: str) -> dict[str, str]:
        try:
            data = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise SecretKeyError(f"stored credentials cannot be decrypted with {ENV_NAME}; "
                                 "was the key that encrypted them removed?") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise SecretKeyError("stored credentials are not a mapping of strings")
        return {str(k): v for k, v in data.items()}

    def rotate(self, token: str) -> str:
        """The same plaintext under the newest key (MultiFernet keeps the original timestamp)."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(f"a stored value cannot be decrypted with any key in "
                                 f"{ENV_NAME}") from None

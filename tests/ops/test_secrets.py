"""Credential encryption: round trip, rotation, and errors that never carry the secret."""

from __future__ import annotations

import pytest

from panelql.providers.config import Secret
from panelql.secrets import CredentialCipher, SecretKeyError, generate_key, parse_keys

CREDS = {"api_key": "ptla_very_secret", "client_key": "ptlc_also_secret"}


def test_round_trip_hides_plaintext() -> None:
    cipher = CredentialCipher([generate_key()])
    token = cipher.encrypt(CREDS)
    assert "very_secret" not in token and "api_key" not in token
    assert cipher.decrypt(token) == CREDS
    assert cipher.encrypt(CREDS) != token  # random IV: equal inputs do not look equal


def test_rotation_newest_key_first() -> None:
    old, new = generate_key(), generate_key()
    token = CredentialCipher([old]).encrypt(CREDS)
    both = CredentialCipher.from_setting(f" {new} , {old} ")
    assert both.key_count == 2
    assert both.decrypt(token) == CREDS  # old tokens still open during the rotation
    rotated = both.rotate(token)
    assert CredentialCipher([new]).decrypt(rotated) == CREDS
    with pytest.raises(SecretKeyError, match="cannot be decrypted"):
        CredentialCipher([old]).decrypt(rotated)


def test_wrong_missing_and_malformed_keys() -> None:
    token = CredentialCipher([generate_key()]).encrypt(CREDS)
    with pytest.raises(SecretKeyError) as wrong:
        CredentialCipher([generate_key()]).decrypt(token)
    assert "ptla" not in str(wrong.value)
    with pytest.raises(SecretKeyError, match="not set"):
        CredentialCipher.from_setting("")
    with pytest.raises(SecretKeyError, match="key #2 is not a valid") as bad:
        CredentialCipher.from_setting(f"{generate_key()},not-a-key-hunter2")
    assert "hunter2" not in str(bad.value)
    assert parse_keys("a,,b ,") == ["a", "b"]


def test_decrypted_values_are_wrapped_so_they_never_print() -> None:
    from panelql.db.connections import StoredConnection

    cipher = CredentialCipher([generate_key()])
    stored = StoredConnection(id=1, name="p", kind="pterodactyl", base_url="https://p",
                              credentials_encrypted=cipher.encrypt(CREDS))
    config = stored.to_connection(cipher.decrypt)
    assert config.credential("api_key") == "ptla_very_secret"
    assert all(isinstance(v, Secret) for v in config.credentials.values())
    assert "secret" not in repr(config).replace("Secret(", "") and "gAAAA" not in repr(stored)

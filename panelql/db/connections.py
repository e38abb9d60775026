"""Provider connections added at runtime (``panelql providers add``), kept in the database.

Credentials are stored only as an encrypted token; this module never sees plaintext, so it
takes the encrypt/decrypt functions from the caller (``panelql.secrets.CredentialCipher``) and
stays free of key handling. The ``options`` column holds the adapter's options together with
the connection's region and timeout (the table has no columns of its own for them):
``{"adapter": {...}, "region": "eu-west", "timeout_seconds": 25.0}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from panelql.db.engine import Sessions
from panelql.db.models import ProviderConnection
from panelql.providers.config import ConnectionConfig, Secret

Encrypt = Callable[[Mapping[str, str]], str]
Decrypt = Callable[[str], dict[str, str]]
Rotate = Callable[[str], str]


class DuplicateConnection(Exception):
    """A stored connection with that name exists already."""


@dataclass(frozen=True)
class StoredConnection:
    """One row, credentials still encrypted (safe to print: the token is never shown)."""

    id: int
    name: str
    kind: str
    base_url: str
    options: dict[str, Any] = field(default_factory=dict)
    region: str | None = None
    timeout_seconds: float = 25.0
    created_at: datetime | None = None
    credentials_encrypted: str = field(default="", repr=False)

    def to_connection(self, decrypt: Decrypt) -> ConnectionConfig:
        secrets = {k: Secret(v) for k, v in decrypt(self.credentials_encrypted).items()}
        return ConnectionConfig(name=self.name, kind=self.kind, base_url=self.base_url,
                                credentials=secrets, options=dict(self.options),
                                timeout_seconds=self.timeout_seconds, region=self.region)


def _stored(row: ProviderConnection) -> StoredConnection:
    extra = dict(row.options or {})
    created = row.created_at
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return StoredConnection(
        id=row.id, name=row.name, kind=row.kind, base_url=row.base_url,
        options=dict(extra.get("adapter") or {}), region=extra.get("region"),
        timeout_seconds=float(extra.get("timeout_seconds") or 25.0), created_at=created,
        credentials_encrypted=row.credentials_encrypted,
    )


class ProviderConnections:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def add(self, *, name: str, kind: str, base_url: str, credentials: Mapping[str, str],
                  encrypt: Encrypt, options: Mapping[str, Any] | None = None,
                  region: str | None = None, timeout_seconds: float = 25.0) -> StoredConnection:
        row = ProviderConnection(
            name=name, kind=kind, base_url=base_url, credentials_encrypted=encrypt(credentials),
            options={"adapter": dict(options or {}), "region": region,
                     "timeout_seconds": timeout_seconds},
            created_at=datetime.now(UTC),
        )
        try:
            async with self.sessions.write() as session:
                session.add(row)
        except IntegrityError:
            raise DuplicateConnection(f"a stored connection named {name!r} exists") from None
        return _stored(row)

    async def list_all(self) -> list[StoredConnection]:
        async with self.sessions() as session:
            rows = await session.scalars(select(ProviderConnection)
                                         .order_by(ProviderConnection.name))
            return [_stored(r) for r in rows]

    async def find(self, name: str) -> StoredConnection | None:
        async with self.sessions() as session:
            row = await session.scalar(select(ProviderConnection)
                                       .where(ProviderConnection.name == name))
            return _stored(row) if row else None

    async def remove(self, name: str) -> bool:
        async with self.sessions.write() as session:
            result = await session.execute(delete(ProviderConnection)
                                           .where(ProviderConnection.name == name))
            return bool(getattr(result, "rowcount", 0))

    async def rotate(self, rotate: Rotate) -> int:
        """Re-encrypt every row under the newest key, in one transaction (all or nothing)."""
        async with self.sessions.write() as session:
            rows = list(await session.scalars(select(ProviderConnection)))
            for row in rows:
                row.credentials_encrypted = rotate(row.credentials_encrypted)
            return len(rows)

    async def load(self, decrypt: Decrypt) -> list[ConnectionConfig]:
        return [stored.to_connection(decrypt) for stored in await self.list_all()]


class StoredConnectionError(Exception):
    """Stored connections that cannot be loaded (no key, wrong key, name clash)."""


async def load_connections(sessions: Sessions, secret_key: str | None,
                           taken: set[str]) -> list[ConnectionConfig]:
    """The stored connections, decrypted, for the gateway to build at start. ``taken`` are the
    config file's names: a stored connection may not shadow one."""
    from panelql.secrets import CredentialCipher, SecretKeyError

    stored = await ProviderConnections(sessions).list_all()
    if not stored:
        return []
    clash = sorted(s.name for s in stored if s.name in taken)
    if clash:
        raise StoredConnectionError(
            f"stored connection(s) {', '.join(clash)} have the same name as connections in "
            "the config file; rename one side (`panelql providers remove NAME`)")
    from panelql.providers.registry import provider_class

    try:
        cipher = CredentialCipher.from_setting(secret_key)
        configs = [s.to_connection(cipher.decrypt) for s in stored]
    except SecretKeyError as exc:
        raise StoredConnectionError(f"{len(stored)} stored connection(s): {exc}") from None
    for config in configs:
        try:  # a kind whose shape changed (nextpanel, issue #13) says what to store instead
            provider_class(config.kind).validate_config(config)
        except ValueError as exc:
            raise StoredConnectionError(f"stored connection {config.name!r}: {exc}") from None
    return configs

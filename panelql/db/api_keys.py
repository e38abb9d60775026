"""API keys: created once (the secret is shown only then), stored as a SHA-256 hash.

SHA-256 without salt is enough here because keys are 190 random bits, not passwords: there is
nothing to guess, and the lookup stays one indexed query per request.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import UTC, datetime

from sqlalchemy import select, update

from panelql.db.engine import Sessions
from panelql.db.models import ApiKey
from panelql.domain.state import KeyInfo

KEY_PREFIX = "pql_"


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.id, row.name, row.prefix, tuple(row.scopes or ()), row.customer_ref,
                   row.rate_limit_per_minute, _aware(row.expires_at), _aware(row.revoked_at),
                   _aware(row.created_at))


# Every request authenticates, so known keys are remembered briefly instead of costing a
# database round trip each time. A revocation takes effect at once on the replica that did it
# and within this many seconds on the others.
CACHE_SECONDS = 5.0


class ApiKeys:
    def __init__(self, sessions: Sessions,
                 cache_seconds: float = CACHE_SECONDS) -> None:
        self.sessions = sessions
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, KeyInfo]] = {}

    async def create(self, *, name: str, scopes: list[str], customer_ref: str | None = None,
                     rate_limit_per_minute: int | None = None,
                     expires_at: datetime | None = None) -> tuple[str, KeyInfo]:
        """Returns (the secret key, its stored description). The secret is never stored."""
        prefix = secrets.token_hex(4)
        raw = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(24)}"
        row = ApiKey(name=name, prefix=prefix, key_hash=hash_key(raw), scopes=sorted(set(scopes)),
                     customer_ref=customer_ref, rate_limit_per_minute=rate_limit_per_minute,
                     expires_at=expires_at, created_at=datetime.now(UTC))
        async with self.sessions.write() as session:
            session.add(row)
        return raw, _info(row)

    async def find(self, raw: str) -> KeyInfo | None:
        digest = hash_key(raw)
        cached = self._cache.get(digest)
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        async with self.sessions() as session:
            row = await session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
        if row is None:  # unknown keys are not cached: a flood of guesses stays a flood of misses
            return None
        info = _info(row)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (time.monotonic(), info)
        return info

    async def list(self) -> list[KeyInfo]:
        async with self.sessions() as session:
            return [_info(r) for r in await session.scalars(select(ApiKey).order_by(ApiKey.id))]

    async def revoke(self, key_id: int) -> KeyInfo | None:
        async with self.sessions.write() as session:
            await session.execute(update(ApiKey).where(
                ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(
                revoked_at=datetime.now(UTC)))
            row = await session.get(ApiKey, key_id)
        # Forget every cached entry of this key (we only know its hash by id here).
        self._cache = {h: v for h, v in self._cache.items() if v[1].id != key_id}
        return _info(row) if row else None

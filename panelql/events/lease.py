"""Who polls a connection: a lease per connection, so N replicas still cost one poll.

:class:`RedisLeases` holds ``panelql:<deployment>:lease:<name>`` with a random owner token
(``SET NX PX``) and renews it with a compare-and-extend script, so a replica can never extend
a lease that has already passed to another. A replica that dies simply stops renewing: the key
expires after ``ttl`` and the next replica to ask takes it. :class:`LocalLeases` is the
single-process fallback and always grants.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from panelql.settings import Settings

log = logging.getLogger("panelql.events.lease")

# Extend only if we still own it; returns 1 when extended, 0 when the lease is someone else's.
RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""

RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class Leases(Protocol):
    async def hold(self, name: str) -> bool:
        """Acquire or renew the lease on ``name``; True while this process holds it."""
        ...

    async def release(self, name: str) -> None: ...

    async def aclose(self) -> None:
        """Release every lease this process holds, so a successor need not wait for expiry."""
        ...


class LocalLeases:
    """One process, no coordination needed: every lease is granted."""

    async def hold(self, name: str) -> bool:
        return True

    async def release(self, name: str) -> None:
        return None

    async def aclose(self) -> None:
        return None


class RedisLeases:
    def __init__(self, client: Redis, *, ttl_seconds: float, owner: str | None = None,
                 prefix: str = "panelql:lease:", owns_client: bool = False) -> None:
        # The redis package is imported where a client exists, not with this module, which
        # every gateway loads: it costs about 9 MB of memory that a single process never uses.
        from redis.exceptions import RedisError

        self._unreachable = RedisError
        self.client = client
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self.owner = owner or secrets.token_hex(12)
        self.prefix = prefix
        self._owns_client = owns_client
        # name -> monotonic time until which the lease is surely ours (last renewal + ttl).
        self._until: dict[str, float] = {}

    @classmethod
    def from_url(cls, url: str, *, ttl_seconds: float, prefix: str = "panelql:lease:"
                 ) -> RedisLeases:
        from redis.asyncio import Redis

        return cls(Redis.from_url(url), ttl_seconds=ttl_seconds, prefix=prefix,
                   owns_client=True)

    def _key(self, name: str) -> str:
        return self.prefix + name

    async def hold(self, name: str) -> bool:
        asked = time.monotonic()
        try:
            held = await self._renew(name) or await self._acquire(name)
        except self._unreachable as exc:
            return self._while_unreachable(name, asked, exc)
        if held:
            self._until[name] = asked + self.ttl_ms / 1000
        else:
            self._until.pop(name, None)
        return held

    async def _renew(self, name: str) -> bool:
        if name not in self._until:
            return False
        extended = await self.client.eval(RENEW, 1, self._key(name), self.owner,  # type: ignore[misc]
                                          str(self.ttl_ms))
        return bool(extended)

    async def _acquire(self, name: str) -> bool:
        return bool(await self.client.set(self._key(name), self.owner, nx=True, px=self.ttl_ms))

    def _while_unreachable(self, name: str, asked: float, exc: Exception) -> bool:
        # Nobody can take the key before its TTL runs out, so we may keep polling until then;
        # after that we must assume another replica has it.
        still_ours = asked < self._until.get(name, 0.0)
        log.warning("lease check failed", extra={"lease": name, "error": repr(exc),
                                                  "still_held": still_ours})
        return still_ours

    async def release(self, name: str) -> None:
        self._until.pop(name, None)
        try:
            await self.client.eval(RELEASE, 1, self._key(name), self.owner)  # type: ignore[misc]
        except self._unreachable as exc:  # it expires on its own
            log.warning("lease release failed", extra={"lease": name, "error": repr(exc)})

    async def aclose(self) -> None:
        for name in list(self._until):
            await self.release(name)
        if self._owns_client:
            await self.client.aclose()


def leases_for(settings: Settings, ttl_seconds: float) -> Leases:
    """The deployment's leases: shared through Redis when scaled out (under the deployment's
    prefix), otherwise every lease is this process's."""
    if not settings.redis_url:
        return LocalLeases()
    return RedisLeases.from_url(settings.redis_url, ttl_seconds=ttl_seconds,
                                prefix=settings.redis_prefix + "lease:")

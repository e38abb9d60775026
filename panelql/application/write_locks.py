"""Mutual exclusion for read-modify-write changes upstream, in one process and across replicas.

Some upstream writes replace a whole set (a PowerDNS rrset is written whole by REPLACE), so two
writers that read the same set and each add one entry keep only the last one. The use-cases
that do such writes hold a lock named for what they change (``dns:<connection>:<zone>``).

:class:`LocalWriteLocks` is an ``asyncio.Lock`` per name (one process). :class:`RedisWriteLocks`
adds redis-py's own lock (``SET NX PX`` with a token, released only by its holder) so replicas
sharing Redis wait for each other too; a holder that dies releases it by expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

from panelql.application.errors import StateConflict

if TYPE_CHECKING:  # a Redis client is handed in only where one is configured
    from redis.asyncio import Redis


class WriteLocks(Protocol):
    def hold(self, name: str) -> contextlib.AbstractAsyncContextManager[None]: ...


class LocalWriteLocks:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(name, asyncio.Lock())
        self._users[name] = self._users.get(name, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[name] -= 1
            if not self._users[name]:  # nobody holds or waits: forget it
                del self._users[name], self._locks[name]


class RedisWriteLocks:
    """Across replicas. ``expiry`` bounds how long a dead holder blocks the others; ``wait``
    how long a writer queues before it gives up with a retryable CONFLICT."""

    def __init__(self, client: Redis, *, expiry: float = 30.0, wait: float = 30.0,
                 prefix: str = "panelql:write-lock:") -> None:
        from redis.exceptions import LockError, RedisError  # with the client: see below

        self.client = client
        self.expiry, self.wait, self.prefix = expiry, wait, prefix
        self.local = LocalWriteLocks()  # writers of this process queue here, not on Redis
        # The redis package is imported where a client exists, not with this module, which
        # every gateway loads: it costs about 9 MB of memory that a single process never uses.
        self._unreachable, self._released = RedisError, (LockError, RedisError)

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        async with self.local.hold(name):
            lock = self.client.lock(self.prefix + name, timeout=self.expiry, sleep=0.05,
                                    blocking_timeout=self.wait)
            try:
                acquired = await lock.acquire()
            except self._unreachable as exc:
                raise StateConflict("the write lock cannot be taken right now; retry",
                                    retryable=True) from exc
            if not acquired:
                raise StateConflict("another change to the same records is still running; "
                                    "retry", retryable=True)
            try:
                yield
            finally:
                with contextlib.suppress(*self._released):  # it expires on its own
                    await lock.release()

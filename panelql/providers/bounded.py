"""Bounded concurrency for an adapter's fan-out calls: one helper instead of one per adapter.

Panels without bulk endpoints are asked once per server, zone or user (backups, records, live
state). A 100-server page must not open 100 connections to one panel at once, so each adapter
holds a :class:`Bounded` per kind of fan-out and runs those calls through it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from types import TracebackType
from typing import TypeVar

T = TypeVar("T")


class Bounded:
    """At most ``limit`` of the calls run through it in flight at once."""

    def __init__(self, limit: int) -> None:
        self._slots = asyncio.Semaphore(limit)

    async def run(self, call: Awaitable[T]) -> T:
        async with self._slots:
            return await call

    async def gather(self, calls: Iterable[Awaitable[T]]) -> list[T]:
        """Every call, concurrently within the limit; results in the calls' order."""
        return list(await asyncio.gather(*(self.run(c) for c in calls)))

    # ``async with bounded:`` holds one slot around a call made in several steps.
    async def __aenter__(self) -> None:
        await self._slots.acquire()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self._slots.release()

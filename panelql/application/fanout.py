"""Run one read on many provider connections at once, keeping what the healthy ones return."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from panelql.application.context import Context
from panelql.providers.contract import Provider
from panelql.providers.errors import ProviderError

P = TypeVar("P", bound=Provider)
T = TypeVar("T")


async def gather_lists(
    ctx: Context, providers: Sequence[P], call: Callable[[P], Awaitable[list[T]]]
) -> list[T]:
    """Concurrent ``call`` on every provider; a failure is reported, not raised."""

    async def one(provider: P) -> list[T]:
        try:
            return await call(provider)
        except ProviderError as exc:
            exc.with_provider(provider.name)
            ctx.gateway.record_failure(provider.name, exc)
            ctx.report(exc)
            return []

    results = await asyncio.gather(*(one(p) for p in providers))
    return [item for chunk in results for item in chunk]

"""Catalogue reads: per connection, cached briefly, batched per request.

Panels change their plans and images by hand and rarely, while a billing system's product page
or a client area asks on every view: one answer per connection is kept for
``CATALOGUE_TTL_SECONDS`` (the connection option ``catalogue_cache_seconds`` overrides it), and
concurrent askers share the read in flight. Failures are not cached. Within one request the
``catalogue`` dataloader (application/loaders.py) asks every connection once, concurrently.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from weakref import WeakKeyDictionary

from panelql.application.errors import NotSupported
from panelql.domain.catalogue import CatalogueEntry
from panelql.providers.catalogue import CatalogueSource
from panelql.providers.contract import Capability, Provider
from panelql.providers.errors import ProviderError

CATALOGUE_TTL_SECONDS = 60.0

_cached: WeakKeyDictionary[Provider, tuple[float, list[CatalogueEntry]]] = WeakKeyDictionary()
_inflight: WeakKeyDictionary[Provider, asyncio.Future[list[CatalogueEntry]]] = \
    WeakKeyDictionary()


def ttl(provider: Provider) -> float:
    raw = provider.config.options.get("catalogue_cache_seconds", CATALOGUE_TTL_SECONDS)
    try:
        return max(0.0, float(raw))
    except (TypeError, ValueError):
        return CATALOGUE_TTL_SECONDS


def supports(provider: Provider) -> bool:
    return isinstance(provider, CatalogueSource) and \
        provider.supports(Capability.CATALOGUE_READ)


async def read(provider: Provider) -> list[CatalogueEntry]:
    if not supports(provider):
        raise NotSupported(f"{provider.kind} connections have no catalogue",
                           provider=provider.name)
    assert isinstance(provider, CatalogueSource)
    hit = _cached.get(provider)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    pending = _inflight.get(provider)
    if pending is None:
        pending = asyncio.ensure_future(_fetch(provider))
        _inflight[provider] = pending
        pending.add_done_callback(lambda f: f.cancelled() or f.exception())
    return await asyncio.shield(pending)


async def _fetch(provider: Provider) -> list[CatalogueEntry]:
    assert isinstance(provider, CatalogueSource)
    try:
        entries = list(await provider.catalogue())
    finally:
        _inflight.pop(provider, None)
    _cached[provider] = (time.monotonic() + ttl(provider), entries)
    return entries


def forget(provider: Provider) -> None:
    """Drop the cached answer (after a change the gateway made itself)."""
    _cached.pop(provider, None)


async def read_many(providers: Sequence[Provider]
                    ) -> list[list[CatalogueEntry] | BaseException]:
    """Each connection's catalogue, concurrently; a failing panel fails only its own entry."""
    async def one(p: Provider) -> list[CatalogueEntry] | BaseException:
        try:
            return await read(p)
        except (ProviderError, NotSupported) as exc:
            return exc
    return list(await asyncio.gather(*(one(p) for p in providers)))

"""Per-request dataloaders: keys are Refs, grouped by connection, one batched call per group.

Each loader's batch function hands every connection's ids to that adapter's batch read in one
call (``get_servers``, ``get_nodes``…), all connections concurrently. A failing connection fails
only its own keys. With ``settings.dataloaders`` off every key is its own call, which is what
``bench/`` compares against.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar, cast

from aiodataloader import DataLoader

from panelql.application.errors import NotFoundError
from panelql.application.gateway import Gateway
from panelql.domain.catalogue import CatalogueEntry
from panelql.domain.records import (
    AccountRecord,
    BackupRecord,
    DnsZoneRecord,
    InvoiceRecord,
    LiveState,
    NodeRecord,
    Ref,
    ServerRecord,
)
from panelql.observability import observe_batch
from panelql.providers.contract import (
    BillingProvider,
    ComputeProvider,
    DnsProvider,
    HostingProvider,
    NodeSource,
)
from panelql.providers.errors import NotFound, ProviderError

V = TypeVar("V")
P = TypeVar("P")  # a provider family: a Provider subclass or a runtime-checkable protocol
Fetch = Callable[[P, Sequence[str]], Awaitable[Mapping[str, V]]]


def _batch(gateway: Gateway, family: type, fetch: Fetch[P, V]) -> Callable[
    [list[Ref]], Coroutine[Any, Any, list[V | None]]
]:
    async def load(refs: list[Ref]) -> list[V | None]:
        observe_batch(fetch.__name__.lstrip("_"), len(refs))
        by_connection: dict[str, list[str]] = defaultdict(list)
        for ref in refs:
            by_connection[ref.connection].append(ref.id)

        async def one(name: str, ids: list[str]) -> Mapping[str, V] | BaseException:
            provider = gateway.providers.get(name)
            if not isinstance(provider, family):
                return NotFound(f"no such {family.__name__} connection {name!r}", provider=name)
            try:
                return await fetch(cast(P, provider), list(dict.fromkeys(ids)))
            except ProviderError as exc:
                gateway.record_failure(name, exc)
                return exc.with_provider(name)

        names = list(by_connection)
        results = dict(zip(names, await asyncio.gather(
            *(one(n, by_connection[n]) for n in names)), strict=True))
        out: list[V | BaseException | None] = []
        for ref in refs:
            found = results[ref.connection]
            out.append(found if isinstance(found, BaseException) else found.get(ref.id))
        # An exception in a key's slot fails that key alone: aiodataloader's contract for
        # batch functions, which its List[ReturnT] annotation does not spell out.
        return cast(list[V | None], out)

    return load


class ServerLoader(DataLoader[Ref, ServerRecord | None]):
    """The server loader, which also knows the servers this request listed.

    A lookup of a listed server is answered from the list without a batch. Priming the loader
    with a listed page instead cost a Future and a Ref per server, 1,000 of each for a
    dashboard that looks none of them up again (``make bench``, the floor rows).
    """

    def __init__(self, batch: Callable[[list[Ref]], Coroutine[Any, Any, list[ServerRecord | None]]],
                 **options: Any) -> None:
        super().__init__(batch, **options)
        self.listed: dict[tuple[str, str], ServerRecord] = {}

    def load(self, key: Ref) -> asyncio.Future[ServerRecord | None]:
        found = self.listed.get((key.connection, key.id))
        if found is None:
            return super().load(key)
        future: asyncio.Future[ServerRecord | None] = self.loop.create_future()
        future.set_result(found)
        return future

    def clear(self, key: Ref) -> ServerLoader:
        self.listed.pop((key.connection, key.id), None)
        return super().clear(key)

    def clear_all(self) -> ServerLoader:
        self.listed.clear()
        return super().clear_all()


class Loaders:
    """Fresh for every request: caches live exactly as long as one GraphQL operation."""

    def __init__(self, gateway: Gateway) -> None:
        batching = gateway.settings.dataloaders
        opts: dict[str, Any] = {} if batching else {"max_batch_size": 1, "cache": False}

        def make(family: type, fetch: Fetch[P, V]) -> DataLoader[Ref, V | None]:
            return DataLoader(_batch(gateway, family, fetch), **opts)

        # Each resolves a Ref to its record, or None when the panel does not have it.
        self.server = ServerLoader(_batch(gateway, ComputeProvider, _servers), **opts)
        self._listing = batching  # unbatched: every lookup is its own call, the baseline
        self.node = make(NodeSource, _nodes)
        self.live_state = make(ComputeProvider, _live_states)
        self.backups = make(ComputeProvider, _backups)
        self.account = make(HostingProvider, _accounts)
        self.zone = make(DnsProvider, _zones)
        self.invoice = make(BillingProvider, _invoices)
        self.catalogue: DataLoader[str, list[CatalogueEntry]] = DataLoader(_catalogues(gateway),
                                                                          **opts)

    def forget(self) -> None:
        """Drop what this request has read (after a write: the payload must see the write)."""
        for loader in vars(self).values():
            if isinstance(loader, DataLoader):
                loader.clear_all()

    def prime_servers(self, servers: Sequence[ServerRecord]) -> None:
        if self._listing:
            self.server.listed.update({(s.connection, s.id): s for s in servers})


def _catalogues(gateway: Gateway) -> Callable[
    [list[str]], Coroutine[Any, Any, list[list[CatalogueEntry]]]
]:
    """Catalogues by connection name, every connection asked concurrently."""
    from panelql.application import catalogues

    async def load(names: list[str]) -> list[list[CatalogueEntry]]:
        known = [n for n in names if n in gateway.providers]
        found = dict(zip(known, await catalogues.read_many(
            [gateway.providers[n] for n in known]), strict=True))
        out = [found[n] if n in found else NotFoundError(f"no provider connection named {n!r}")
               for n in names]
        return cast(list[list[CatalogueEntry]], out)  # an exception fails its key (see _batch)
    return load


async def _servers(p: ComputeProvider, ids: Sequence[str]) -> Mapping[str, ServerRecord]:
    return await p.get_servers(ids)


async def _nodes(p: NodeSource, ids: Sequence[str]) -> Mapping[str, NodeRecord]:
    return await p.get_nodes(ids)


async def _live_states(p: ComputeProvider, ids: Sequence[str]) -> Mapping[str, LiveState]:
    return await p.get_live_states(ids)


async def _backups(p: ComputeProvider, ids: Sequence[str]) -> Mapping[str, list[BackupRecord]]:
    return await p.list_backups(ids)


async def _accounts(p: HostingProvider, ids: Sequence[str]) -> Mapping[str, AccountRecord]:
    return await p.get_accounts(ids)


async def _zones(p: DnsProvider, ids: Sequence[str]) -> Mapping[str, DnsZoneRecord]:
    return await p.get_zones(ids)


async def _invoices(p: BillingProvider, ids: Sequence[str]) -> Mapping[str, InvoiceRecord]:
    return await p.get_invoices(ids)


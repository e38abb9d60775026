"""Read use-cases: list and look up the unified resources across every connection."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiodataloader import DataLoader

from panelql.application import relations
from panelql.application.context import Context
from panelql.application.customer_scope import CustomerScope, scope_of
from panelql.application.errors import NotFoundError, NotSupported
from panelql.application.fanout import gather_lists
from panelql.application.filters import (
    AccountFilter,
    BackupFilter,
    DnsZoneFilter,
    InvoiceFilter,
    NodeFilter,
    ServerFilter,
    matches_text,
)
from panelql.domain.records import (
    AccessGrant,
    AccountRecord,
    BackupRecord,
    DnsZoneRecord,
    InvoiceRecord,
    LiveState,
    NameserverCheck,
    NodeRecord,
    Ref,
    ResourceType,
    ServerRecord,
)
from panelql.domain.state import OperationRow
from panelql.domain.status import InvoiceStatus, ServerStatus
from panelql.providers.contract import (
    BillingProvider,
    Capability,
    ComputeProvider,
    DnsProvider,
    HostingProvider,
    NodeSource,
)
from panelql.providers.errors import ProviderError

Record = ServerRecord | NodeRecord | AccountRecord | BackupRecord | InvoiceRecord | DnsZoneRecord
T = TypeVar("T")
NO_CUSTOMER = "\x00nobody"  # matches no link: a bound key asking for another customer's data


def customer_ref(ctx: Context, requested: str | None) -> str | None:
    """The customer whose data a request may see: a bound key's own, whatever was asked."""
    bound = ctx.viewer.customer_ref
    if bound is None:
        return requested
    return bound if requested in (None, bound) else NO_CUSTOMER


async def customer_scope(ctx: Context, requested: str | None) -> CustomerScope | None:
    ref = customer_ref(ctx, requested)
    return None if ref is None else await scope_of(ctx, ref)


# -- servers ----------------------------------------------------------------------------------
async def server_state(ctx: Context, server: ServerRecord) -> LiveState:
    """Status and usage, asking the live-state loader when the list call lacked them."""
    pending = relations.live_state(ctx, server)
    if pending is None:
        assert server.status is not None
        return LiveState(server.status, server.raw_status, server.usage)
    state: LiveState | None = await pending
    return state or LiveState(ServerStatus.UNKNOWN, server.raw_status, server.usage)


def server_state_soon(ctx: Context, server: ServerRecord) -> LiveState | Awaitable[LiveState]:
    """:func:`server_state`, returned at once when it is already known (from the list call, or
    from a live-state batch the page prefetch finished): no coroutine, no Task per field."""
    pending = relations.live_state(ctx, server)
    if pending is None:
        assert server.status is not None
        return LiveState(server.status, server.raw_status, server.usage)
    if pending.done() and not pending.cancelled() and pending.exception() is None:
        state: LiveState | None = pending.result()
        return state or LiveState(ServerStatus.UNKNOWN, server.raw_status, server.usage)
    return server_state(ctx, server)


async def list_servers(ctx: Context, f: ServerFilter) -> list[ServerRecord]:
    providers = [p for p in ctx.gateway.of_family(ComputeProvider) if f.admits(p)]
    for ref in (f.node, f.owner):
        if ref is not None:
            providers = [p for p in providers if p.name == ref.connection]
    servers = await gather_lists(ctx, providers, lambda p: p.list_servers())
    ctx.loaders.prime_servers(servers)
    scope = await customer_scope(ctx, f.customer_ref)
    servers = [
        s for s in servers
        if (scope is None or scope.owns(s))
        and (f.node is None or s.node_id == f.node.id)
        and (f.owner is None or s.owner_id == f.owner.id)
        and matches_text(f.search, (s.name, s.id, s.external_ref))
    ]
    if f.statuses:
        wanted = set(f.statuses)
        states = await asyncio.gather(*(_state_or_unknown(ctx, s) for s in servers))
        servers = [s for s, st in zip(servers, states, strict=True) if st in wanted]
    return servers


async def _state_or_unknown(ctx: Context, server: ServerRecord) -> ServerStatus:
    try:
        return (await server_state(ctx, server)).status
    except ProviderError as exc:
        ctx.report(exc.with_provider(server.connection))
        return ServerStatus.UNKNOWN


async def owner_of(ctx: Context, server: ServerRecord) -> AccountRecord | None:
    """The server's panel user, where the kind has panel users (ProxmoxWP sites do not)."""
    pending = relations.owner(ctx, server)
    account: AccountRecord | None = None if pending is None else await _nested(ctx, pending)
    return account


async def node_of(ctx: Context, server: ServerRecord) -> NodeRecord | None:
    pending = relations.node(ctx, server)
    node: NodeRecord | None = None if pending is None else await _nested(ctx, pending)
    return node


def owner_soon(ctx: Context, server: ServerRecord
               ) -> AccountRecord | Awaitable[AccountRecord | None] | None:
    """:func:`owner_of`, returned at once when its batch has already answered."""
    pending = relations.owner(ctx, server)
    return None if pending is None else _nested_soon(ctx, pending)


def node_soon(ctx: Context, server: ServerRecord
              ) -> NodeRecord | Awaitable[NodeRecord | None] | None:
    """:func:`node_of`, returned at once when its batch has already answered."""
    pending = relations.node(ctx, server)
    return None if pending is None else _nested_soon(ctx, pending)


def backups_soon(ctx: Context, server: ServerRecord
                 ) -> list[BackupRecord] | Awaitable[list[BackupRecord]]:
    """:func:`server_backups`, returned at once when its batch has already answered."""
    found = _nested_soon(ctx, relations.backups(ctx, server))
    if inspect.isawaitable(found):
        return _or_empty(found)
    return found or []


async def _or_empty(pending: Awaitable[list[T] | None]) -> list[T]:
    return (await pending) or []


def _nested_soon(ctx: Context, pending: asyncio.Future[T]) -> T | Awaitable[T | None] | None:
    """:func:`_nested` without a coroutine when the future has settled: its value, or null
    with the panel's failure reported (the same answer the awaiting path gives)."""
    if pending.done() and not pending.cancelled():
        failure = pending.exception()
        if failure is None:
            return pending.result()
        if isinstance(failure, ProviderError):
            ctx.report(failure)
            return None
    return _nested(ctx, pending)


async def _nested(ctx: Context, pending: Awaitable[T]) -> T | None:
    """A related object whose panel failed is null, and the failure is reported once per
    panel (not once per server that pointed at it), like list queries do."""
    try:
        return await pending
    except ProviderError as exc:
        ctx.report(exc)
        return None


# -- nodes, accounts --------------------------------------------------------------------------
async def list_nodes(ctx: Context, f: NodeFilter) -> list[NodeRecord]:
    if ctx.viewer.customer_ref is not None:
        return []  # infrastructure is not a customer's to list (their servers' nodes resolve)
    providers = [p for p in ctx.gateway.providers.values()
                 if isinstance(p, NodeSource) and f.admits(p)]
    nodes = await gather_lists(ctx, providers, lambda p: p.list_nodes())
    for node in nodes:
        ctx.loaders.node.prime(Ref(node.connection, ResourceType.NODE, node.id), node)
    return [
        n for n in nodes
        if (not f.statuses or n.status in f.statuses)
        and (f.region is None or n.region == f.region)
        and matches_text(f.search, (n.name, n.id))
    ]


async def list_accounts(ctx: Context, f: AccountFilter) -> list[AccountRecord]:
    providers = [p for p in ctx.gateway.of_family(HostingProvider) if f.admits(p)]
    accounts = await gather_lists(ctx, providers, lambda p: p.list_accounts())
    for account in accounts:
        ctx.loaders.account.prime(Ref(account.connection, ResourceType.ACCOUNT, account.id),
                                  account)
    scope = await customer_scope(ctx, f.customer_ref)
    return [
        a for a in accounts
        if (scope is None or scope.owns(a))
        and (not f.statuses or a.status in f.statuses)
        and matches_text(f.search, (a.username, a.email, a.id, *a.domains))
    ]


# -- backups ----------------------------------------------------------------------------------
async def server_backups(ctx: Context, server: ServerRecord) -> list[BackupRecord]:
    found: list[BackupRecord] | None = await _nested(ctx, relations.backups(ctx, server))
    return found or []


async def list_backups(ctx: Context, f: BackupFilter) -> list[BackupRecord]:
    if f.server is not None:
        servers = [await get_server(ctx, f.server)]
    else:
        servers = await list_servers(ctx, ServerFilter(providers=f.providers, kinds=f.kinds,
                                                       customer_ref=f.customer_ref))
    # server_backups reports a failing panel once and yields no backups for its servers.
    results = await asyncio.gather(*(server_backups(ctx, s) for s in servers))
    backups = [b for chunk in results for b in chunk]
    return [
        b for b in backups
        if (not f.statuses or b.status in f.statuses) and matches_text(f.search, (b.name, b.id))
    ]


async def server_access(ctx: Context, server: ServerRecord) -> list[AccessGrant] | None:
    """The server's access grants as the panel holds them; None where the kind has none."""
    provider = ctx.gateway.providers.get(server.connection)
    if not isinstance(provider, ComputeProvider) or not provider.supports(
            Capability.SERVER_ACCESS):
        return None
    return await provider.list_access(server.id)


def backup_ref_id(server_id: str, backup_id: str) -> str:
    """Backups live under their server upstream, so their upstream id carries both."""
    return f"{server_id}/{backup_id}"


async def get_backup(ctx: Context, ref: Ref) -> BackupRecord:
    server_id, _, backup_id = ref.id.rpartition("/")
    if not server_id:
        raise NotFoundError("backup not found")
    server = await get_server(ctx, Ref(ref.connection, ResourceType.SERVER, server_id))
    # A lookup raises the panel's failure itself (server_backups would only report it).
    found: list[BackupRecord] | None = await ctx.loaders.backups.load(
        Ref(server.connection, ResourceType.SERVER, server.id))
    for backup in found or []:  # ownership was checked on the server
        if backup.id == backup_id:
            return backup
    raise NotFoundError("backup not found")


# -- billing and DNS --------------------------------------------------------------------------
async def list_invoices(ctx: Context, f: InvoiceFilter) -> list[InvoiceRecord]:
    providers = [p for p in ctx.gateway.of_family(BillingProvider) if f.admits(p)]
    scope = await customer_scope(ctx, f.customer_ref)

    def customers_of(p: BillingProvider) -> list[str] | None:
        if scope is None:
            return f.customer_ids
        linked = scope.billing.get(p.name, [])
        return [c for c in linked if f.customer_ids is None or c in f.customer_ids]

    if scope is not None:  # ask only the billing connections this customer has links on
        providers = [p for p in providers if customers_of(p)]
    invoices = await gather_lists(
        ctx, providers, lambda p: p.list_invoices(customer_ids=customers_of(p)))
    for invoice in invoices:
        ctx.loaders.invoice.prime(Ref(invoice.connection, ResourceType.INVOICE, invoice.id),
                                  invoice)
    return [
        i for i in invoices
        if (scope is None or scope.owns(i))
        and (not f.statuses or i.status in f.statuses)
        and (f.overdue is None or is_overdue(i) == f.overdue)
        and matches_text(f.search, (i.number, i.id))
    ]


def is_overdue(invoice: InvoiceRecord) -> bool:
    return (invoice.status is InvoiceStatus.OPEN and invoice.due_date is not None
            and invoice.due_date < datetime.now(UTC))


async def list_zones(ctx: Context, f: DnsZoneFilter, *, with_records: bool) -> list[
    DnsZoneRecord
]:
    providers = [p for p in ctx.gateway.of_family(DnsProvider) if f.admits(p)]
    zones = await gather_lists(ctx, providers, lambda p: p.list_zones(with_records=with_records))
    if with_records:
        for zone in zones:
            ctx.loaders.zone.prime(Ref(zone.connection, ResourceType.DNS_ZONE, zone.id), zone)
    scope = await customer_scope(ctx, f.customer_ref)
    return [
        z for z in zones
        if (scope is None or scope.owns(z))
        and (not f.statuses or z.status in f.statuses) and matches_text(f.search, (z.name,))
    ]


# -- lookups ----------------------------------------------------------------------------------
async def get_server(ctx: Context, ref: Ref) -> ServerRecord:
    return await get(ctx, ref)  # type: ignore[return-value]


async def get(ctx: Context, ref: Ref) -> Record:
    """Any resource by its Ref; NotFoundError when the upstream does not have it, and also
    when a customer-bound viewer does not own it (so ids of others reveal nothing)."""
    if ref.type is ResourceType.BACKUP:
        return await get_backup(ctx, ref)
    record = await _load(ctx, ref)
    await ensure_visible(ctx, record)
    return record


async def ensure_visible(ctx: Context, record: Record) -> None:
    scope = await customer_scope(ctx, None)
    if scope is None:
        return
    visible = (await _owns_backup(ctx, scope, record) if isinstance(record, BackupRecord)
               else scope.owns(record))
    if not visible:
        raise NotFoundError(f"{type(record).__name__.removesuffix('Record')} not found")


async def operation_visible(ctx: Context, row: OperationRow) -> bool:
    """An operation is visible to whoever may see its target server (every operation acts on
    a server): a customer-bound key sees only its own customer's operations."""
    if ctx.viewer.customer_ref is None:
        return True
    try:
        await get(ctx, Ref(row.connection, ResourceType.SERVER, row.target_id))
    except (NotFoundError, ProviderError):
        return False
    return True


async def _owns_backup(ctx: Context, scope: CustomerScope, backup: BackupRecord) -> bool:
    server = await ctx.loaders.server.load(
        Ref(backup.connection, ResourceType.SERVER, backup.server_id))
    return server is not None and scope.owns(server)


async def _load(ctx: Context, ref: Ref) -> Record:
    by_type: dict[ResourceType, DataLoader[Ref, Any]] = {  # Any: one Record type per loader
        ResourceType.SERVER: ctx.loaders.server,
        ResourceType.NODE: ctx.loaders.node,
        ResourceType.ACCOUNT: ctx.loaders.account,
        ResourceType.INVOICE: ctx.loaders.invoice,
        ResourceType.DNS_ZONE: ctx.loaders.zone,
    }
    loader = by_type[ref.type]
    if ref.connection not in ctx.gateway.providers:
        raise NotFoundError(f"{ref.type.value} not found")
    found: Record | None = await loader.load(ref)
    if found is None:
        raise NotFoundError(f"{ref.type.value} not found")
    return found


async def nameserver_check(ctx: Context, zone: DnsZoneRecord) -> NameserverCheck:
    """Seed 004's verification that a domain points at the platform's nameservers."""
    provider = ctx.gateway.providers.get(zone.connection)
    if not isinstance(provider, DnsProvider) or not provider.supports(
            Capability.DNS_NAMESERVER_CHECK):
        raise NotSupported("this DNS provider has no nameserver check", provider=zone.connection)
    return await provider.verify_nameservers(zone.name)

"""The root Query: list connections with filters, lookups by global ID, providers, viewer."""

from __future__ import annotations

from typing import Annotated

import strawberry

from panelql.application import activity, auth, ids, placement, prefetch, queries
from panelql.application.filters import sort_key
from panelql.domain.records import (
    AccountRecord,
    BackupRecord,
    DnsZoneRecord,
    InvoiceRecord,
    NodeRecord,
    ResourceType,
    ServerRecord,
)
from panelql.schema.automation import AutomationQuery
from panelql.schema.catalogue_query import CatalogueQuery
from panelql.schema.customers import CustomerQuery
from panelql.schema.inputs import (
    AccountFilterInput,
    BackupFilterInput,
    DnsZoneFilterInput,
    InvoiceFilterInput,
    NodeFilterInput,
    ServerFilterInput,
)
from panelql.schema.keys import KeyQuery
from panelql.schema.relay import Connection, to_connection
from panelql.schema.types.billing import Invoice
from panelql.schema.types.common import Info, connection_of, page_of, selected_on_nodes
from panelql.schema.types.compute import Account, Backup, Node, Server
from panelql.schema.types.dns import DnsZone
from panelql.schema.types.operation import AuditEntry, Operation
from panelql.schema.types.provider import Provider

Resource = Annotated[
    Server | Node | Account | Backup | Invoice | DnsZone,
    strawberry.union("Resource", description="Any object a PanelQL ID can name."),
]

First = Annotated[int | None, strawberry.argument(description="Page size (default 50).")]
After = Annotated[str | None, strawberry.argument(description="Cursor from pageInfo.endCursor.")]


def wrap(record: queries.Record) -> Resource:
    if isinstance(record, ServerRecord):
        return Server(r=record)
    if isinstance(record, NodeRecord):
        return Node(r=record)
    if isinstance(record, AccountRecord):
        return Account(r=record)
    if isinstance(record, BackupRecord):
        return Backup(r=record)
    if isinstance(record, InvoiceRecord):
        return Invoice(r=record)
    assert isinstance(record, DnsZoneRecord)
    return DnsZone(r=record)


@strawberry.type
class Viewer:
    name: str
    scopes: list[str]
    customer_ref: str | None


@strawberry.type
class PlacementCandidate:
    node: Node
    load: float = strawberry.field(description="Share of capacity already given away (0..1).")


@strawberry.type
class Query(CustomerQuery, KeyQuery, AutomationQuery, CatalogueQuery):
    @strawberry.field(description="Servers of every compute connection.")
    async def servers(self, info: Info, first: First = None, after: After = None,
                      filter: ServerFilterInput | None = None) -> Connection[Server]:
        f = (filter or ServerFilterInput()).to_filter()
        items = await queries.list_servers(info.context, f)
        page = page_of(info, items, lambda r: sort_key(r.connection, r.id), first, after)
        await prefetch.server_relations(info.context, [r for _, r in page.items],
                                        selected_on_nodes(info))
        return to_connection(page, lambda r: Server(r=r))

    @strawberry.field
    async def nodes(self, info: Info, first: First = None, after: After = None,
                    filter: NodeFilterInput | None = None) -> Connection[Node]:
        items = await queries.list_nodes(info.context, (filter or NodeFilterInput()).to_filter())
        return connection_of(info, items, lambda r: Node(r=r), first, after)

    @strawberry.field
    async def accounts(self, info: Info, first: First = None, after: After = None,
                       filter: AccountFilterInput | None = None) -> Connection[Account]:
        f = (filter or AccountFilterInput()).to_filter()
        items = await queries.list_accounts(info.context, f)
        return connection_of(info, items, lambda r: Account(r=r), first, after)

    @strawberry.field
    async def backups(self, info: Info, first: First = None, after: After = None,
                      filter: BackupFilterInput | None = None) -> Connection[Backup]:
        f = (filter or BackupFilterInput()).to_filter()
        items = await queries.list_backups(info.context, f)
        return connection_of(info, items, lambda r: Backup(r=r), first, after)

    @strawberry.field
    async def invoices(self, info: Info, first: First = None, after: After = None,
                       filter: InvoiceFilterInput | None = None) -> Connection[Invoice]:
        f = (filter or InvoiceFilterInput()).to_filter()
        items = await queries.list_invoices(info.context, f)
        return connection_of(info, items, lambda r: Invoice(r=r), first, after)

    @strawberry.field
    async def dns_zones(self, info: Info, first: First = None, after: After = None,
                        filter: DnsZoneFilterInput | None = None) -> Connection[DnsZone]:
        f = (filter or DnsZoneFilterInput()).to_filter()
        items = await queries.list_zones(info.context, f, with_records=False)
        return connection_of(info, items, lambda r: DnsZone(r=r), first, after)

    @strawberry.field
    async def server(self, info: Info, id: strawberry.ID) -> Server:
        return Server(r=await queries.get_server(info.context, ids.decode(id, ResourceType.SERVER)))

    @strawberry.field
    async def node(self, info: Info, id: strawberry.ID) -> Node:
        return await _typed(info, id, ResourceType.NODE)  # type: ignore[return-value]

    @strawberry.field
    async def account(self, info: Info, id: strawberry.ID) -> Account:
        return await _typed(info, id, ResourceType.ACCOUNT)  # type: ignore[return-value]

    @strawberry.field
    async def backup(self, info: Info, id: strawberry.ID) -> Backup:
        return await _typed(info, id, ResourceType.BACKUP)  # type: ignore[return-value]

    @strawberry.field
    async def invoice(self, info: Info, id: strawberry.ID) -> Invoice:
        return await _typed(info, id, ResourceType.INVOICE)  # type: ignore[return-value]

    @strawberry.field
    async def dns_zone(self, info: Info, id: strawberry.ID) -> DnsZone:
        return await _typed(info, id, ResourceType.DNS_ZONE)  # type: ignore[return-value]

    @strawberry.field(description="Any object by its global ID.")
    async def resource(self, info: Info, id: strawberry.ID) -> Resource:
        ref = ids.decode(id)
        auth.check_read(info.context.viewer, ref.type)
        return wrap(await queries.get(info.context, ref))

    @strawberry.field(description="Configured provider connections.")
    def providers(self, info: Info) -> list[Provider]:
        return [Provider(_adapter=p) for p in info.context.gateway.providers.values()]

    @strawberry.field(description="Progress of long upstream work started by a mutation.")
    async def operation(self, info: Info, id: strawberry.ID) -> Operation:
        return Operation(row=await activity.operation(info.context, str(id)))

    @strawberry.field(description="Nodes that can take a new server, least loaded first.")
    async def placement_candidates(
            self, info: Info, memory_mb: int | None = None, cpu_cores: float | None = None,
            disk_mb: int | None = None, region: str | None = None,
            provider: list[str] | None = None, first: int = 10) -> list[PlacementCandidate]:
        request = placement.PlacementRequest(memory_mb=memory_mb, cpu_cores=cpu_cores,
                                             disk_mb=disk_mb, region=region, providers=provider)
        found = await placement.candidates(info.context, request)
        return [PlacementCandidate(node=Node(r=c.node), load=c.load) for c in found[:first]]

    @strawberry.field(description="Every mutation, newest first (inputs with secrets redacted).")
    async def audit_log(self, info: Info, action: str | None = None, target: str | None = None,
                        actor: str | None = None, outcome: str | None = None,
                        first: int = 100, before: strawberry.ID | None = None
                        ) -> list[AuditEntry]:
        rows = await activity.audit_entries(info.context, action=action, target=target,
                                            actor=actor, outcome=outcome, first=first,
                                            before=before)
        return [AuditEntry(row=r) for r in rows]

    @strawberry.field(description="Who the gateway thinks is asking.")
    def viewer(self, info: Info) -> Viewer:
        v = info.context.viewer
        return Viewer(name=v.name, scopes=sorted(v.scopes), customer_ref=v.customer_ref)


async def _typed(info: Info, id: strawberry.ID, kind: ResourceType) -> Resource:
    return wrap(await queries.get(info.context, ids.decode(id, kind)))

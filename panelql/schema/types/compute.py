"""Server, Node, Backup and Account: the compute and hosting families' types.

Account lives here too because Servers point at their owner and Accounts list their servers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Optional

import strawberry

from panelql.application import queries
from panelql.application.context import Context
from panelql.application.filters import ServerFilter
from panelql.domain.records import (
    AccountRecord,
    BackupRecord,
    LiveState,
    NodeRecord,
    Ref,
    ResourceType,
    ServerRecord,
)
from panelql.domain.records import Resources as ResourcesRecord
from panelql.domain.records import Usage as UsageRecord
from panelql.domain.status import ServerStatus as ServerStatusValue
from panelql.schema.enums import AccountStatus, BackupStatus, NodeStatus, ProviderKind, ServerStatus
from panelql.schema.relay import Connection
from panelql.schema.types.common import Info, connection_of, global_id, related, then
from panelql.schema.types.provider import Provider, provider_by_name
from panelql.schema.types.sites import Site


@strawberry.type
class Resources:
    memory_mb: int | None
    cpu_cores: float | None
    disk_mb: int | None

    @staticmethod
    def of(r: ResourcesRecord) -> Resources:
        return Resources(memory_mb=r.memory_mb, cpu_cores=r.cpu_cores, disk_mb=r.disk_mb)


@strawberry.type(description="What the plan or package allows, where the panel reports it; "
                             "null where unlimited or unknown.")
class UsageLimits:
    memory_mb: float | None
    disk_mb: float | None
    bandwidth_mb: float | None = strawberry.field(description="Per billing period.")


@strawberry.type
class Usage:
    memory_mb: float | None
    cpu_percent: float | None
    disk_mb: float | None
    uptime_seconds: int | None
    bandwidth_mb: float | None = strawberry.field(
        description="Traffic counted this billing period, where the panel counts it "
                    "(DirectAdmin).")
    network_in_bytes: float | None = strawberry.field(
        description="Interface counters since the server started (Proxmox, Pterodactyl).")
    network_out_bytes: float | None
    player_count: int | None = strawberry.field(
        description="Players online, on game servers whose panel reports it (Catalyst).")
    limits: UsageLimits | None

    @staticmethod
    def of(u: UsageRecord | None) -> Usage | None:
        if u is None:
            return None
        lim = u.limits
        return Usage(memory_mb=u.memory_mb, cpu_percent=u.cpu_percent, disk_mb=u.disk_mb,
                     uptime_seconds=u.uptime_seconds, bandwidth_mb=u.bandwidth_mb,
                     network_in_bytes=u.network_in_bytes, network_out_bytes=u.network_out_bytes,
                     player_count=u.player_count,
                     limits=UsageLimits(memory_mb=lim.memory_mb, disk_mb=lim.disk_mb,
                                        bandwidth_mb=lim.bandwidth_mb) if lim else None)


@strawberry.type
class AccountSlots:
    capacity: int
    used: int
    available: int


@strawberry.type
class Server:
    """Fields that are plain data are plain attributes, filled when the object is made: graphql-
    core reads them with a getattr instead of calling a resolver per field and server."""

    r: strawberry.Private[ServerRecord]
    id: strawberry.ID
    name: str

    @strawberry.field
    def kind(self, info: Info) -> ProviderKind:
        return ProviderKind(info.context.gateway.provider(self.r.connection).kind)

    @strawberry.field(description="Normalised status: lifecycle > suspended > power > unknown.",
                      graphql_type=ServerStatus)
    def status(self, info: Info) -> Any:
        return server_status(self, info.context)

    @strawberry.field(description="The upstream's own status value, unmapped.",
                      graphql_type=str | None)
    def raw_status(self, info: Info) -> Any:
        return server_raw_status(self, info.context)

    suspended: bool
    suspension_reason: str | None

    @strawberry.field
    def provider(self, info: Info) -> Provider:
        return provider_by_name(info, self.r.connection)

    @strawberry.field(graphql_type=Optional["Node"])
    def node(self, info: Info) -> Any:
        return server_node(self, info.context)

    @strawberry.field(graphql_type=Optional["Account"])
    def owner(self, info: Info) -> Any:
        return server_owner(self, info.context)

    @strawberry.field
    def resources(self) -> Resources:
        return Resources.of(self.r.resources)

    @strawberry.field(graphql_type=Usage | None)
    def usage(self, info: Info) -> Any:
        return server_usage(self, info.context)

    addresses: list[str]

    @strawberry.field(description="Custom domains, proxy and plan quotas of a site backend "
                                  "(ProxmoxWP); null for other kinds.")
    def site(self) -> Site | None:
        return Site.of(self.r.site)

    @strawberry.field(graphql_type=Connection["Backup"])
    def backups(self, info: Info, first: int | None = None, after: str | None = None) -> Any:
        return then(queries.backups_soon(info.context, self.r),
                    lambda items: connection_of(info, items, Backup, first, after))

    @strawberry.field(description="Panel users with access to this server, read back from "
                                  "the panel (Catalyst lists the owner's own entry too); null "
                                  "where the kind has no per-server access.")
    async def access(self, info: Info) -> list[ServerAccessGrant] | None:
        grants = await queries.server_access(info.context, self.r)
        if grants is None:
            return None
        return [ServerAccessGrant(
            account=global_id(ResourceType.ACCOUNT, self.r.connection, g.account_id),
            username=g.username, permissions=list(g.permissions)) for g in grants]

    created_at: datetime | None
    external_ref: str | None = strawberry.field(
        description="The upstream's stable reference (uuid, external id).")
    upstream_id: str = strawberry.field(description="The id the upstream panel itself uses.")

    def __init__(self, r: ServerRecord) -> None:
        self.r = r
        self.id = global_id(ResourceType.SERVER, r.connection, r.id)
        self.name = r.name
        self.suspended = r.suspended
        self.suspension_reason = r.suspension_reason
        self.addresses = r.addresses
        self.created_at = r.created_at
        self.external_ref = r.external_ref
        self.upstream_id = r.id

    @staticmethod
    def of(record: ServerRecord | None) -> Server | None:
        return None if record is None else Server(record)


# The field functions below take the request's context, not strawberry's Info, so that
# schema/lean_fields.py can hand them to graphql-core directly (CONTEXT_RESOLVERS).
def server_status(server: Server, ctx: Context) -> Any:
    status = server.r.status
    if status is not None:  # from the list call: server_state_soon would answer it as is
        return status
    return then(queries.server_state_soon(ctx, server.r), _status)


def server_raw_status(server: Server, ctx: Context) -> Any:
    return then(queries.server_state_soon(ctx, server.r), _raw_status)


def server_usage(server: Server, ctx: Context) -> Any:
    return then(queries.server_state_soon(ctx, server.r), _usage)


def server_node(server: Server, ctx: Context) -> Any:
    r = server.r
    if r.node_id is None:
        return None
    return related(ctx, ("node", r.connection, r.node_id),
                   lambda: queries.node_soon(ctx, r), Node.of)


def server_owner(server: Server, ctx: Context) -> Any:
    r = server.r
    if r.owner_id is None:
        return None
    return related(ctx, ("owner", r.connection, r.owner_id),
                   lambda: queries.owner_soon(ctx, r), Account.of)


CONTEXT_RESOLVERS: dict[tuple[str, str], Callable[[Any, Context], Any]] = {
    ("Server", "status"): server_status,
    ("Server", "rawStatus"): server_raw_status,
    ("Server", "usage"): server_usage,
    ("Server", "node"): server_node,
    ("Server", "owner"): server_owner,
}


def _status(state: LiveState) -> ServerStatusValue:
    return state.status


def _raw_status(state: LiveState) -> str | None:
    return state.raw_status


def _usage(state: LiveState) -> Usage | None:
    return Usage.of(state.usage)


@strawberry.type(description="One panel user's access to a server.")
class ServerAccessGrant:
    account: strawberry.ID
    username: str | None
    permissions: list[str] = strawberry.field(
        description="As the panel names them (e.g. Catalyst server.read, Pterodactyl "
                    "control.console).")


@strawberry.type
class Node:
    r: strawberry.Private[NodeRecord]
    id: strawberry.ID
    name: str

    @strawberry.field
    def provider(self, info: Info) -> Provider:
        return provider_by_name(info, self.r.connection)

    status: NodeStatus  # type: ignore[valid-type]
    raw_status: str | None
    region: str | None = strawberry.field(
        description="The region's name as people use it (Catalyst: the location's name); "
                    "placement matches on it.")

    def __init__(self, r: NodeRecord) -> None:
        self.r = r
        self.id = global_id(ResourceType.NODE, r.connection, r.id)
        self.name = r.name
        self.status = r.status
        self.raw_status = r.raw_status
        self.region = r.region

    @staticmethod
    def of(record: NodeRecord | None) -> Node | None:
        return None if record is None else Node(record)

    @strawberry.field(description="The panel's own id of the region, when it has one "
                                  "(Catalyst: locationId).")
    def region_id(self) -> str | None:
        return self.r.region_id

    @strawberry.field(description="What the node may hold, overallocation included.")
    def capacity(self) -> Resources:
        return Resources.of(self.r.capacity)

    @strawberry.field(description="What its servers have been given.")
    def allocated(self) -> Resources:
        return Resources.of(self.r.allocated)

    @strawberry.field(description="capacity - allocated; null where the panel has no capacity.")
    def available(self) -> Resources:
        cap, used = self.r.capacity, self.r.allocated

        def left(total: float | None, taken: float | None) -> float | None:
            return None if total is None else max(0, total - (taken or 0))

        memory, disk = left(cap.memory_mb, used.memory_mb), left(cap.disk_mb, used.disk_mb)
        return Resources(memory_mb=None if memory is None else int(memory),
                         cpu_cores=left(cap.cpu_cores, used.cpu_cores),
                         disk_mb=None if disk is None else int(disk))

    @strawberry.field(description="Web-hosting servers count capacity in accounts.")
    def account_slots(self) -> AccountSlots | None:
        slots = self.r.account_slots
        if slots is None:
            return None
        return AccountSlots(capacity=slots.capacity, used=slots.used,
                            available=max(0, slots.capacity - slots.used))

    @strawberry.field
    async def servers(self, info: Info, first: int | None = None,
                      after: str | None = None) -> Connection[Server]:
        ref = Ref(self.r.connection, ResourceType.NODE, self.r.id)
        items = await queries.list_servers(info.context, ServerFilter(node=ref))
        return connection_of(info, items, lambda s: Server(r=s), first, after)


@strawberry.type
class Backup:
    r: strawberry.Private[BackupRecord]
    id: strawberry.ID

    @strawberry.field
    async def server(self, info: Info) -> Server | None:
        record = await info.context.loaders.server.load(
            Ref(self.r.connection, ResourceType.SERVER, self.r.server_id))
        return Server(r=record) if record else None

    name: str
    status: BackupStatus  # type: ignore[valid-type]
    raw_status: str | None
    # Float: backup sizes pass 2^31 bytes, beyond GraphQL's 32-bit Int.
    size_bytes: float | None
    locked: bool
    created_at: datetime | None
    completed_at: datetime | None

    @strawberry.field
    def provider(self, info: Info) -> Provider:
        return provider_by_name(info, self.r.connection)

    def __init__(self, r: BackupRecord) -> None:
        self.r = r
        self.id = global_id(ResourceType.BACKUP, r.connection,
                            queries.backup_ref_id(r.server_id, r.id))
        self.name = r.name
        self.status = r.status
        self.raw_status = r.raw_status
        self.size_bytes = None if r.size_bytes is None else float(r.size_bytes)
        self.locked = r.locked
        self.created_at = r.created_at
        self.completed_at = r.completed_at


@strawberry.type
class Account:
    r: strawberry.Private[AccountRecord]
    id: strawberry.ID

    @strawberry.field
    def provider(self, info: Info) -> Provider:
        return provider_by_name(info, self.r.connection)

    username: str
    email: str | None
    status: AccountStatus  # type: ignore[valid-type]
    raw_status: str | None
    package: str | None
    domains: list[str]

    @strawberry.field
    def usage(self) -> Usage | None:
        return Usage.of(self.r.usage)

    external_ref: str | None
    upstream_id: str

    def __init__(self, r: AccountRecord) -> None:
        self.r = r
        self.id = global_id(ResourceType.ACCOUNT, r.connection, r.id)
        self.username = r.username
        self.email = r.email
        self.status = r.status
        self.raw_status = r.raw_status
        self.package = r.package
        self.domains = r.domains
        self.external_ref = r.external_ref
        self.upstream_id = r.id

    @staticmethod
    def of(record: AccountRecord | None) -> Account | None:
        return None if record is None else Account(record)

    @strawberry.field
    async def servers(self, info: Info, first: int | None = None,
                      after: str | None = None) -> Connection[Server]:
        ref = Ref(self.r.connection, ResourceType.ACCOUNT, self.r.id)
        items = await queries.list_servers(info.context, ServerFilter(owner=ref))
        return connection_of(info, items, lambda s: Server(r=s), first, after)

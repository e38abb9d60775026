"""Server, Node, Backup and Account: the compute and hosting families' types.

Account lives here too because Servers point at their owner and Accounts list their servers.
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from panelql.application import queries
from panelql.application.filters import ServerFilter
from panelql.domain.records import (
    AccountRecord,
    BackupRecord,
    NodeRecord,
    Ref,
    ResourceType,
    ServerRecord,
)
from panelql.domain.records import Resources as ResourcesRecord
from panelql.domain.records import Usage as UsageRecord
from panelql.schema.enums import AccountStatus, BackupStatus, NodeStatus, ProviderKind, ServerStatus
from panelql.schema.relay import Connection
from panelql.schema.types.common import Info, connection_of, global_id
from panelql.schema.types.provider import Provider, provider_by_name


@strawberry.type
class Resources:
    memory_mb: int | None
    cpu_cores: float | None
    disk_mb: int | None

    @staticmethod
    def of(r: ResourcesRecord) -> Resources:
        return Resources(memory_mb=r.memory_mb, cpu_cores=r.cpu_cores, disk_mb=r.disk_mb)


@strawberry.type
class Usage:
    memory_mb: float | None
    cpu_percent: float | None
    disk_mb: float | None
    uptime_seconds: int | None

    @staticmethod
    def of(u: UsageRecord | None) -> Usage | None:
        if u is None:
            return None
        return Usage(memory_mb=u.memory_mb, cpu_percent=u.cpu_percent, disk_mb=u.disk_mb,
                     uptime_seconds=u.uptime_seconds)


@strawberry.type
class AccountSlots:
    capacity: int
    used: int
    available: int


@strawberry.type
class Server:
    r: strawberry.Private[ServerRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return global_id(ResourceType.SERVER, self.r.connection, self.r.id)

    @strawberry.field
    def name(self) -> str:
        return self.r.name

    @strawberry.field
    def kind(self, info: Info) -> ProviderKind:
        return ProviderKind(info.context.gateway.provider(self.r.connection).kind)

    @strawberry.field(description="Normalised status: lifecycle > suspended > power > unknown.")
    async def status(self, info: Info) -> ServerStatus:  # type: ignore[valid-type]
        return (await queries.server_state(info.context, self.r)).status

    @strawberry.field(description="The upstream's own status value, unmapped.")
    async def raw_status(self, info: Info) -> str | None:
        return (await queries.server_state(info.context, self.r)).raw_status

    @strawberry.field
    def suspended(self) -> bool:
        return self.r.suspended

    @strawberry.field
    def suspension_reason(self) -> str | None:
        return self.r.suspension_reason

    @strawberry.field
    def provider(self, info: Info) -> Provider:
        return provider_by_name(info, self.r.connection)

    @strawberry.field
    async def node(self, info: Info) -> Node | None:
        record = await queries.node_of(info.context, self.r)
        return Node(r=record) if record else None

    @strawberry.field
    async def owner(self, info: Info) -> Account | None:
        record = await queries.owner_of(info.context, self.r)
        return Account(r=record) if record else None

    @strawberry.field
    def resources(self) -> Resources:
        return Resources.of(self.r.resources)

    @strawberry.field
    async def usage(self, info: Info) -> Usage | None:
        return Usage.of((await queries.server_state(info.context, self.r)).usage)

    @strawberry.field
    def addresses(self) -> list[str]:
        return self.r.addresses

    @strawberry.field
    async def backups(self, info: Info, first: int | None = None,
                      after: str | None = None) -> Connection[Backup]:
        items = await queries.server_backups(info.context, self.r)
        return connection_of(info, items, lambda b: Backup(r=b), first, after)

    @strawberry.field
    def created_at(self) -> datetime | None:
        return self.r.created_at

    @strawberry.field(description="The upstream's stable reference (uuid, external id).")
    def external_ref(self) -> str | None:
        return self.r.external_ref

    @strawberry.field(description="The id the upstream panel itself uses.")
    def upstream_id(self) -> str:
        return self.r.id


@strawberry.type
class Node:
    r: strawberry.Private[NodeRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return global_id(ResourceType.NODE, self.r.connection, self.r.id)

    @strawberry.field
    def name(self) -> str:
        return self.r.name

    @strawberry.field
    def provider(self, info: Info) -> Provider:
        return provider_by_name(info, self.r.connection)

    @strawberry.field
    def status(self) -> NodeStatus:  # type: ignore[valid-type]
        return self.r.status

    @strawberry.field
    def raw_status(self) -> str | None:
        return self.r.raw_status

    @strawberry.field
    def region(self) -> str | None:
        return self.r.region

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

    @strawberry.field
    def id(self) -> strawberry.ID:
        return global_id(ResourceType.BACKUP, self.r.connection,
                         queries.backup_ref_id(self.r.server_id, self.r.id))

    @strawberry.field
    async def server(self, info: Info) -> Server | None:
        record = await info.context.loaders.server.load(
            Ref(self.r.connection, ResourceType.SERVER, self.r.server_id))
        return Server(r=record) if record else None

    @strawberry.field
    def name(self) -> str:
        return self.r.name

    @strawberry.field
    def status(self) -> BackupStatus:  # type: ignore[valid-type]
        return self.r.status

    @strawberry.field
    def raw_status(self) -> str | None:
        return self.r.raw_status

    @strawberry.field
    def size_bytes(self) -> float | None:
        # Float: backup sizes pass 2^31 bytes, beyond GraphQL's 32-bit Int.
        return None if self.r.size_bytes is None else float(self.r.size_bytes)

    @strawberry.field
    def locked(self) -> bool:
        return self.r.locked

    @strawberry.field
    def created_at(self) -> datetime | None:
        return self.r.created_at

    @strawberry.field
    def completed_at(self) -> datetime | None:
        return self.r.completed_at

    @strawberry.field
    def provider(self, info: Info) -> Provider:
        return provider_by_name(info, self.r.connection)


@strawberry.type
class Account:
    r: strawberry.Private[AccountRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return global_id(ResourceType.ACCOUNT, self.r.connection, self.r.id)

    @strawberry.field
    def provider(self, info: Info) -> Provider:
        return provider_by_name(info, self.r.connection)

    @strawberry.field
    def username(self) -> str:
        return self.r.username

    @strawberry.field
    def email(self) -> str | None:
        return self.r.email

    @strawberry.field
    def status(self) -> AccountStatus:  # type: ignore[valid-type]
        return self.r.status

    @strawberry.field
    def raw_status(self) -> str | None:
        return self.r.raw_status

    @strawberry.field
    def package(self) -> str | None:
        return self.r.package

    @strawberry.field
    def domains(self) -> list[str]:
        return self.r.domains

    @strawberry.field
    def usage(self) -> Usage | None:
        return Usage.of(self.r.usage)

    @strawberry.field
    def external_ref(self) -> str | None:
        return self.r.external_ref

    @strawberry.field
    def upstream_id(self) -> str:
        return self.r.id

    @strawberry.field
    async def servers(self, info: Info, first: int | None = None,
                      after: str | None = None) -> Connection[Server]:
        ref = Ref(self.r.connection, ResourceType.ACCOUNT, self.r.id)
        items = await queries.list_servers(info.context, ServerFilter(owner=ref))
        return connection_of(info, items, lambda s: Server(r=s), first, after)

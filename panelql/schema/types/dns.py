"""DnsZone and DnsRecord: the DNS family's types."""

from __future__ import annotations

import strawberry

from panelql.application import queries
from panelql.domain.records import DnsResourceRecord, DnsZoneRecord, Ref, ResourceType
from panelql.schema.enums import DnsZoneStatus
from panelql.schema.types.common import Info, global_id
from panelql.schema.types.provider import Provider, provider_by_name


@strawberry.type
class DnsRecord:
    id: strawberry.ID
    type: str
    name: str
    content: str
    ttl: int | None
    priority: int | None
    disabled: bool = strawberry.field(description="Kept in the zone but not served (PowerDNS).")
    txt_strings: list[str] | None = strawberry.field(
        description="TXT: the character-strings as the provider holds them (content is their "
        "concatenation); null where the provider keeps one string per record.")

    @staticmethod
    def of(r: DnsResourceRecord) -> DnsRecord:
        return DnsRecord(id=strawberry.ID(r.id), type=r.type, name=r.name, content=r.content,
                         ttl=r.ttl, priority=r.priority, disabled=r.disabled,
                         txt_strings=r.txt_strings)


@strawberry.type
class NameserverCheck:
    expected: list[str]
    found: list[str]
    missing: list[str]
    ok: bool


@strawberry.type
class DnsZone:
    r: strawberry.Private[DnsZoneRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return global_id(ResourceType.DNS_ZONE, self.r.connection, self.r.id)

    @strawberry.field
    def provider(self, info: Info) -> Provider:
        return provider_by_name(info, self.r.connection)

    @strawberry.field
    def name(self) -> str:
        return self.r.name

    @strawberry.field
    def status(self) -> DnsZoneStatus:  # type: ignore[valid-type]
        return self.r.status

    @strawberry.field
    def raw_status(self) -> str | None:
        return self.r.raw_status

    @strawberry.field
    def nameservers(self) -> list[str]:
        return self.r.nameservers

    @strawberry.field(description="Is the domain delegated to the platform's nameservers? "
                                  "(ISPConfig; other kinds answer NOT_SUPPORTED.)")
    async def nameserver_check(self, info: Info) -> NameserverCheck:
        check = await queries.nameserver_check(info.context, self.r)
        return NameserverCheck(expected=list(check.expected), found=list(check.found),
                               missing=list(check.missing), ok=check.ok)

    @strawberry.field(description="Loaded with one call per zone where the list lacks them.")
    async def records(self, info: Info) -> list[DnsRecord]:
        records = self.r.records
        if records is None:
            full = await info.context.loaders.zone.load(
                Ref(self.r.connection, ResourceType.DNS_ZONE, self.r.id))
            records = (full.records if full else None) or []
        return [DnsRecord.of(r) for r in records]

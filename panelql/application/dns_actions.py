"""DNS zone and record writes: synchronous upstream calls, audited."""

from __future__ import annotations

from panelql.application import ids, validation
from panelql.application.context import Context
from panelql.application.errors import Forbidden, StateConflict
from panelql.application.execution import ActionResult
from panelql.application.targets import adapter_for, target
from panelql.domain.records import DnsRecordInput, Ref, ResourceType
from panelql.providers.contract import Capability, DnsProvider


async def create_zone(ctx: Context, connection: str, name: str, account_id: str | None,
                      skip_nameserver_check: bool = False) -> ActionResult:
    provider = adapter_for(ctx, connection, DnsProvider, Capability.DNS_ZONE_WRITE)
    validation.hostname(name, "name")
    domain = name.rstrip(".").lower()
    account = ids.decode(account_id, ResourceType.ACCOUNT).id if account_id else None
    if skip_nameserver_check:
        if "admin" not in ctx.viewer.scopes or ctx.viewer.customer_ref is not None:
            raise Forbidden("only an admin key may skip the nameserver check", scope="admin",
                            field="skipNameserverCheck")
    elif provider.supports(Capability.DNS_NAMESERVER_CHECK):
        await _require_delegation(provider, domain)
    zone = await provider.create_zone(domain, account)
    return ActionResult(target=ids.encode(Ref(connection, ResourceType.DNS_ZONE, zone.id)))


async def _require_delegation(provider: DnsProvider, domain: str) -> None:
    """Seed 004: no zone for a domain that does not use the platform's nameservers."""
    check = await provider.verify_nameservers(domain)
    if not check.ok:
        found = ", ".join(check.found) or "none"
        raise StateConflict(
            f"{domain} is not delegated to {', '.join(check.expected)} (its nameservers: "
            f"{found}); point the domain at them, or an admin can pass skipNameserverCheck",
            reason="NAMESERVERS_MISMATCH", field="name", expected=list(check.expected),
            found=list(check.found), missing=list(check.missing))


async def delete_zone(ctx: Context, zone_id: str) -> ActionResult:
    ref, provider = await target(ctx, zone_id, ResourceType.DNS_ZONE, DnsProvider,
                           Capability.DNS_ZONE_WRITE)
    await provider.delete_zone(ref.id)
    return ActionResult(target=zone_id, data={"deleted": zone_id})


async def upsert_record(ctx: Context, zone_id: str, record: DnsRecordInput) -> ActionResult:
    ref, provider = await target(ctx, zone_id, ResourceType.DNS_ZONE, DnsProvider,
                           Capability.DNS_RECORD_WRITE)
    # Aliases first (ISPConfig's PROXYSRV), so what is validated is what will be stored.
    record.content = provider.resolve_content(record.type.strip().upper(), record.content)
    record.type = validation.dns_record(record.type, record.name, record.content, record.ttl,
                                        record.priority, provider=provider.kind,
                                        txt_strings=record.txt_strings)
    if record.txt_strings is not None:
        record.content = "".join(record.txt_strings)
    async with ctx.gateway.write_locks.hold(zone_lock(ref.connection, ref.id)):
        saved = await provider.upsert_record(ref.id, record)
    return ActionResult(target=zone_id, data={"record": saved.id})


def zone_lock(connection: str, zone: str) -> str:
    """Record writes to one zone queue behind each other, in this process and across replicas:
    an rrset-wide upstream (PowerDNS REPLACE) would otherwise lose concurrent additions."""
    return f"dns:{connection}:{zone.rstrip('.').lower()}"


async def delete_record(ctx: Context, zone_id: str, record_id: str) -> ActionResult:
    ref, provider = await target(ctx, zone_id, ResourceType.DNS_ZONE, DnsProvider,
                           Capability.DNS_RECORD_WRITE)
    async with ctx.gateway.write_locks.hold(zone_lock(ref.connection, ref.id)):
        await provider.delete_record(ref.id, record_id)
    return ActionResult(target=zone_id, data={"deleted": record_id})

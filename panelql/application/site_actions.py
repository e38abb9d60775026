"""Site backend actions (their customer area): custom domains, the proxy, plan changes.

Each reads the site first, so a request whose goal already holds changes nothing upstream
(``changed: false``) and a full quota is refused by the gateway with CONFLICT and
``reason: QUOTA_EXCEEDED`` before the backend is asked. Changes to one site's domains or proxy
hold that site's write lock: two writers cannot both pass the quota check, and two proxy
toggles cannot cancel each other out.
"""

from __future__ import annotations

from panelql.application import validation
from panelql.application.context import Context
from panelql.application.errors import BadUserInput, NotSupported, StateConflict
from panelql.application.execution import ActionResult
from panelql.application.queries import get
from panelql.application.targets import target
from panelql.domain.records import Ref, ResourceType, ServerRecord
from panelql.domain.sites import SiteInfo
from panelql.domain.status import ServerStatus
from panelql.providers.contract import Capability, ComputeProvider
from panelql.providers.sites import SiteHost


async def _site(ctx: Context, server_id: str, capability: Capability
                ) -> tuple[Ref, SiteHost, ServerRecord, SiteInfo]:
    ref, provider = await target(ctx, server_id, ResourceType.SERVER, ComputeProvider,
                                 capability)
    record = await get(ctx, ref)
    assert isinstance(record, ServerRecord)
    if not isinstance(provider, SiteHost) or record.site is None:
        raise NotSupported(f"{provider.kind} servers are not sites", provider=provider.name)
    return ref, provider, record, record.site


def _lock(ref: Ref) -> str:
    return f"site:{ref.connection}:{ref.id}"


async def add_domain(ctx: Context, server_id: str, domain: str) -> ActionResult:
    domain = validation.hostname(domain.strip().lower().rstrip("."), "domain")
    ref, _, _, _ = await _site(ctx, server_id, Capability.SITE_DOMAINS)
    async with ctx.gateway.write_locks.hold(_lock(ref)):
        ctx.loaders.server.clear(ref)
        _, host, _, site = await _site(ctx, server_id, Capability.SITE_DOMAINS)
        if domain in site.domains:
            return ActionResult(target=server_id, data={"changed": False})
        quota = site.domain_quota
        if quota is not None and quota.exhausted:
            raise StateConflict(f"the site's plan allows {quota.allowed} custom domains and "
                                f"all are in use ({quota})", reason="QUOTA_EXCEEDED",
                                quota=str(quota), field="domain")
        await host.add_domain(ref.id, domain)
    return ActionResult(target=server_id)


async def remove_domain(ctx: Context, server_id: str, domain: str) -> ActionResult:
    domain = domain.strip().lower().rstrip(".")
    ref, _, _, _ = await _site(ctx, server_id, Capability.SITE_DOMAINS)
    async with ctx.gateway.write_locks.hold(_lock(ref)):
        ctx.loaders.server.clear(ref)
        _, host, _, site = await _site(ctx, server_id, Capability.SITE_DOMAINS)
        if domain not in site.domains:  # gone already: the goal holds
            return ActionResult(target=server_id, data={"changed": False})
        await host.remove_domain(ref.id, domain)
    return ActionResult(target=server_id)


async def set_proxy(ctx: Context, server_id: str, enabled: bool) -> ActionResult:
    """The backend only flips the proxy; the gateway flips it when it is not as asked."""
    ref, _, _, _ = await _site(ctx, server_id, Capability.SITE_PROXY)
    async with ctx.gateway.write_locks.hold(_lock(ref)):
        ctx.loaders.server.clear(ref)
        _, host, _, site = await _site(ctx, server_id, Capability.SITE_PROXY)
        if site.proxy_enabled is enabled:
            return ActionResult(target=server_id, data={"changed": False, "enabled": enabled})
        now = await host.toggle_proxy(ref.id)
    if now is not enabled:  # someone else flipped it between our read and our write
        raise StateConflict("the proxy changed meanwhile; read it again and retry",
                            retryable=True)
    return ActionResult(target=server_id, data={"enabled": now})


BUSY = {ServerStatus.INSTALLING, ServerStatus.RESTORING, ServerStatus.DELETING,
        ServerStatus.MIGRATING}


async def change_plan(ctx: Context, server_id: str, plan: str) -> ActionResult:
    plan = plan.strip().lower()
    if not plan:
        raise BadUserInput("plan must not be empty", field="plan")
    ref, host, record, site = await _site(ctx, server_id, Capability.SERVER_PLAN)
    if site.plan == plan:
        return ActionResult(target=server_id, data={"changed": False})
    if record.status in BUSY:
        raise StateConflict(f"cannot change the plan of a server that is "
                            f"{record.status.value if record.status else 'UNKNOWN'}",
                            currentStatus=record.status.value if record.status else None)
    await host.change_plan(ref.id, plan)
    return ActionResult(target=server_id)

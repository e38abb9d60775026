"""Hosting account actions (create, suspend, unsuspend, package, password, delete) and
server access grants. All are synchronous upstream, so no Operation is needed."""

from __future__ import annotations

from collections.abc import Sequence

from panelql.application import account_placement, holds, ids, validation
from panelql.application.context import Context
from panelql.application.errors import BadUserInput, NotFoundError, StateConflict
from panelql.application.execution import ActionResult
from panelql.application.queries import get
from panelql.application.targets import adapter_for, target
from panelql.domain.records import AccountSpec, Ref, ResourceType
from panelql.domain.status import AccountStatus
from panelql.events.model import Source, StatusEvent, Topic
from panelql.providers.contract import Capability, ComputeProvider, HostingProvider
from panelql.providers.errors import NotFound

# The gateway's permission names for server sub-users (sets for View-Only, Basic
# Management and Full Access) plus the few more the panels have in common.
# Each adapter maps them to its panel's names and reports those it has no equivalent for.
SERVER_PERMISSIONS = frozenset({
    "server.view", "server.start", "server.stop", "server.restart", "server.delete",
    "server.read", "console.read", "console.write", "file.read", "file.write", "file.delete",
    "backup.read", "backup.create", "backup.restore", "backup.delete",
    "database.read", "database.write",
})


async def _status(provider: HostingProvider, account_id: str) -> AccountStatus:
    found = (await provider.get_accounts([account_id])).get(account_id)
    if found is None:
        raise NotFoundError("account not found")
    return found.status


async def _publish(ctx: Context, provider: HostingProvider, account_id: str,
                   before: AccountStatus | None) -> None:
    found = (await provider.get_accounts([account_id])).get(account_id)
    after = found.status.value if found else "DELETED"
    if before is None or after != before.value:
        await ctx.gateway.bus.publish(StatusEvent(
            topic=Topic.ACCOUNT, connection=provider.name, resource_id=account_id, status=after,
            previous=before.value if before else None, source=Source.MUTATION))


async def create(ctx: Context, connection: str | None, spec: AccountSpec,
                 kind: str | None = None) -> ActionResult:
    """On ``connection``, or (``connection`` None) on the least-loaded healthy server among
    every connection of ``kind`` (account_placement)."""
    validation.username(spec.username)
    validation.email(spec.email)
    if spec.password is not None:
        validation.password(spec.password)
    if spec.domain is not None:
        validation.hostname(spec.domain, "domain")
    data: dict[str, object] = {}
    if connection is None:
        if kind is None:
            raise BadUserInput("give provider, node or kind", field="provider")
        provider, account, skipped = await account_placement.create_placed(ctx, kind, spec)
        data = {"placedOn": provider.name, **({"skipped": skipped} if skipped else {})}
    else:
        provider = adapter_for(ctx, connection, HostingProvider, Capability.ACCOUNT_CREATE)
        if kind is not None and provider.kind != kind:
            raise BadUserInput(f"{connection} is a {provider.kind} connection, not {kind}",
                               field="kind")
        account = await provider.create_account(spec)
    await _publish(ctx, provider, account.id, None)
    return ActionResult(target=ids.encode(Ref(provider.name, ResourceType.ACCOUNT, account.id)),
                        data=data)


async def suspend(ctx: Context, account_id: str, reason: str | None) -> ActionResult:
    ref, provider = await target(ctx, account_id, ResourceType.ACCOUNT, HostingProvider,
                           Capability.ACCOUNT_SUSPEND)
    reason = validation.reason(reason)
    status = await _status(provider, ref.id)
    if status is AccountStatus.SUSPENDED:  # the goal already holds: a no-op
        await holds.suspended(ctx, ref, provider.kind, reason)  # by hand: payment never lifts
        return ActionResult(target=account_id, data={"reason": reason, "changed": False})
    await provider.suspend_account(ref.id, reason)
    await holds.suspended(ctx, ref, provider.kind, reason)
    await _publish(ctx, provider, ref.id, status)
    return ActionResult(target=account_id, data={"reason": reason})


async def unsuspend(ctx: Context, account_id: str) -> ActionResult:
    ref, provider = await target(ctx, account_id, ResourceType.ACCOUNT, HostingProvider,
                           Capability.ACCOUNT_SUSPEND)
    status = await _status(provider, ref.id)
    await holds.unsuspended(ctx, ref, provider.kind)
    if status is AccountStatus.ACTIVE:  # the goal already holds: succeed, call nothing
        return ActionResult(target=account_id, data={"changed": False})
    if status is not AccountStatus.SUSPENDED:
        raise StateConflict("the account is not suspended", currentStatus=status.value)
    await provider.unsuspend_account(ref.id)
    await _publish(ctx, provider, ref.id, status)
    return ActionResult(target=account_id)


async def change_package(ctx: Context, account_id: str, package: str) -> ActionResult:
    ref, provider = await target(ctx, account_id, ResourceType.ACCOUNT, HostingProvider,
                           Capability.ACCOUNT_PACKAGE)
    package = validation.name(package, "package")
    status = await _status(provider, ref.id)
    if status is AccountStatus.TERMINATED:
        raise StateConflict("the account is terminated", currentStatus=status.value)
    await provider.change_account_package(ref.id, package)
    return ActionResult(target=account_id, data={"package": package})


async def change_password(ctx: Context, account_id: str, password: str) -> ActionResult:
    ref, provider = await target(ctx, account_id, ResourceType.ACCOUNT, HostingProvider,
                           Capability.ACCOUNT_PASSWORD)
    await provider.change_account_password(ref.id, validation.password(password))
    return ActionResult(target=account_id)


async def delete(ctx: Context, account_id: str) -> ActionResult:
    ref, provider = await target(ctx, account_id, ResourceType.ACCOUNT, HostingProvider,
                           Capability.ACCOUNT_DELETE)
    found = (await provider.get_accounts([ref.id])).get(ref.id)
    if found is None:  # already gone: the goal holds
        return ActionResult(target=account_id, data={"deleted": account_id, "changed": False})
    status = found.status
    try:
        await provider.delete_account(ref.id)
    except NotFound:  # removed meanwhile by another writer
        return ActionResult(target=account_id, data={"deleted": account_id, "changed": False})
    await _publish(ctx, provider, ref.id, status)
    return ActionResult(target=account_id, data={"deleted": account_id})


def _permissions(values: Sequence[str]) -> list[str]:
    unknown = sorted(set(values) - SERVER_PERMISSIONS)
    if unknown or not values:
        raise BadUserInput(
            f"unknown permissions {', '.join(unknown)}" if unknown else "give permissions",
            field="permissions", allowed=sorted(SERVER_PERMISSIONS))
    return list(dict.fromkeys(values))


async def _own_account(ctx: Context, account_id: str) -> Ref:
    """The ``account`` argument of grant/revoke: a customer-bound key may name only its own
    customer's accounts; any other, existing or not, is the same NOT_FOUND (no enumeration)."""
    account = ids.decode(account_id, ResourceType.ACCOUNT)
    if ctx.viewer.customer_ref is not None:
        await get(ctx, account)
    return account


async def grant_access(ctx: Context, server_id: str, account_id: str,
                       permissions: Sequence[str]) -> ActionResult:
    ref, provider = await target(ctx, server_id, ResourceType.SERVER, ComputeProvider,
                           Capability.SERVER_ACCESS)
    account = await _own_account(ctx, account_id)
    if account.connection != ref.connection:
        raise BadUserInput("the account must live on the server's provider", field="account")
    requested = _permissions(permissions)
    grant = await provider.grant_access(ref.id, account.id, requested)
    data: dict[str, object] = {"account": account_id, "permissions": requested}
    if grant is not None:
        data["granted"] = grant.permissions
        if grant.unmapped:
            data["warnings"] = [
                f"{provider.kind} has no equivalent for {name}; not granted"
                for name in grant.unmapped]
    return ActionResult(target=server_id, data=data)


async def revoke_access(ctx: Context, server_id: str, account_id: str) -> ActionResult:
    ref, provider = await target(ctx, server_id, ResourceType.SERVER, ComputeProvider,
                           Capability.SERVER_ACCESS)
    account = await _own_account(ctx, account_id)
    changed = await provider.revoke_access(ref.id, account.id)
    data: dict[str, object] = {"account": account_id}
    if changed is False:  # the user had no access: the goal holds
        data["changed"] = False
    return ActionResult(target=server_id, data=data)

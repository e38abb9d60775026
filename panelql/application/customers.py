"""Linking customer references to resources, and the checks that keep customers apart.

What a reference owns (its scope) is application/customer_scope.py.
"""

from __future__ import annotations

import re

from panelql.application import ids, queries
from panelql.application.context import Context
from panelql.application.customer_scope import (
    BILLING_CUSTOMER,
    LINKABLE,
)
from panelql.application.errors import BadUserInput, GatewayError, StateConflict
from panelql.domain.records import (
    DnsZoneRecord,
    Ref,
    ResourceType,
    ServerRecord,
)
from panelql.domain.state import Link
from panelql.providers.contract import BillingProvider
from panelql.providers.errors import ProviderError


async def links_of(ctx: Context, customer_ref: str) -> list[Link]:
    """What ``customer_ref`` is linked to; a customer-bound key sees its own customer's only."""
    ref = queries.customer_ref(ctx, customer_ref) or customer_ref
    return await ctx.gateway.customer_links.of_customer(ref)


# -- managing links ----------------------------------------------------------------------------
_CUSTOMER_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,127}$")


def valid_customer_ref(value: str) -> str:
    if not _CUSTOMER_REF.match(value):
        raise BadUserInput("customerRef must be 1 to 128 characters like whmcs:42",
                           field="customerRef")
    return value


async def link_target(ctx: Context, resource: str | None, provider: str | None,
                      billing_customer: str | None) -> Link:
    """The link to write, after checking the target exists (or is a billing connection)."""
    if (resource is None) == (billing_customer is None):
        raise BadUserInput("give either resource or billingCustomer", field="resource")
    if billing_customer is not None:
        if provider is None or not isinstance(ctx.gateway.providers.get(provider),
                                              BillingProvider):
            raise BadUserInput("billingCustomer needs the billing provider's name",
                               field="provider")
        return Link("", provider, BILLING_CUSTOMER, billing_customer)
    assert resource is not None
    ref = ids.decode(resource)
    if ref.type.value not in LINKABLE:
        raise BadUserInput("only Accounts, Servers and DnsZones can be linked", field="resource")
    await queries.get(ctx, ref)
    return Link("", ref.connection, ref.type.value, ref.id)


async def ensure_single_owner(ctx: Context, customer_ref: str, target: Link) -> None:
    """Before ``link``: refuse a resource another customer already owns through an account
    (or an account holding another customer's directly linked server or zone)."""
    other = await _owner_elsewhere(ctx, valid_customer_ref(customer_ref), target)
    if other is not None:
        owner, via_account = other
        raise StateConflict(
            f"already owned by customer {owner} through its account" if via_account
            else f"a server or zone of this account is linked to customer {owner}",
            currentStatus="LINKED")


async def link(ctx: Context, customer_ref: str, target: Link) -> bool:
    try:
        _, created = await ctx.gateway.customer_links.link(
            Link(valid_customer_ref(customer_ref), target.connection, target.resource_type,
                 target.resource_id))
    except ValueError as exc:
        raise StateConflict(f"already linked to customer {exc.args[0]}",
                            currentStatus="LINKED") from None
    ctx.scopes.pop(customer_ref, None)
    return created


async def _owner_elsewhere(ctx: Context, customer_ref: str, target: Link
                           ) -> tuple[str, bool] | None:
    """One owner per resource: another customer who already owns ``target`` through an
    account (a server or zone whose account is linked to them), or who owns, by a direct link,
    a server or zone under ``target`` (an account). (customer, through an account) or None."""

    links = ctx.gateway.customer_links
    kind = target.resource_type
    if kind in (ResourceType.SERVER.value, ResourceType.DNS_ZONE.value):
        record = await queries.get(ctx, Ref(target.connection, ResourceType(kind),
                                            target.resource_id))
        account = (record.owner_id if isinstance(record, ServerRecord)
                   else record.account_id if isinstance(record, DnsZoneRecord) else None)
        if account is not None:
            owner = await links.owner_of(target.connection, ResourceType.ACCOUNT.value, account)
            if owner is not None and owner.customer_ref != customer_ref:
                return owner.customer_ref, True
    elif kind == ResourceType.ACCOUNT.value:
        direct = await links.of_connection(
            target.connection, (ResourceType.SERVER.value, ResourceType.DNS_ZONE.value))
        for other in (x for x in direct if x.customer_ref != customer_ref):
            try:
                record = await queries.get(ctx, Ref(other.connection,
                                                    ResourceType(other.resource_type),
                                                    other.resource_id))
            except (GatewayError, ProviderError):
                continue  # gone upstream: it no longer stands in the way
            account = (record.owner_id if isinstance(record, ServerRecord)
                       else record.account_id if isinstance(record, DnsZoneRecord) else None)
            if account == target.resource_id:
                return other.customer_ref, False
    return None


async def unlink(ctx: Context, customer_ref: str, target: Link) -> bool:
    removed = await ctx.gateway.customer_links.unlink(
        Link(customer_ref, target.connection, target.resource_type, target.resource_id))
    ctx.scopes.pop(customer_ref, None)
    return removed

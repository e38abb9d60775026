"""What a customer reference owns, and the checks that keep customers apart.

A customer owns the resources linked to it directly, the servers whose owner Account it owns,
the zones whose account it owns, and the invoices of the billing customers linked to it. The
same scope serves ``filter: {customerRef}`` and customer-bound API keys.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from panelql.application import ids
from panelql.application.context import Context
from panelql.application.errors import BadUserInput, GatewayError, StateConflict
from panelql.db.customer_links import Link
from panelql.domain.records import (
    AccountRecord,
    BackupRecord,
    DnsZoneRecord,
    InvoiceRecord,
    NodeRecord,
    Ref,
    ResourceType,
    ServerRecord,
)
from panelql.providers.contract import BillingProvider
from panelql.providers.errors import ProviderError

BILLING_CUSTOMER = "BillingCustomer"
LINKABLE = {ResourceType.ACCOUNT.value, ResourceType.SERVER.value, ResourceType.DNS_ZONE.value,
            BILLING_CUSTOMER}


@dataclass
class CustomerScope:
    customer_ref: str
    direct: set[Ref] = field(default_factory=set)
    billing: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def owns_account(self, connection: str, account_id: str | None) -> bool:
        return account_id is not None and Ref(
            connection, ResourceType.ACCOUNT, account_id) in self.direct

    def owns(self, record: object) -> bool:
        if isinstance(record, ServerRecord):
            return (Ref(record.connection, ResourceType.SERVER, record.id) in self.direct
                    or self.owns_account(record.connection, record.owner_id))
        if isinstance(record, AccountRecord):
            return self.owns_account(record.connection, record.id)
        if isinstance(record, DnsZoneRecord):
            return (Ref(record.connection, ResourceType.DNS_ZONE, record.id) in self.direct
                    or self.owns_account(record.connection, record.account_id))
        if isinstance(record, InvoiceRecord):
            return record.customer_id in self.billing.get(record.connection, [])
        if isinstance(record, BackupRecord):
            return Ref(record.connection, ResourceType.SERVER, record.server_id) in self.direct
        return isinstance(record, NodeRecord) and False


async def scope_of(ctx: Context, customer_ref: str) -> CustomerScope:
    cached = ctx.scopes.get(customer_ref)
    if isinstance(cached, CustomerScope):
        return cached
    links = await ctx.gateway.customer_links.of_customer(customer_ref)
    scope = CustomerScope(customer_ref)
    for link in links:
        if link.resource_type == BILLING_CUSTOMER:
            scope.billing[link.connection].append(link.resource_id)
        else:
            scope.direct.add(Ref(link.connection, ResourceType(link.resource_type),
                                 link.resource_id))
    ctx.scopes[customer_ref] = scope
    return scope


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
    from panelql.application.queries import get  # late: queries imports this module
    await get(ctx, ref)
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
    from panelql.application.queries import get  # late: queries imports this module

    links = ctx.gateway.customer_links
    kind = target.resource_type
    if kind in (ResourceType.SERVER.value, ResourceType.DNS_ZONE.value):
        record = await get(ctx, Ref(target.connection, ResourceType(kind), target.resource_id))
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
                record = await get(ctx, Ref(other.connection, ResourceType(other.resource_type),
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

"""What a customer reference owns: the scope that keeps customers apart.

A customer owns the resources linked to it directly, the servers whose owner Account it owns,
the zones whose account it owns, and the invoices of the billing customers linked to it. The
same scope serves ``filter: {customerRef}`` and customer-bound API keys (application/queries.py
filters by it; application/customers.py manages the links it is made of).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from panelql.application.context import Context
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

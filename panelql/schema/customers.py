"""Customer links in GraphQL: tie a billing system's customer to panel resources."""

from __future__ import annotations

import strawberry

from panelql.application import customers, ids
from panelql.application.customer_scope import BILLING_CUSTOMER
from panelql.application.execution import ActionResult
from panelql.domain.records import Ref, ResourceType
from panelql.domain.state import Link
from panelql.schema.actions import run_action, values
from panelql.schema.types.common import Info


@strawberry.type
class CustomerLink:
    link: strawberry.Private[Link]

    @strawberry.field
    def customer_ref(self) -> str:
        return self.link.customer_ref

    @strawberry.field
    def provider(self) -> str:
        return self.link.connection

    @strawberry.field(description="Account, Server, DnsZone or BillingCustomer.")
    def resource_type(self) -> str:
        return self.link.resource_type

    @strawberry.field(description="The upstream id (a Stripe/PayPal customer id for billing).")
    def resource_id(self) -> str:
        return self.link.resource_id

    @strawberry.field(description="Global ID of the linked resource (null for billing customers).")
    def resource(self) -> strawberry.ID | None:
        if self.link.resource_type == BILLING_CUSTOMER:
            return None
        return strawberry.ID(ids.encode(Ref(self.link.connection,
                                            ResourceType(self.link.resource_type),
                                            self.link.resource_id)))


@strawberry.type
class CustomerLinkPayload:
    link: CustomerLink
    changed: bool = strawberry.field(description="False when the link already was as asked.")
    replayed: bool


@strawberry.type
class CustomerQuery:
    @strawberry.field(description="What a billing customer is linked to.")
    async def customer_links(self, info: Info, customer_ref: str) -> list[CustomerLink]:
        return [CustomerLink(link=x) for x in await customers.links_of(info.context, customer_ref)]


async def _change(info: Info, link: bool, customer_ref: str, resource: strawberry.ID | None,
                  provider: str | None, billing_customer: str | None,
                  key: str | None) -> CustomerLinkPayload:
    async def run() -> ActionResult:
        target = await customers.link_target(info.context, resource, provider, billing_customer)
        if link:
            await customers.ensure_single_owner(info.context, customer_ref, target)
        fn = customers.link if link else customers.unlink
        changed = await fn(info.context, customer_ref, target)
        return ActionResult(target=resource, data={
            "changed": changed, "connection": target.connection,
            "type": target.resource_type, "id": target.resource_id})
    result = await run_action(info, resource or billing_customer, key,
                              values(customer_ref=customer_ref, resource=resource,
                                     provider=provider, billing_customer=billing_customer),
                              run)
    d = result.data
    return CustomerLinkPayload(
        link=CustomerLink(link=Link(customer_ref, d["connection"], d["type"], d["id"])),
        changed=bool(d["changed"]), replayed=result.replayed)


@strawberry.type
class CustomerMutation:
    @strawberry.mutation(description="Link a customer reference (whmcs:42) to an Account, "
                                     "Server or DnsZone, or to a billing provider's customer.")
    async def link_customer(self, info: Info, customer_ref: str,
                            resource: strawberry.ID | None = None, provider: str | None = None,
                            billing_customer: str | None = None,
                            idempotency_key: str | None = None) -> CustomerLinkPayload:
        return await _change(info, True, customer_ref, resource, provider,
                             billing_customer, idempotency_key)

    @strawberry.mutation
    async def unlink_customer(self, info: Info, customer_ref: str,
                              resource: strawberry.ID | None = None, provider: str | None = None,
                              billing_customer: str | None = None,
                              idempotency_key: str | None = None) -> CustomerLinkPayload:
        return await _change(info, False, customer_ref, resource, provider,
                             billing_customer, idempotency_key)

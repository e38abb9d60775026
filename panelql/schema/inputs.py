"""Filter inputs of the list queries; each converts into the use-case's filter value."""

from __future__ import annotations

import strawberry

from panelql.application import filters, ids
from panelql.domain.records import ResourceType
from panelql.schema.enums import (
    AccountStatus,
    BackupStatus,
    DnsZoneStatus,
    InvoiceStatus,
    NodeStatus,
    ProviderKind,
    ServerStatus,
)


def _kinds(kinds: list[ProviderKind] | None) -> list[str] | None:
    return None if kinds is None else [k.value for k in kinds]


@strawberry.input(description="Restrict a list to some provider connections or kinds.")
class ScopeInput:
    provider: list[str] | None = strawberry.field(
        default=None, description="Connection names, as in `providers { name }`.")
    kind: list[ProviderKind] | None = None
    search: str | None = strawberry.field(default=None,
                                          description="Case-insensitive text match.")


@strawberry.input(description="Filters of lists that can belong to a billing customer.")
class CustomerScopeInput(ScopeInput):
    customer_ref: str | None = strawberry.field(
        default=None, description="A billing system's customer reference, e.g. whmcs:42.")


@strawberry.input
class ServerFilterInput(CustomerScopeInput):
    status: list[ServerStatus] | None = None  # type: ignore[valid-type]
    node: strawberry.ID | None = None
    owner: strawberry.ID | None = None

    def to_filter(self) -> filters.ServerFilter:
        return filters.ServerFilter(
            providers=self.provider, kinds=_kinds(self.kind), statuses=self.status,
            node=ids.decode(self.node, ResourceType.NODE) if self.node else None,
            owner=ids.decode(self.owner, ResourceType.ACCOUNT) if self.owner else None,
            search=self.search, customer_ref=self.customer_ref,
        )


@strawberry.input
class NodeFilterInput(ScopeInput):
    status: list[NodeStatus] | None = None  # type: ignore[valid-type]
    region: str | None = None

    def to_filter(self) -> filters.NodeFilter:
        return filters.NodeFilter(providers=self.provider, kinds=_kinds(self.kind),
                                  statuses=self.status, region=self.region, search=self.search)


@strawberry.input
class AccountFilterInput(CustomerScopeInput):
    status: list[AccountStatus] | None = None  # type: ignore[valid-type]

    def to_filter(self) -> filters.AccountFilter:
        return filters.AccountFilter(providers=self.provider, kinds=_kinds(self.kind),
                                     statuses=self.status, search=self.search,
                                     customer_ref=self.customer_ref)


@strawberry.input
class BackupFilterInput(CustomerScopeInput):
    status: list[BackupStatus] | None = None  # type: ignore[valid-type]
    server: strawberry.ID | None = None

    def to_filter(self) -> filters.BackupFilter:
        return filters.BackupFilter(
            providers=self.provider, kinds=_kinds(self.kind), statuses=self.status,
            server=ids.decode(self.server, ResourceType.SERVER) if self.server else None,
            search=self.search, customer_ref=self.customer_ref,
        )


@strawberry.input
class InvoiceFilterInput(CustomerScopeInput):
    status: list[InvoiceStatus] | None = None  # type: ignore[valid-type]
    overdue: bool | None = None
    customer_id: list[str] | None = strawberry.field(
        default=None, description="The billing provider's customer ids.")

    def to_filter(self) -> filters.InvoiceFilter:
        return filters.InvoiceFilter(providers=self.provider, kinds=_kinds(self.kind),
                                     statuses=self.status, overdue=self.overdue,
                                     customer_ids=self.customer_id, search=self.search,
                                     customer_ref=self.customer_ref)


@strawberry.input
class DnsZoneFilterInput(CustomerScopeInput):
    status: list[DnsZoneStatus] | None = None  # type: ignore[valid-type]

    def to_filter(self) -> filters.DnsZoneFilter:
        return filters.DnsZoneFilter(providers=self.provider, kinds=_kinds(self.kind),
                                     statuses=self.status, search=self.search,
                                     customer_ref=self.customer_ref)

"""Invoice and Money: the billing family's types."""

from __future__ import annotations

from datetime import datetime

import strawberry

from panelql.application import queries
from panelql.domain.records import InvoiceRecord, ResourceType
from panelql.domain.records import Money as MoneyRecord
from panelql.schema.enums import InvoiceStatus
from panelql.schema.types.common import Info, global_id
from panelql.schema.types.provider import Provider, provider_by_name


@strawberry.type
class Money:
    amount: str = strawberry.field(description="Exact decimal string, e.g. \"19.99\".")
    currency: str

    @staticmethod
    def of(m: MoneyRecord) -> Money:
        return Money(amount=format(m.amount, "f"), currency=m.currency.upper())


@strawberry.type
class InvoiceLine:
    description: str
    quantity: int
    amount: Money


@strawberry.type
class Invoice:
    r: strawberry.Private[InvoiceRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return global_id(ResourceType.INVOICE, self.r.connection, self.r.id)

    @strawberry.field
    def provider(self, info: Info) -> Provider:
        return provider_by_name(info, self.r.connection)

    @strawberry.field
    def number(self) -> str | None:
        return self.r.number

    @strawberry.field
    def status(self) -> InvoiceStatus:  # type: ignore[valid-type]
        return self.r.status

    @strawberry.field
    def raw_status(self) -> str | None:
        return self.r.raw_status

    @strawberry.field
    def overdue(self) -> bool:
        return queries.is_overdue(self.r)

    @strawberry.field
    def amount_due(self) -> Money:
        return Money.of(self.r.amount_due)

    @strawberry.field
    def amount_paid(self) -> Money:
        return Money.of(self.r.amount_paid)

    @strawberry.field
    def total(self) -> Money:
        return Money.of(self.r.total)

    @strawberry.field(description="Money given back after payment (zero when none).")
    def amount_refunded(self) -> Money:
        if self.r.amount_refunded is not None:
            return Money.of(self.r.amount_refunded)
        return Money(amount="0", currency=self.r.total.currency.upper())

    @strawberry.field(description="The note shown on the invoice.")
    def memo(self) -> str | None:
        return self.r.memo

    @strawberry.field
    def due_date(self) -> datetime | None:
        return self.r.due_date

    @strawberry.field
    def hosted_url(self) -> str | None:
        return self.r.hosted_url

    @strawberry.field
    def lines(self) -> list[InvoiceLine]:
        return [InvoiceLine(description=x.description, quantity=x.quantity,
                            amount=Money.of(x.amount)) for x in self.r.lines]

    @strawberry.field(description="The billing provider's customer id.")
    def customer_id(self) -> str | None:
        return self.r.customer_id

    @strawberry.field
    def external_ref(self) -> str | None:
        return self.r.external_ref

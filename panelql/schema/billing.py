"""Billing mutations that move money: createInvoice, checkout, capturePayment, refundInvoice.

Each one runs through ``execution.execute`` (idempotency, audit) and answers an
``InvoicePayload``; the idempotency key also goes upstream (application/billing_actions.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from panelql.application import billing_actions
from panelql.application.execution import ActionResult
from panelql.domain.records import InvoiceLineInput as LineRecord
from panelql.schema.actions import run_action, values
from panelql.schema.payloads import InvoicePayload
from panelql.schema.types.common import Info

Key = Annotated[str | None, strawberry.argument(
    description="Retries with the same key and input return the first result; the key also "
                "reaches the provider (Stripe Idempotency-Key, PayPal PayPal-Request-Id).")]


@strawberry.input
class InvoiceLineInput:
    description: str
    unit_amount: str = strawberry.field(
        description="Price of one unit as an exact decimal string in the invoice's currency, "
                    "e.g. \"9.99\".")
    quantity: int = 1


@strawberry.input(description="A new invoice for a customer of the billing system. The "
                              "provider's customer is found or created and linked to "
                              "customerRef; integrations never handle provider customer ids.")
class CreateInvoiceInput:
    provider: str = strawberry.field(description="Billing connection name (Stripe or PayPal).")
    customer_ref: str = strawberry.field(description="Your customer reference, e.g. whmcs:42.")
    email: str = strawberry.field(description="The customer's email (PayPal: the recipient).")
    currency: str = strawberry.field(description="ISO 4217 code, e.g. USD.")
    lines: list[InvoiceLineInput]
    name: str | None = None
    due_date: datetime | None = None
    memo: str | None = strawberry.field(
        default=None, description="Shown on the invoice (Stripe description, PayPal note).")
    external_ref: str | None = strawberry.field(
        default=None, description="Your invoice number; kept as Invoice.externalRef.")


def _new(data: CreateInvoiceInput) -> billing_actions.NewInvoice:
    lines = [LineRecord(description=x.description, quantity=x.quantity,
                        unit_amount=billing_actions.amount(x.unit_amount,
                                                           f"lines.{n}.unitAmount"))
             for n, x in enumerate(data.lines)]
    return billing_actions.NewInvoice(
        provider=data.provider, customer_ref=data.customer_ref, email=data.email,
        name=data.name, currency=data.currency, lines=lines, due_date=data.due_date,
        memo=data.memo, external_ref=data.external_ref)


def _plain(data: CreateInvoiceInput) -> dict[str, object]:
    return {"provider": data.provider, "customer_ref": data.customer_ref, "email": data.email,
            "name": data.name, "currency": data.currency, "memo": data.memo,
            "due_date": data.due_date.isoformat() if data.due_date else None,
            "external_ref": data.external_ref,
            "lines": [[x.description, x.unit_amount, x.quantity] for x in data.lines]}


@strawberry.type
class BillingMutation:
    @strawberry.mutation(description="Create a draft invoice (Stripe: invoice + invoice items; "
                                     "PayPal: Invoicing v2 draft) for a customer reference.")
    async def create_invoice(self, info: Info, input: CreateInvoiceInput,
                             idempotency_key: Key = None) -> InvoicePayload:
        async def run() -> ActionResult:
            return await billing_actions.create_invoice(info.context, _new(input),
                                                        idempotency_key)
        result = await run_action(info, None, idempotency_key, _plain(input), run)
        return InvoicePayload(result=result)

    @strawberry.mutation(description="A hosted page where the customer pays the invoice: a "
                                     "Stripe Checkout Session, or a PayPal order to approve "
                                     "(then capturePayment). A draft is finalized first.")
    async def checkout(self, info: Info, id: strawberry.ID, return_url: str,
                       cancel_url: str | None = None,
                       idempotency_key: Key = None) -> InvoicePayload:
        result = await run_action(
            info, id, idempotency_key,
            values(id=id, return_url=return_url, cancel_url=cancel_url),
            lambda: billing_actions.checkout(info.context, id, return_url, cancel_url,
                                             idempotency_key))
        return InvoicePayload(result=result)

    @strawberry.mutation(description="Capture a PayPal order the payer approved and record "
                                     "it on its invoice.")
    async def capture_payment(self, info: Info, id: strawberry.ID, order_id: str,
                              idempotency_key: Key = None) -> InvoicePayload:
        result = await run_action(
            info, id, idempotency_key, values(id=id, order_id=order_id),
            lambda: billing_actions.capture(info.context, id, order_id, idempotency_key))
        return InvoicePayload(result=result)

    @strawberry.mutation(description="Give back money of a paid invoice: all that is left, or "
                                     "amount (exact decimal string). Stripe: a credit note "
                                     "that refunds; PayPal: a capture refund, recorded on the "
                                     "invoice.")
    async def refund_invoice(self, info: Info, id: strawberry.ID, amount: str | None = None,
                             idempotency_key: Key = None) -> InvoicePayload:
        result = await run_action(
            info, id, idempotency_key, values(id=id, amount=amount),
            lambda: billing_actions.refund(info.context, id, amount, idempotency_key))
        return InvoicePayload(result=result)

"""Money in and out: create an invoice, hand out its payment link, capture, refund.

Each action runs inside ``execution.execute`` (idempotency, audit). The mutation's idempotency
key also reaches the provider (Stripe ``Idempotency-Key``, PayPal ``PayPal-Request-Id``), one
derived key per upstream write, so a retry that the gateway does run again (the first attempt
failed before it was recorded) is replayed by the provider instead of charging twice.
Every change of an invoice is published on the bus as ``invoiceStatusChanged``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from panelql.application import customers, ids, validation
from panelql.application.context import Context
from panelql.application.customer_scope import BILLING_CUSTOMER
from panelql.application.errors import (
    BadUserInput,
    NotFoundError,
    NotSupported,
    StateConflict,
)
from panelql.application.execution import ActionResult, idempotency_key
from panelql.application.targets import adapter_for, target
from panelql.domain.records import (
    BillingCustomer,
    InvoiceLineInput,
    InvoiceRecord,
    InvoiceSpec,
    Ref,
    ResourceType,
)
from panelql.domain.state import Link
from panelql.domain.status import InvoiceStatus
from panelql.events.model import Source, StatusEvent, Topic
from panelql.providers.contract import BillingProvider, Capability

MAX_LINES = 100  # PayPal's limit on invoice items; Stripe invoices hold more
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
REFUNDABLE = {InvoiceStatus.PAID, InvoiceStatus.PARTIALLY_REFUNDED}


@dataclass(frozen=True)
class NewInvoice:
    provider: str
    customer_ref: str
    email: str
    name: str | None
    currency: str
    lines: list[InvoiceLineInput]
    due_date: datetime | None
    memo: str | None
    external_ref: str | None


def upstream_key(ctx: Context, key: str | None) -> str | None:
    """The provider-side key for this mutation: stable for the same caller and key, opaque,
    short enough for PayPal-Request-Id (108 characters) with a step suffix."""
    resolved = idempotency_key(ctx, key)
    if resolved is None:
        return None
    digest = hashlib.sha256(f"{ctx.viewer.name}\0{resolved}".encode()).hexdigest()
    return f"panelql-{digest[:40]}"


def amount(value: str, field: str) -> Decimal:
    try:
        parsed = Decimal(value.strip())
    except (InvalidOperation, AttributeError):
        raise BadUserInput(f"{field} must be a decimal string like \"19.99\"",
                           field=field) from None
    if not parsed.is_finite() or parsed < 0:
        raise BadUserInput(f"{field} must be a positive decimal", field=field)
    return parsed


def check_new(data: NewInvoice) -> None:
    customers.valid_customer_ref(data.customer_ref)
    validation.email(data.email)
    if not _CURRENCY.match(data.currency):
        raise BadUserInput("currency must be a three-letter ISO 4217 code", field="currency")
    if not 1 <= len(data.lines) <= MAX_LINES:
        raise BadUserInput(f"give 1 to {MAX_LINES} lines", field="lines")
    for n, line in enumerate(data.lines):
        if not line.description.strip():
            raise BadUserInput("each line needs a description", field=f"lines.{n}.description")
        if not 1 <= line.quantity <= 1_000_000:
            raise BadUserInput("quantity must be 1 to 1000000", field=f"lines.{n}.quantity")
    if sum(x.unit_amount * x.quantity for x in data.lines) <= 0:
        raise BadUserInput("the invoice total must be more than zero", field="lines")


async def _linked_customer(ctx: Context, customer_ref: str, connection: str) -> str | None:
    for link in await ctx.gateway.customer_links.of_customer(customer_ref):
        if link.connection == connection and link.resource_type == BILLING_CUSTOMER:
            return link.resource_id
    return None


async def create_invoice(ctx: Context, data: NewInvoice, key: str | None) -> ActionResult:
    provider = adapter_for(ctx, data.provider, BillingProvider, Capability.INVOICE_CREATE)
    check_new(data)
    up = upstream_key(ctx, key)
    known = await _linked_customer(ctx, data.customer_ref, provider.name)
    who = BillingCustomer(data.customer_ref, data.email, data.name)
    customer_id = await provider.ensure_customer(who, known, f"{up}:customer" if up else None)
    if customer_id != known:
        await customers.link(ctx, data.customer_ref,
                             Link("", provider.name, BILLING_CUSTOMER, customer_id))
    spec = InvoiceSpec(customer_id=customer_id, customer=who, currency=data.currency.upper(),
                       lines=tuple(data.lines), due_date=data.due_date, memo=data.memo,
                       external_ref=data.external_ref)
    try:
        record = await provider.create_invoice(spec, up)
    except ValueError as exc:  # an amount finer than the currency's smallest unit
        raise BadUserInput(str(exc), field="lines") from None
    await _publish(ctx, record, None, {"event_type": "invoice.created"})
    return _result(ctx, record, {"customer_linked": customer_id != known})


async def checkout(ctx: Context, invoice_id: str, return_url: str, cancel_url: str | None,
                   key: str | None) -> ActionResult:
    ref, provider = await _target(ctx, invoice_id, Capability.INVOICE_CHECKOUT)
    for url, field in ((return_url, "returnUrl"), (cancel_url, "cancelUrl")):
        if url is not None and not re.match(r"^https?://\S+$", url):
            raise BadUserInput(f"{field} must be an http(s) URL", field=field)
    current = await _current(ctx, ref, provider)
    up = upstream_key(ctx, key)
    if current.status is InvoiceStatus.DRAFT and provider.supports(
            Capability.INVOICE_FINALIZE):
        # A payment page needs a finalized invoice (Stripe: open; PayPal: sent/unpaid).
        finalized = await provider.finalize_invoice(ref.id)
        await _publish(ctx, finalized, current.status, {"event_type": "invoice.finalized"})
        current = finalized
    if current.status is not InvoiceStatus.OPEN:
        raise StateConflict(f"cannot take a payment for an invoice that is "
                            f"{current.status.value}", currentStatus=current.status.value)
    link = await provider.checkout(current, return_url, cancel_url or return_url, up)
    return _result(ctx, current, {"payment_link": {
        "url": link.url, "kind": link.kind, "id": link.id,
        "expires_at": link.expires_at.isoformat() if link.expires_at else None}})


async def capture(ctx: Context, invoice_id: str, order_id: str, key: str | None
                  ) -> ActionResult:
    ref, provider = await _target(ctx, invoice_id, Capability.PAYMENT_CAPTURE)
    if not re.match(r"^[A-Za-z0-9-]{1,64}$", order_id):
        raise BadUserInput("orderId is not an order id", field="orderId")
    order_invoice = getattr(provider, "order_invoice", None)
    if order_invoice is not None and await order_invoice(order_id) != ref.id:
        raise BadUserInput("this order does not pay this invoice", field="orderId")
    current = await _current(ctx, ref, provider)
    outcome = await provider.capture_payment(order_id, upstream_key(ctx, key))
    await _publish(ctx, outcome.invoice, current.status,
                   {"event_type": "capturePayment", "payment": "SUCCEEDED"})
    return _result(ctx, outcome.invoice, {"collection": outcome.collection.value,
                                          "payment_id": outcome.payment_id})


async def refund(ctx: Context, invoice_id: str, value: str | None, key: str | None
                 ) -> ActionResult:
    ref, provider = await _target(ctx, invoice_id, Capability.INVOICE_REFUND)
    current = await _current(ctx, ref, provider)
    if current.status not in REFUNDABLE:
        raise StateConflict(f"cannot refund an invoice that is {current.status.value}; only "
                            f"paid invoices are refunded", currentStatus=current.status.value)
    given = current.amount_refunded.amount if current.amount_refunded else Decimal("0")
    left = current.amount_paid.amount - given
    wanted = left if value is None else amount(value, "amount")
    if wanted <= 0:
        raise BadUserInput("amount must be more than zero", field="amount")
    if wanted > left:
        raise BadUserInput(f"amount exceeds what is left to refund ({left} "
                           f"{current.amount_paid.currency})", field="amount",
                           reason="OVER_REFUND", refundable=format(left, "f"))
    try:
        updated = await provider.refund_invoice(current, wanted, upstream_key(ctx, key))
    except ValueError as exc:
        raise BadUserInput(str(exc), field="amount") from None
    await _publish(ctx, updated, current.status,
                   {"event_type": "refundInvoice", "payment": "REFUNDED"}, always=True)
    return _result(ctx, updated, {"refunded": format(wanted, "f")})


async def _target(ctx: Context, invoice_id: str, capability: Capability
                  ) -> tuple[Ref, BillingProvider]:
    """Ownership first (a customer-bound key gets NOT_FOUND for another's invoice, whatever
    the connection can do), then the capability (NOT_SUPPORTED)."""
    ref, provider = await target(ctx, invoice_id, ResourceType.INVOICE, BillingProvider,
                                 Capability.INVOICE_READ)
    if not provider.supports(capability):
        raise NotSupported(f"{provider.kind} connections cannot do {capability.name}",
                           provider=provider.name)
    return ref, provider


async def _current(ctx: Context, ref: Ref, provider: BillingProvider) -> InvoiceRecord:
    current = (await provider.get_invoices([ref.id])).get(ref.id)
    if current is None:
        raise NotFoundError("invoice not found")
    return current


async def _publish(ctx: Context, record: InvoiceRecord, previous: InvoiceStatus | None,
                   data: dict[str, object], *, always: bool = False) -> None:
    if always or record.status is not previous:
        await ctx.gateway.bus.publish(StatusEvent(
            topic=Topic.INVOICE, connection=record.connection, resource_id=record.id,
            status=record.status.value, previous=previous.value if previous else None,
            source=Source.MUTATION, data={"raw_status": record.raw_status, **data}))


def _result(ctx: Context, record: InvoiceRecord, data: dict[str, object]) -> ActionResult:
    ref = Ref(record.connection, ResourceType.INVOICE, record.id)
    ctx.loaders.invoice.clear(ref).prime(ref, record)
    return ActionResult(target=ids.encode(ref), data=dict(data))

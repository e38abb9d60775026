"""PayPal raw values → normalised records: invoice status, decimal-string money, due dates."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from panelql.domain.records import InvoiceLine, InvoiceRecord, Money
from panelql.domain.status import InvoiceStatus, map_status
from panelql.providers.http import expect

# invoice_status (paypal-invoicing_v2.json 2.3) plus the values the status reference page adds.
# Refunds read as such (a refunded invoice is not money in); the raw status says which kind.
INVOICE_STATUS: dict[str, InvoiceStatus] = {
    "DRAFT": InvoiceStatus.DRAFT,
    "SCHEDULED": InvoiceStatus.DRAFT,
    "SENT": InvoiceStatus.OPEN,
    "UNPAID": InvoiceStatus.OPEN,
    "SHARED": InvoiceStatus.OPEN,
    "PARTIALLY_PAID": InvoiceStatus.OPEN,
    "PAYMENT_PENDING": InvoiceStatus.OPEN,
    "PAID": InvoiceStatus.PAID,
    "MARKED_AS_PAID": InvoiceStatus.PAID,
    "PAID_EXTERNAL": InvoiceStatus.PAID,
    "REFUNDED": InvoiceStatus.REFUNDED,
    "PARTIALLY_REFUNDED": InvoiceStatus.PARTIALLY_REFUNDED,
    "MARKED_AS_REFUNDED": InvoiceStatus.REFUNDED,
    "REFUNDED_EXTERNAL": InvoiceStatus.REFUNDED,
    "CANCELLED": InvoiceStatus.VOID,
    "AUTO_CANCELLED": InvoiceStatus.VOID,
}
# As for Stripe: an unknown status never counts as overdue or settled.
UNMAPPED_INVOICE_STATUS = InvoiceStatus.DRAFT

# Which statuses each action starts from (the adapter checks before calling, see adapter.py).
FINALIZABLE = frozenset({"DRAFT"})
SENDABLE = frozenset({"DRAFT", "SCHEDULED"})
REMINDABLE = frozenset({"SENT", "UNPAID", "SHARED", "PARTIALLY_PAID"})
# Invoices a payment can be recorded against (invoices.payments-422 CANNOT_PROCESS_PAYMENTS).
PAYABLE = frozenset({"SENT", "UNPAID", "SHARED", "PARTIALLY_PAID"})

_VALUE = re.compile(r"^-?([0-9]+|[0-9]*\.[0-9]+)$")  # the spec's money.value pattern


def money(raw: Any, provider: str, *, currency: str | None = None) -> Money:
    """``{"currency_code":"USD","value":"19.99"}`` → Money(Decimal("19.99"), "USD"), exactly."""
    if raw is None and currency:
        return Money(Decimal("0"), currency)
    expect(isinstance(raw, dict), provider, "money object")
    code, value = raw.get("currency_code"), raw.get("value")
    expect(isinstance(code, str) and len(code) == 3, provider, "currency code")
    expect(isinstance(value, str) and bool(_VALUE.match(value)), provider, "money value")
    return Money(Decimal(value), code)


def due_date(detail: dict[str, Any]) -> datetime | None:
    """PayPal due dates are days; an invoice is due until the end of that day (UTC)."""
    term = detail.get("payment_term")
    raw = term.get("due_date") if isinstance(term, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        day = date.fromisoformat(raw[:10])
    except ValueError:
        return None
    return datetime.combine(day, time.max, UTC)


def invoice_record(raw: Any, connection: str, provider: str) -> InvoiceRecord:
    expect(isinstance(raw, dict) and isinstance(raw.get("id"), str), provider, "invoice object")
    detail = raw.get("detail")
    expect(isinstance(detail, dict), provider, "invoice detail")
    currency = detail.get("currency_code")
    expect(isinstance(currency, str), provider, "invoice currency")
    status = raw.get("status")
    mapped = map_status(INVOICE_STATUS, status, UNMAPPED_INVOICE_STATUS, source="paypal")
    total = money(raw.get("amount"), provider, currency=currency)
    payments = raw.get("payments") if isinstance(raw.get("payments"), dict) else {}
    paid = money(payments.get("paid_amount"), provider, currency=currency)
    refunds = raw.get("refunds") if isinstance(raw.get("refunds"), dict) else {}
    refunded = money(refunds["refund_amount"], provider) \
        if refunds.get("refund_amount") is not None else None
    if raw.get("due_amount") is not None:
        due = money(raw["due_amount"], provider)
    else:  # drafts carry no due_amount; settled and cancelled invoices owe nothing
        owed = mapped in (InvoiceStatus.DRAFT, InvoiceStatus.OPEN)
        due = Money(total.amount - paid.amount if owed else Decimal("0"), currency)
    metadata = detail.get("metadata") if isinstance(detail.get("metadata"), dict) else {}
    return InvoiceRecord(
        connection=connection, id=raw["id"],
        number=_str(detail.get("invoice_number")),
        status=mapped, raw_status=status if isinstance(status, str) else None,
        amount_due=due, amount_paid=paid, total=total,
        due_date=due_date(detail),
        hosted_url=_str(metadata.get("recipient_view_url")),
        lines=_lines(raw.get("items"), provider),
        customer_id=recipient_email(raw),
        external_ref=_str(detail.get("reference")),
        amount_refunded=refunded if refunded is not None and refunded.amount > 0 else None,
        memo=_str(detail.get("note")),
    )


def paypal_payments(raw: Any) -> list[tuple[str, Decimal]]:
    """(capture id, amount) of the payments recorded with method PAYPAL: money that can be
    refunded through PayPal (``payments.transactions[]``, invoicing_v2.json payment_detail)."""
    payments = raw.get("payments") if isinstance(raw, dict) else None
    found = []
    for tx in (payments or {}).get("transactions") or []:
        if isinstance(tx, dict) and tx.get("method") == "PAYPAL" \
                and isinstance(tx.get("payment_id"), str):
            amount = tx.get("amount")
            value = amount.get("value") if isinstance(amount, dict) else None
            found.append((tx["payment_id"], Decimal(value) if isinstance(value, str)
                          and _VALUE.match(value) else Decimal("0")))
    return found


def recipient_email(raw: dict[str, Any]) -> str | None:
    """PayPal has no customer objects; the first recipient's email is the customer key."""
    recipients = raw.get("primary_recipients")
    if not isinstance(recipients, list) or not recipients:
        return None
    first: dict[str, Any] = recipients[0] if isinstance(recipients[0], dict) else {}
    billing = first.get("billing_info")
    if not isinstance(billing, dict):
        return None
    return _str(billing.get("email_address"))


def _lines(raw: Any, provider: str) -> list[InvoiceLine]:
    if raw is None:
        return []
    expect(isinstance(raw, list), provider, "item list")
    lines = []
    for item in raw:
        expect(isinstance(item, dict), provider, "invoice item")
        unit = money(item.get("unit_amount"), provider)
        quantity = item.get("quantity", "1")
        expect(isinstance(quantity, str | int) and bool(_VALUE.match(str(quantity))),
               provider, "item quantity")
        qty = Decimal(str(quantity))
        # InvoiceLine.quantity is whole; the amount stays exact for fractional quantities.
        lines.append(InvoiceLine(description=str(item.get("name") or ""),
                                 quantity=int(qty) if qty == int(qty) else 1,
                                 amount=Money(unit.amount * qty, unit.currency)))
    return lines


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None

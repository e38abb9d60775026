"""Stripe raw values → normalised records: invoice status, minor-unit amounts, state errors.

Also the one parser from an invoice dict (as the API, a recorded fixture or a webhook event
carries it) to :class:`InvoiceRecord`, shared by the adapter and the webhook helper.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from panelql.domain.records import InvoiceLine, InvoiceRecord, Money
from panelql.domain.status import InvoiceStatus, map_status
from panelql.providers.http import expect

INVOICE_STATUS: dict[str, InvoiceStatus] = {
    "draft": InvoiceStatus.DRAFT,
    "open": InvoiceStatus.OPEN,
    "paid": InvoiceStatus.PAID,
    "uncollectible": InvoiceStatus.UNCOLLECTIBLE,
    "void": InvoiceStatus.VOID,
}
# InvoiceStatus has no UNKNOWN. An unmapped status becomes DRAFT: the one value that never
# counts as overdue or settled, so nothing (suspension for non-payment) acts on a guess.
UNMAPPED_INVOICE_STATUS = InvoiceStatus.DRAFT

# Stripe amounts are integers in the currency's smallest unit; these are the exceptions to
# "two decimals" (stripe.com/docs/currencies). ISK, HUF and TWD are two-decimal in the API.
ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf",
                          "ugx", "vnd", "vuv", "xaf", "xof", "xpf"})
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})

# Stripe answers invoice state errors (finalize a paid invoice, void a draft…) with HTTP 400
# ``invalid_request_error``; the code, when it is set, is one of these. Without a code, a
# message about the invoice's state and no ``param`` marks the same thing.
STATE_ERROR_CODES = frozenset(
    {"invoice_not_editable", "invoice_already_finalized", "invoice_already_paid",
     "invoice_already_voided", "invoice_not_open", "invoice_payment_intent_requires_action"}
)
_STATE_WORDS = re.compile(
    r"\b(already|draft|open|paid|void|voided|finali[sz]ed|uncollectible|status)\b", re.I
)


def is_state_error(code: str | None, message: str | None, param: str | None) -> bool:
    if code in STATE_ERROR_CODES:
        return True
    return code is None and param is None and bool(_STATE_WORDS.search(message or ""))


def minor_to_decimal(amount: int, currency: str) -> Decimal:
    """Exact conversion: 1999 usd → 19.99, 1500 jpy → 1500, 12345 kwd → 12.345."""
    currency = currency.lower()
    exponent = 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2
    return Decimal(amount).scaleb(-exponent)


def money(amount: Any, currency: str, provider: str) -> Money:
    expect(isinstance(amount, int) and not isinstance(amount, bool), provider, "amount")
    return Money(minor_to_decimal(amount, currency), currency.upper())


def timestamp(value: Any) -> datetime | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    return None


def is_overdue(record: InvoiceRecord, now: datetime | None = None) -> bool:
    """Open and past its due date (InvoiceRecord has no field for it; the schema derives it)."""
    if record.status is not InvoiceStatus.OPEN or record.due_date is None:
        return False
    return record.due_date < (now or datetime.now(UTC))


def invoice_record(raw: Any, connection: str, provider: str) -> InvoiceRecord:
    expect(isinstance(raw, dict) and isinstance(raw.get("id"), str), provider, "invoice object")
    currency = raw.get("currency")
    expect(isinstance(currency, str) and len(currency) == 3, provider, "invoice currency")
    status = raw.get("status")
    customer = raw.get("customer")
    if isinstance(customer, dict):  # expanded customer object
        customer = customer.get("id")
    metadata = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
    paid = money(raw.get("amount_paid"), currency, provider)
    refunded = _refunded(raw, currency, provider)
    mapped = map_status(INVOICE_STATUS, status, UNMAPPED_INVOICE_STATUS, source="stripe")
    return InvoiceRecord(
        connection=connection, id=raw["id"],
        number=raw.get("number") if isinstance(raw.get("number"), str) else None,
        status=refund_status(mapped, paid, refunded),
        raw_status=status if isinstance(status, str) else None,
        amount_due=money(raw.get("amount_due"), currency, provider),
        amount_paid=paid, amount_refunded=refunded,
        memo=raw.get("description") if isinstance(raw.get("description"), str) else None,
        total=money(raw.get("total"), currency, provider),
        due_date=timestamp(raw.get("due_date")),
        hosted_url=raw.get("hosted_invoice_url") or None,
        lines=_lines(raw.get("lines"), currency, provider),
        customer_id=customer if isinstance(customer, str) else None,
        external_ref=metadata.get("external_ref") if isinstance(metadata, dict) else None,
    )


def _refunded(raw: dict[str, Any], currency: str, provider: str) -> Money | None:
    """Money given back after payment. Stripe keeps a paid invoice ``paid`` and counts credit
    notes issued after payment in ``post_payment_credit_notes_amount`` (Invoice object, API
    2026-10-28.endive as pinned by stripe-python 16.1.0); a refund is such a credit note."""
    amount = raw.get("post_payment_credit_notes_amount")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        return None
    return money(amount, currency, provider)


def refund_status(status: InvoiceStatus, paid: Money, refunded: Money | None) -> InvoiceStatus:
    """A paid invoice with money given back reads as (partially) refunded."""
    if status is not InvoiceStatus.PAID or refunded is None or refunded.amount <= 0:
        return status
    if refunded.amount >= paid.amount:
        return InvoiceStatus.REFUNDED
    return InvoiceStatus.PARTIALLY_REFUNDED


def decimal_to_minor(amount: Decimal, currency: str) -> int:
    """19.99 usd → 1999; refuses amounts finer than the currency's smallest unit."""
    currency = currency.lower()
    exponent = 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2
    minor = amount.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise ValueError(f"{amount} has more decimals than {currency.upper()} allows")
    return int(minor)


def _lines(raw: Any, currency: str, provider: str) -> list[InvoiceLine]:
    """The lines embedded in the invoice (Stripe embeds the first page of them)."""
    if raw is None:
        return []
    expect(isinstance(raw, dict) and isinstance(raw.get("data"), list), provider, "line list")
    lines = []
    for item in raw["data"]:
        expect(isinstance(item, dict), provider, "line item")
        quantity = item.get("quantity")
        lines.append(InvoiceLine(
            description=str(item.get("description") or ""),
            quantity=quantity if isinstance(quantity, int) else 1,
            amount=money(item.get("amount"), str(item.get("currency") or currency), provider),
        ))
    return lines

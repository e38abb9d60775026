"""Which of the gateway's PayPal invoices a customer dispute concerns.

A ``CUSTOMER.DISPUTE.CREATED`` delivery carries the dispute (paypal-rest-api-specifications
``openapi/customer_disputes_v1.json`` @ec4d8f36 ``dispute``) as its ``resource``; the dispute
names transactions, not invoices: ``disputed_transactions[]`` (``transaction_info``) with the
merchant's ``seller_transaction_id`` and, when the payment carried one, ``invoice_number``.
PayPal's own sample delivery (developer.paypal.com/docs/disputes/webhooks, "Webhook details")
has the transaction id only.

The link that decides is the money: an invoice is the dispute's when the disputed transaction
is a PayPal payment recorded on it (invoicing_v2.json 2.3 ``payment_detail.payment_id``, which
the adapter's ``record_capture`` fills with the capture id). Two ways lead to the candidate:

1. the transaction as a capture (``GET /v2/payments/captures/{id}``, payments_payment_v2.json
   2.5): its ``custom_id`` is the invoice the gateway's checkout made the order for;
2. ``invoice_number`` through ``POST /v2/invoicing/search-invoices`` (``search_data``), for a
   payment made on PayPal's own invoice page; only a dispute without a transaction id is taken
   on the number alone.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from panelql.providers.errors import NotFound
from panelql.providers.paypal.mapping import paypal_payments

log = logging.getLogger("panelql.providers.paypal")

# search_data.invoice_number has maxLength 25 (invoicing_v2.json 2.3) while a transaction's
# may be 127 long: a longer number is no searchable PayPal invoice, and asking would be a 400.
SEARCHABLE_NUMBER = 25

# seller_transaction_id's pattern (transaction_info); also what the gateway accepts as an id
# to put in a URL path, so a capture's free-text custom_id from another integration is skipped.
_ID = re.compile(r"^[A-Za-z0-9-]+$")

Call = Callable[..., Awaitable[Any]]  # the adapter's authenticated JSON call


@dataclass(frozen=True, slots=True)
class DisputedTransaction:
    seller_transaction_id: str | None
    invoice_number: str | None


def disputed_transactions(dispute: dict[str, Any]) -> list[DisputedTransaction]:
    """The transactions of a dispute that name anything to look for (others are skipped)."""
    found = []
    for tx in dispute.get("disputed_transactions") or []:
        if not isinstance(tx, dict):
            continue
        seller, number = _str(tx.get("seller_transaction_id")), _str(tx.get("invoice_number"))
        if seller or number:
            found.append(DisputedTransaction(seller, number))
    return found


class DisputeLinks:
    """Finds the invoices (raw Invoicing v2 JSON) that disputed transactions paid."""

    def __init__(self, connection: str, call: Call) -> None:
        self.connection = connection
        self.call = call

    async def invoices(self, dispute: dict[str, Any]) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for tx in disputed_transactions(dispute):
            invoice = await self.invoice_of(tx)
            if invoice is None:
                log.info("PayPal dispute %s: transaction %s (invoice number %s) pays no "
                         "invoice of this connection; ignored", dispute.get("dispute_id"),
                         tx.seller_transaction_id, tx.invoice_number,
                         extra={"connection": self.connection})
            else:
                found.setdefault(str(invoice["id"]), invoice)
        return list(found.values())

    async def invoice_of(self, tx: DisputedTransaction) -> dict[str, Any] | None:
        if tx.seller_transaction_id and _ID.match(tx.seller_transaction_id):
            invoice = await self._by_capture(tx.seller_transaction_id)
            if invoice is not None:
                return invoice
        if tx.invoice_number and len(tx.invoice_number) <= SEARCHABLE_NUMBER:
            for invoice_id in await self._by_number(tx.invoice_number):
                # Read whole: what a search lists need not carry the payments.
                invoice = await self._invoice(invoice_id)
                if invoice is not None and (tx.seller_transaction_id is None
                                            or _paid_by(invoice, tx.seller_transaction_id)):
                    return invoice
        return None

    async def _by_capture(self, capture_id: str) -> dict[str, Any] | None:
        try:
            capture = await self.call("GET", f"/v2/payments/captures/{capture_id}")
        except NotFound:  # not a capture (a payment on PayPal's invoice page), or gone
            return None
        custom = capture.get("custom_id") if isinstance(capture, dict) else None
        if not isinstance(custom, str) or not _ID.match(custom):
            return None  # a capture of an order the gateway did not make
        invoice = await self._invoice(custom)
        return invoice if _paid_by(invoice, capture_id) else None

    async def _invoice(self, invoice_id: str) -> dict[str, Any] | None:
        try:
            invoice = await self.call("GET", f"/v2/invoicing/invoices/{invoice_id}")
        except NotFound:
            return None
        return invoice if isinstance(invoice, dict) and isinstance(invoice.get("id"), str) \
            else None

    async def _by_number(self, number: str) -> list[str]:
        body = await self.call("POST", "/v2/invoicing/search-invoices",
                               params={"page": 1, "page_size": 20},
                               json={"invoice_number": number})
        items = body.get("items") if isinstance(body, dict) else None
        # The search filters; the number must still be exactly the transaction's.
        return [item["id"] for item in items or [] if isinstance(item, dict)
                and isinstance(item.get("id"), str) and _ID.match(item["id"])
                and isinstance(item.get("detail"), dict)
                and item["detail"].get("invoice_number") == number]


def _paid_by(invoice: Any, transaction_id: str) -> bool:
    return isinstance(invoice, dict) and any(
        pid == transaction_id for pid, _ in paypal_payments(invoice))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None

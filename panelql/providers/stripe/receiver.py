"""Stripe deliveries turned into invoice changes for the gateway's webhook endpoint.

Payment events name no invoice status of their own: the receiver finds the invoice they concern
and reads it (``checkout.session.completed`` first credits the session's payment to its invoice,
at most once), and marks the change with ``data.payment`` (SUCCEEDED, FAILED, REFUNDED). That
upstream work happens before the delivery counts as processed, so a failure there answers 503
and Stripe delivers again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from panelql.domain.records import InvoiceRecord
from panelql.domain.status import InvoiceStatus
from panelql.providers.contract import WebhookChange, WebhookDelivery
from panelql.providers.stripe.webhooks import StripeWebhooks

if TYPE_CHECKING:  # the adapter builds the receiver: importing it at run time would be a cycle
    from panelql.providers.stripe.adapter import StripeProvider

# What a delivery says about the money, beside the invoice's status (invoiceStatusChanged
# carries it as ``payment``).
STRIPE_PAYMENT = {"invoice.paid": "SUCCEEDED", "invoice.payment_succeeded": "SUCCEEDED",
                  "invoice.payment_failed": "FAILED", "checkout.session.completed": "SUCCEEDED",
                  "checkout.session.async_payment_succeeded": "SUCCEEDED",
                  "charge.refunded": "REFUNDED"}


class StripeReceiver:
    """``invoice.*`` deliveries, and the payment events that concern an invoice:
    ``checkout.session.completed`` (the session's payment is credited to its invoice here),
    ``charge.refunded`` and ``charge.dispute.created`` (billing automation's DISPUTE trigger;
    the invoice's status does not change, so it carries no ``payment`` mark). Verification is
    the stripe adapter's (stripe library)."""

    def __init__(self, webhooks: StripeWebhooks, provider: StripeProvider) -> None:
        self.webhooks = webhooks
        self.provider = provider

    async def receive(self, body: bytes, headers: Mapping[str, str]) -> WebhookDelivery:
        event = self.webhooks.parse(body, headers.get("stripe-signature"))
        invoice = event.invoice
        if event.obj is not None:
            invoice = await self._payment_invoice(event.type, event.id, event.obj)
        if invoice is None:
            return WebhookDelivery(event.id, [])
        data: dict[str, Any] = {"event_type": event.type, "event_id": event.id}
        if event.type in STRIPE_PAYMENT:
            data["payment"] = STRIPE_PAYMENT[event.type]
        return WebhookDelivery(event.id, [WebhookChange("invoice", invoice.id,
                                                        invoice.status.value,
                                                        invoice.raw_status, data)])

    async def _payment_invoice(self, kind: str, event_id: str,
                               obj: dict[str, Any]) -> InvoiceRecord | None:
        if kind.startswith("checkout.session."):
            return await self.provider.attach_checkout(obj, event_id)
        intent = obj.get("payment_intent")
        if not isinstance(intent, str):
            return None
        invoice = await self.provider.invoice_of_payment(intent)
        refunded = obj.get("amount_refunded")
        if invoice is not None and invoice.status is InvoiceStatus.PAID \
                and isinstance(refunded, int) and refunded > 0:
            # Refunded on the charge itself (the Dashboard), not through a credit note: the
            # invoice still reads paid, the charge says otherwise.
            invoice.status = (InvoiceStatus.REFUNDED if obj.get("refunded")
                              else InvoiceStatus.PARTIALLY_REFUNDED)
        return invoice

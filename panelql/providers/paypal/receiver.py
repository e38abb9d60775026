"""PayPal deliveries turned into invoice changes for the gateway's webhook endpoint.

A payment event names no invoice status of its own: ``PAYMENT.CAPTURE.COMPLETED`` records the
capture on its invoice (at most once) and the receiver reads the invoice back, marking the
change with ``data.payment`` (SUCCEEDED, FAILED, REFUNDED). That upstream work happens before
the delivery counts as processed, so a failure there answers 503 and PayPal delivers again.

``CUSTOMER.DISPUTE.CREATED`` names transactions, not invoices: the adapter finds the invoices
they paid (providers/paypal/disputes.py) and each becomes a change carrying the event type,
which starts billing automation's DISPUTE policies (the invoice's status itself is unchanged,
so there is no ``payment`` mark, as for Stripe's ``charge.dispute.created``). A dispute that
pays no invoice of the connection is acknowledged with no change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from panelql.domain.status import InvoiceStatus
from panelql.providers.contract import WebhookChange, WebhookDelivery
from panelql.providers.errors import InvalidRequest, NotFound, UnexpectedResponse
from panelql.providers.paypal.webhooks import PayPalWebhooks

if TYPE_CHECKING:  # the adapter builds the receiver: importing it at run time would be a cycle
    from panelql.providers.paypal.adapter import PayPalProvider

PAYPAL_PAYMENT = {"PAYMENT.CAPTURE.COMPLETED": "SUCCEEDED", "PAYMENT.CAPTURE.DENIED": "FAILED",
                  "PAYMENT.CAPTURE.REFUNDED": "REFUNDED", "PAYMENT.CAPTURE.REVERSED": "REFUNDED"}


class PayPalReceiver:
    """``INVOICING.INVOICE.*``, ``PAYMENT.CAPTURE.*`` and ``CUSTOMER.DISPUTE.CREATED``
    deliveries, verified by PayPal (the adapter asks it). A completed capture of an invoice's
    order is recorded on the invoice here too, so the invoice is paid even when nobody called
    capturePayment's follow-up."""

    def __init__(self, webhooks: PayPalWebhooks, provider: PayPalProvider) -> None:
        self.webhooks = webhooks
        self.provider = provider

    async def receive(self, body: bytes, headers: Mapping[str, str]) -> WebhookDelivery:
        event = await self.webhooks.parse(body, headers)
        data: dict[str, Any] = {"event_type": event.type, "event_id": event.id}
        if event.invoice is not None:
            return WebhookDelivery(event.id, [WebhookChange("invoice", event.invoice.id,
                                                            event.invoice.status.value,
                                                            event.invoice.raw_status, data)])
        if event.dispute is not None:
            return WebhookDelivery(event.id, await self._disputed(event.dispute, data))
        if event.payment is None or not isinstance(event.payment.get("custom_id"), str):
            return WebhookDelivery(event.id, [])  # not a payment for an invoice of the gateway's
        data["payment"] = PAYPAL_PAYMENT[event.type]
        try:
            if event.type == "PAYMENT.CAPTURE.COMPLETED":
                invoice = await self.provider.record_capture(event.payment)
            else:
                invoice = await self.provider.get_invoice(event.payment["custom_id"])
        except NotFound:
            # custom_id is free text to PayPal: another app's order on the same account
            # (its own reference there) names no invoice of this connection.
            return WebhookDelivery(event.id, [])
        except InvalidRequest as exc:
            raise lookup_refused(exc, "the payment's invoice") from exc
        if data["payment"] == "REFUNDED" and invoice.status is InvoiceStatus.PAID:
            # Refunded, and not (yet) recorded on the invoice: it is no longer simply paid.
            invoice.status = InvoiceStatus.PARTIALLY_REFUNDED
        return WebhookDelivery(event.id, [WebhookChange("invoice", invoice.id,
                                                        invoice.status.value,
                                                        invoice.raw_status, data)])

    async def _disputed(self, dispute: dict[str, Any],
                        data: dict[str, Any]) -> list[WebhookChange]:
        try:
            invoices = await self.provider.disputed_invoices(dispute)
        except InvalidRequest as exc:
            raise lookup_refused(exc, "the dispute's invoices") from exc
        return [WebhookChange("invoice", invoice.id, invoice.status.value, invoice.raw_status,
                              dict(data)) for invoice in invoices]


def lookup_refused(exc: InvalidRequest, what: str) -> UnexpectedResponse:
    """PayPal refused a lookup of the gateway's own while it handled a verified delivery.
    Answered as invalid (400), the delivery would count as a forgery against PayPal's address
    (web/webhooks.py throttles those, and would then turn PayPal's genuine deliveries away);
    as an upstream failure (503) it is delivered again later."""
    return UnexpectedResponse(f"PayPal refused the lookup of {what}: {exc.message}",
                              provider=exc.provider, debug=exc.debug,
                              upstream_status=exc.upstream_status)

"""PayPal webhooks: verified by PayPal itself; ``INVOICING.INVOICE.*``, ``PAYMENT.CAPTURE.*`` and
``CUSTOMER.DISPUTE.CREATED``.

A delivery carries ``PAYPAL-TRANSMISSION-ID``, ``-TIME``, ``-SIG``, ``PAYPAL-CERT-URL`` and
``PAYPAL-AUTH-ALGO``. Rather than fetching PayPal's certificate and checking the RSA signature
here, the gateway asks PayPal (``POST /v1/notifications/verify-webhook-signature`` with those
headers, the connection's ``webhook_id`` and the event) and accepts only
``verification_status: SUCCESS``. A delivery that is not genuine is an ``InvalidRequest``; PayPal
being unreachable is the provider error it is (the endpoint answers 503 and PayPal redelivers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from panelql.domain import json_depth
from panelql.domain.status import InvoiceStatus, map_status
from panelql.providers.errors import InvalidRequest
from panelql.providers.paypal.mapping import INVOICE_STATUS, UNMAPPED_INVOICE_STATUS

HEADERS = {  # verify-webhook-signature field → delivery header
    "transmission_id": "paypal-transmission-id",
    "transmission_time": "paypal-transmission-time",
    "transmission_sig": "paypal-transmission-sig",
    "cert_url": "paypal-cert-url",
    "auth_algo": "paypal-auth-algo",
}

CAPTURE_EVENTS = frozenset({"PAYMENT.CAPTURE.COMPLETED", "PAYMENT.CAPTURE.DENIED",
                            "PAYMENT.CAPTURE.REFUNDED", "PAYMENT.CAPTURE.REVERSED"})

# A dispute opened (developer.paypal.com/docs/disputes/webhooks: CREATED, UPDATED, RESOLVED);
# only the opening matters to billing automation, which never lifts a dispute's suspension.
DISPUTE_EVENTS = frozenset({"CUSTOMER.DISPUTE.CREATED"})

Verify = Callable[[dict[str, Any]], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class InvoiceChange:
    id: str
    status: InvoiceStatus
    raw_status: str | None


@dataclass(frozen=True, slots=True)
class PayPalEvent:
    id: str
    type: str
    invoice: InvoiceChange | None  # for INVOICING.INVOICE.* events
    # PAYMENT.CAPTURE.*: the capture (COMPLETED, DENIED) or the refund (REFUNDED), as
    # payments_payment_v2.json 2.5 describes them; its ``custom_id`` names the invoice.
    payment: dict[str, Any] | None = None
    # CUSTOMER.DISPUTE.CREATED: the dispute (customer_disputes_v1.json @ec4d8f36 ``dispute``).
    dispute: dict[str, Any] | None = None


class PayPalWebhooks:
    """Verifies deliveries for one connection (option ``webhook_id``, from PayPal's dashboard)."""

    def __init__(self, connection: str, webhook_id: str, verify: Verify) -> None:
        self.connection = connection
        self.webhook_id = webhook_id
        self._verify = verify

    async def parse(self, body: bytes, headers: Mapping[str, str]) -> PayPalEvent:
        fields = {name: headers.get(header) for name, header in HEADERS.items()}
        missing = sorted(HEADERS[name] for name, value in fields.items() if not value)
        if missing:
            raise InvalidRequest(f"PayPal webhook lacks {', '.join(missing)}",
                                 provider=self.connection)
        try:
            event = json_depth.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidRequest("PayPal webhook body is not JSON",
                                 provider=self.connection) from exc
        if not isinstance(event, dict) or not isinstance(event.get("id"), str) \
                or not isinstance(event.get("event_type"), str):
            raise InvalidRequest("PayPal webhook is not an event", provider=self.connection)
        genuine = await self._verify({**fields, "webhook_id": self.webhook_id,
                                      "webhook_event": event})
        if not genuine:
            raise InvalidRequest("PayPal webhook rejected: PayPal did not verify its signature",
                                 provider=self.connection)
        return PayPalEvent(event["id"], event["event_type"], self._invoice(event),
                           self._payment(event), self._dispute(event))

    def _dispute(self, event: dict[str, Any]) -> dict[str, Any] | None:
        if event["event_type"] not in DISPUTE_EVENTS:
            return None
        resource = event.get("resource")
        if not isinstance(resource, dict) or not isinstance(resource.get("dispute_id"), str):
            raise InvalidRequest("PayPal webhook dispute lacks a dispute_id",
                                 provider=self.connection)
        return resource

    def _payment(self, event: dict[str, Any]) -> dict[str, Any] | None:
        if event["event_type"] not in CAPTURE_EVENTS:
            return None
        resource = event.get("resource")
        if not isinstance(resource, dict) or not isinstance(resource.get("id"), str):
            raise InvalidRequest("PayPal webhook payment lacks an id", provider=self.connection)
        return resource

    def _invoice(self, event: dict[str, Any]) -> InvoiceChange | None:
        if not event["event_type"].startswith("INVOICING.INVOICE."):
            return None
        resource = event.get("resource")
        # Deliveries carry the invoice as the resource itself or under resource.invoice.
        invoice = resource.get("invoice") if isinstance(resource, dict) and isinstance(
            resource.get("invoice"), dict) else resource
        if not isinstance(invoice, dict) or not isinstance(invoice.get("id"), str):
            raise InvalidRequest("PayPal webhook invoice lacks an id", provider=self.connection)
        raw = invoice.get("status")
        status = map_status(INVOICE_STATUS, raw, UNMAPPED_INVOICE_STATUS, source="paypal")
        return InvoiceChange(invoice["id"], status, raw if isinstance(raw, str) else None)

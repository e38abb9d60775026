"""Stripe webhooks: verify ``Stripe-Signature`` with the library, read ``invoice.*`` and payments.

Verification is ``stripe.Webhook.construct_event`` (HMAC-SHA256 over ``f"{t}.{payload}"`` with the
endpoint's signing secret, any ``v1`` may match, ``t`` within ``tolerance`` seconds). Every
failure, a bad signature as much as a body that is not an event, is an ``InvalidRequest``;
deduplicating event ids is the caller's job (the gateway stores processed ids).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import stripe

from panelql.domain.records import InvoiceRecord
from panelql.providers.config import ConnectionConfig
from panelql.providers.errors import InvalidRequest, UnexpectedResponse
from panelql.providers.stripe.mapping import invoice_record, timestamp

DEFAULT_TOLERANCE = 300
# Payment events whose object is not an invoice; the receiver finds the invoice they concern
# through the object's ``payment_intent`` (a Checkout Session, a Charge, or a Dispute: Stripe
# API reference "The Dispute object", stripe-python 16.1.0 ``Dispute.payment_intent``).
PAYMENT_EVENTS = frozenset({"checkout.session.completed",
                            "checkout.session.async_payment_succeeded", "charge.refunded",
                            "charge.dispute.created"})


@dataclass(frozen=True, slots=True)
class StripeEvent:
    id: str
    type: str
    created: datetime | None
    # The invoice as the event carries it, for ``invoice.*`` events; None for any other type.
    invoice: InvoiceRecord | None
    livemode: bool = False
    # The event's ``data.object`` for the payment events the gateway follows
    # (``checkout.session.completed``: a Checkout Session; ``charge.refunded``: a Charge).
    obj: dict[str, Any] | None = None


class StripeWebhooks:
    """Verifies deliveries for one connection (credential ``webhook_secret``)."""

    def __init__(self, connection: str, secret: str, *, tolerance: int = DEFAULT_TOLERANCE) -> None:
        self.connection = connection
        self._secret = secret
        self.tolerance = tolerance

    @classmethod
    def from_config(cls, config: ConnectionConfig) -> StripeWebhooks:
        tolerance = int(config.options.get("webhook_tolerance_seconds", DEFAULT_TOLERANCE))
        return cls(config.name, config.credential("webhook_secret"), tolerance=tolerance)

    def parse(self, payload: bytes | str, signature: str | None) -> StripeEvent:
        """Verify and decode one delivery; raise InvalidRequest when it is not genuine."""
        try:
            event = stripe.Webhook.construct_event(
                payload, signature, self._secret, tolerance=self.tolerance
            )
        except stripe.SignatureVerificationError as exc:
            reason = "stale timestamp" if "tolerance" in str(exc) else "bad signature"
            raise InvalidRequest(
                f"Stripe webhook rejected: {reason}", provider=self.connection,
                debug={"reason": exc.user_message},
            ) from exc
        except (ValueError, UnicodeDecodeError) as exc:  # not JSON, or a thin (v2) event
            raise InvalidRequest("Stripe webhook body is not an event",
                                 provider=self.connection) from exc
        parsed = self._event(event.to_dict())
        # The library refuses only timestamps older than the tolerance; one from the future
        # (a clock far off, or a signature made to outlive the window) is refused here.
        latest = time.time() + self.tolerance
        signed_at = _signed_at(signature)
        if (signed_at is not None and signed_at > latest) or (
                parsed.created is not None and parsed.created.timestamp() > latest):
            raise InvalidRequest("Stripe webhook rejected: timestamp in the future",
                                 provider=self.connection)
        return parsed

    def _event(self, raw: dict[str, Any]) -> StripeEvent:
        event_id, kind = raw.get("id"), raw.get("type")
        if not isinstance(event_id, str) or not isinstance(kind, str):
            raise InvalidRequest("Stripe webhook event lacks id or type", provider=self.connection)
        invoice = None
        if kind.startswith("invoice.") and kind != "invoice.upcoming":
            # invoice.upcoming carries a preview without an id; nothing to update.
            obj = (raw.get("data") or {}).get("object") if isinstance(raw.get("data"), dict) \
                else None
            try:
                invoice = invoice_record(obj, self.connection, self.connection)
            except UnexpectedResponse as exc:
                raise InvalidRequest("Stripe webhook invoice is malformed",
                                     provider=self.connection) from exc
        obj = None
        if kind in PAYMENT_EVENTS:
            data = raw.get("data")
            obj = data.get("object") if isinstance(data, dict) else None
            if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
                raise InvalidRequest(f"Stripe webhook {kind} carries no object",
                                     provider=self.connection)
        return StripeEvent(id=event_id, type=kind, created=timestamp(raw.get("created")),
                           invoice=invoice, livemode=bool(raw.get("livemode")), obj=obj)



def _signed_at(header: str | None) -> int | None:
    """``t`` of a ``Stripe-Signature`` header (``t=…,v1=…``); None when absent or bad."""
    for part in (header or "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            return int(value)
    return None

"""Signed webhooks from providers that can call back, turned into status events.

    POST /webhooks/{kind}/{connection}   one route per connection
    POST /webhooks/{kind}                shorthand when exactly one connection has that kind

A registry maps a provider kind to a *receiver* that verifies a delivery and converts it to
:class:`Change` records; the kind's SDK is imported only when a delivery for it arrives. The
endpoint itself is generic: it dedupes on the delivery's event id in ``webhook_events`` (a replay
answers 200 and does nothing), takes each resource's previous status from the snapshot table,
updates the snapshot (so the watcher does not announce the same change again) and publishes.

Payment events name no invoice status of their own: the receivers find the invoice they
concern and read it (Stripe ``checkout.session.completed`` first credits the session's payment
to its invoice, PayPal ``PAYMENT.CAPTURE.COMPLETED`` records the capture on it, both at most
once), and mark the change with ``data.payment`` (SUCCEEDED, FAILED, REFUNDED). That upstream
work happens before the delivery counts as processed, so a failure there answers 503 and the
provider delivers again.

Answers: 200 processed or duplicate; 400 bad signature, stale or future timestamp, not an
event, or JSON nested too deep (checked before any signature); 404 unknown or unconfigured
connection; 413 body too large; 429 when the sending address had 10 deliveries refused within
the last minute (no verification is attempted meanwhile); 503 when the provider could not be
asked to verify (PayPal) or to settle a payment, so that it redelivers.
"""

from __future__ import annotations

import importlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from panelql.db.snapshots import SnapshotRow, Snapshots
from panelql.domain import json_depth
from panelql.domain.records import InvoiceRecord
from panelql.domain.status import InvoiceStatus
from panelql.events.model import Source, StatusEvent, Topic
from panelql.events.watcher import EventRuntime
from panelql.providers.contract import Provider
from panelql.providers.errors import InvalidRequest, ProviderError

if TYPE_CHECKING:
    from panelql.providers.paypal.adapter import PayPalProvider
    from panelql.providers.paypal.webhooks import PayPalWebhooks
    from panelql.providers.stripe.adapter import StripeProvider
    from panelql.providers.stripe.webhooks import StripeWebhooks

log = logging.getLogger("panelql.events.webhooks")

MAX_BODY = 1024 * 1024  # Stripe events are a few KB; refuse anything absurd before parsing
# A source (client address, per connection) whose deliveries were refused this many times in
# the last minute gets 429 without verification: a PayPal verification is an upstream call,
# so forged deliveries would otherwise each cost one. Genuine senders are never refused.
REJECTIONS_PER_MINUTE = 10
WINDOW_SECONDS = 60.0


class RejectionThrottle:
    """Refused deliveries per (connection, source) over a sliding minute, in this process."""

    def __init__(self, limit: int = REJECTIONS_PER_MINUTE, window: float = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._refused: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        times = self._refused.setdefault(key, deque())
        cutoff = self._clock() - self.window
        while times and times[0] < cutoff:
            times.popleft()
        return times

    def wait(self, connection: str, source: str) -> float:
        """Seconds until this source may be heard again; 0 when it may now."""
        times = self._recent((connection, source))
        if len(times) < self.limit:
            if not times:
                self._refused.pop((connection, source), None)
            return 0.0
        return max(0.0, times[0] + self.window - self._clock())

    def refused(self, connection: str, source: str) -> None:
        if len(self._refused) > 10_000:  # a flood from many addresses: forget the oldest
            self._refused.clear()
        self._recent((connection, source)).append(self._clock())


@dataclass(frozen=True, slots=True)
class Change:
    topic: Topic
    resource_id: str
    status: str
    raw_status: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delivery:
    event_id: str
    changes: list[Change]


class Receiver(Protocol):
    async def receive(self, body: bytes, headers: Mapping[str, str]) -> Delivery:
        """Verify and convert one delivery; raise InvalidRequest when it is not genuine (and
        another ProviderError when the provider could not be asked)."""
        ...


# kind -> "module:factory"; the factory takes the connection's Provider and returns a Receiver.
RECEIVERS: dict[str, str] = {
    "stripe": "panelql.events.webhooks:stripe_receiver",
    "paypal": "panelql.events.webhooks:paypal_receiver",
}


def receiver_for(provider: Provider) -> Receiver | None:
    target = RECEIVERS.get(provider.kind)
    if target is None:
        return None
    module, _, name = target.partition(":")
    factory: Callable[[Provider], Receiver] = getattr(importlib.import_module(module), name)
    try:
        return factory(provider)
    except KeyError:  # the connection has no webhook secret: webhooks are not configured
        return None


# -- Stripe -----------------------------------------------------------------------------------
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

    async def receive(self, body: bytes, headers: Mapping[str, str]) -> Delivery:
        event = self.webhooks.parse(body, headers.get("stripe-signature"))
        invoice = event.invoice
        if event.obj is not None:
            invoice = await self._payment_invoice(event.type, event.id, event.obj)
        if invoice is None:
            return Delivery(event.id, [])
        data: dict[str, Any] = {"event_type": event.type, "event_id": event.id}
        if event.type in STRIPE_PAYMENT:
            data["payment"] = STRIPE_PAYMENT[event.type]
        return Delivery(event.id, [Change(Topic.INVOICE, invoice.id, invoice.status.value,
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


def stripe_receiver(provider: Provider) -> Receiver:
    from panelql.providers.stripe.adapter import StripeProvider
    from panelql.providers.stripe.webhooks import StripeWebhooks

    if not isinstance(provider, StripeProvider):
        raise KeyError("webhook_secret")
    return StripeReceiver(StripeWebhooks.from_config(provider.config), provider)


# -- PayPal -----------------------------------------------------------------------------------
PAYPAL_PAYMENT = {"PAYMENT.CAPTURE.COMPLETED": "SUCCEEDED", "PAYMENT.CAPTURE.DENIED": "FAILED",
                  "PAYMENT.CAPTURE.REFUNDED": "REFUNDED", "PAYMENT.CAPTURE.REVERSED": "REFUNDED"}


class PayPalReceiver:
    """``INVOICING.INVOICE.*`` and ``PAYMENT.CAPTURE.*`` deliveries, verified by PayPal (the
    adapter asks it). A completed capture of an invoice's order is recorded on the invoice
    here too, so the invoice is paid even when nobody called capturePayment's follow-up."""

    def __init__(self, webhooks: PayPalWebhooks, provider: PayPalProvider) -> None:
        self.webhooks = webhooks
        self.provider = provider

    async def receive(self, body: bytes, headers: Mapping[str, str]) -> Delivery:
        event = await self.webhooks.parse(body, headers)
        data: dict[str, Any] = {"event_type": event.type, "event_id": event.id}
        if event.invoice is not None:
            return Delivery(event.id, [Change(Topic.INVOICE, event.invoice.id,
                                              event.invoice.status.value,
                                              event.invoice.raw_status, data)])
        if event.payment is None or not isinstance(event.payment.get("custom_id"), str):
            return Delivery(event.id, [])  # not a payment for an invoice of the gateway's
        data["payment"] = PAYPAL_PAYMENT[event.type]
        if event.type == "PAYMENT.CAPTURE.COMPLETED":
            invoice = await self.provider.record_capture(event.payment)
        else:
            invoice = await self.provider.get_invoice(event.payment["custom_id"])
        if data["payment"] == "REFUNDED" and invoice.status is InvoiceStatus.PAID:
            # Refunded, and not (yet) recorded on the invoice: it is no longer simply paid.
            invoice.status = InvoiceStatus.PARTIALLY_REFUNDED
        return Delivery(event.id, [Change(Topic.INVOICE, invoice.id, invoice.status.value,
                                          invoice.raw_status, data)])


def paypal_receiver(provider: Provider) -> Receiver:
    from panelql.providers.paypal.adapter import PayPalProvider
    from panelql.providers.paypal.webhooks import PayPalWebhooks

    if not isinstance(provider, PayPalProvider):
        raise KeyError("webhook_id")
    webhook_id = str(provider.config.options["webhook_id"])  # KeyError: not configured
    return PayPalReceiver(PayPalWebhooks(provider.name, webhook_id, provider.verify_webhook),
                          provider)


# -- the endpoint -----------------------------------------------------------------------------
def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _connection(providers: Mapping[str, Provider], kind: str,
                name: str | None) -> Provider | None:
    if name is not None:
        provider = providers.get(name)
        return provider if provider is not None and provider.kind == kind else None
    of_kind = [p for p in providers.values() if p.kind == kind]
    return of_kind[0] if len(of_kind) == 1 else None


async def _read(request: Request, limit: int) -> bytes | None:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def ingest(runtime: EventRuntime, provider: Provider,
                 delivery: Delivery) -> list[StatusEvent] | None:
    """Dedupe, update snapshots and publish; None when the delivery was already processed."""
    rows = [SnapshotRow(c.topic.value, c.resource_id, c.status, c.raw_status)
            for c in delivery.changes]
    previous = await Snapshots(runtime.sessions).ingest(provider.name, delivery.event_id, rows)
    if previous is None:
        return None
    events = [StatusEvent(topic=c.topic, connection=provider.name, resource_id=c.resource_id,
                          status=c.status, previous=previous.get((c.topic.value, c.resource_id)),
                          source=Source.WEBHOOK, data={"raw_status": c.raw_status, **c.data})
              for c in delivery.changes]
    for event in events:
        await runtime.bus.publish(event)
    return events


def webhook_routes(runtime: Callable[[Request], EventRuntime]) -> list[Route]:
    """Routes for every kind in :data:`RECEIVERS`; ``runtime`` finds the gateway per request
    (connections are built in the lifespan, after the routes)."""

    throttle = RejectionThrottle()

    async def endpoint(request: Request) -> Response:
        kind = request.path_params["kind"]
        state = runtime(request)
        provider = _connection(state.providers, kind, request.path_params.get("connection"))
        receiver = receiver_for(provider) if provider is not None else None
        if provider is None or receiver is None:
            return _error(404, "NOT_FOUND", "no webhook endpoint for this connection")
        source = request.client.host if request.client else "unknown"
        wait = throttle.wait(provider.name, source)
        if wait > 0:
            response = _error(429, "RATE_LIMITED", "too many refused deliveries from this "
                                                   "address; try again later")
            response.headers["Retry-After"] = str(math.ceil(wait))
            return response
        body = await _read(request, MAX_BODY)
        if body is None:
            throttle.refused(provider.name, source)
            return _error(413, "TOO_LARGE", "webhook body too large")
        try:  # before any signature check: the stripe library parses without a depth limit
            json_depth.loads(body)
        except json_depth.TooDeep as exc:
            throttle.refused(provider.name, source)
            return _error(400, "INVALID_WEBHOOK", f"webhook body is {exc.msg}")
        except ValueError:
            pass  # not JSON at all: each receiver refuses that in its own words
        try:
            delivery = await receiver.receive(body, request.headers)
        except InvalidRequest as exc:
            throttle.refused(provider.name, source)
            log.warning("webhook rejected", extra={"connection": provider.name,
                                                   "reason": exc.message})
            return _error(400, "INVALID_WEBHOOK", exc.message)
        except ProviderError as exc:
            # The provider could not be asked to verify (PayPal): not accepted, not refused
            # for good; a 5xx makes the provider deliver it again later.
            log.warning("webhook not verified", extra={"connection": provider.name,
                                                       "reason": exc.message})
            return _error(503, "PROVIDER_UNAVAILABLE", "could not verify the delivery with the "
                          "provider; it will be redelivered")
        events = await ingest(state, provider, delivery)
        if events is None:
            return JSONResponse({"received": True, "duplicate": True})
        return JSONResponse({"received": True, "duplicate": False, "events": len(events)})

    return [Route("/webhooks/{kind}", endpoint, methods=["POST"]),
            Route("/webhooks/{kind}/{connection}", endpoint, methods=["POST"])]

"""PayPal adapter: Invoicing v2 over httpx with OAuth2 client credentials.

Auth: ``POST /v1/oauth2/token`` with HTTP Basic ``client_id:client_secret`` gives a bearer token,
cached until shortly before ``expires_in`` runs out and fetched again once when an API call
answers 401 (PayPal drops tokens early, e.g. after a credential rotation).

Batching: ``GET /v2/invoicing/invoices?page_size=100&total_required=true&fields=all`` returns full
invoices 100 at a time; ``customer_ids`` (recipient emails, PayPal has no customer ids) use
``POST /v2/invoicing/search-invoices`` with ``recipient_email``, one search per email.

Actions return no invoice (send → a link, cancel → 204, payments → a payment id), so each one
ends with a detail GET. PayPal answers business-rule refusals with 422; on actions those mean
"wrong state" and become Conflict.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Self

import httpx

from panelql.domain.records import (
    BillingCustomer,
    Collection,
    InvoiceRecord,
    InvoiceSpec,
    PaymentLink,
    PaymentOutcome,
)
from panelql.providers.bounded import Bounded
from panelql.providers.config import ConnectionConfig
from panelql.providers.contract import BillingProvider, Capability, Family, WebhookReceiver
from panelql.providers.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidRequest,
    NotFound,
)
from panelql.providers.http import ClientFactory, Upstream, expect
from panelql.providers.paypal.disputes import DisputeLinks
from panelql.providers.paypal.mapping import (
    FINALIZABLE,
    PAYABLE,
    REMINDABLE,
    SENDABLE,
    invoice_record,
    paypal_payments,
)
from panelql.providers.paypal.receiver import PayPalReceiver
from panelql.providers.paypal.webhooks import PayPalWebhooks

PAGE = 100
CONCURRENCY = 8
SINGLE_GET_LIMIT = 20
TOKEN_MARGIN = 60.0  # renew this many seconds before PayPal says the token expires
INVOICES = "/v2/invoicing/invoices"
ORDERS = "/v2/checkout/orders"
ZERO_DECIMAL = frozenset({"JPY", "HUF", "TWD"})  # PayPal takes no decimals for these


def read_error(body: Any) -> str | None:
    """PayPal errors: ``{"name","message","debug_id","details":[{field,issue,description}]}``;
    the OAuth endpoint answers ``{"error","error_description"}``."""
    if not isinstance(body, dict):
        return None
    details = body.get("details")
    if isinstance(details, list) and details and isinstance(details[0], dict):
        first = details[0]
        text = first.get("description") or first.get("issue")
        if isinstance(text, str):
            return text
    for key in ("message", "error_description"):
        if isinstance(body.get(key), str):
            return str(body[key])
    return None


class PayPalProvider(BillingProvider):
    kind = "paypal"
    families = frozenset({Family.BILLING})
    capabilities = frozenset(
        {Capability.INVOICE_READ, Capability.INVOICE_FINALIZE, Capability.INVOICE_PAY,
         Capability.INVOICE_VOID, Capability.INVOICE_SEND, Capability.INVOICE_CREATE,
         Capability.INVOICE_CHECKOUT, Capability.INVOICE_REFUND, Capability.PAYMENT_CAPTURE,
         Capability.BILLING_CUSTOMER}
    )
    # payInvoice records a payment made elsewhere (invoices.payments); PayPal's API cannot
    # charge a payer's saved wallet for an invoice.
    pay_collection = Collection.RECORDED_OUT_OF_BAND

    def __init__(self, config: ConnectionConfig, upstream: Upstream, *, client_id: str,
                 client_secret: str) -> None:
        super().__init__(config)
        self.api = upstream
        self._basic = httpx.BasicAuth(client_id, client_secret)
        self._token: str | None = None
        self._expires = 0.0
        self._token_lock = asyncio.Lock()
        self._limit = Bounded(CONCURRENCY)
        # How a payment recorded by payInvoice is labelled (payment_method enum).
        self.payment_method = str(config.options.get("payment_method", "OTHER"))
        self.notify_recipient = bool(config.options.get("notify_recipient", True))

    @classmethod
    def from_config(cls, config: ConnectionConfig, clients: ClientFactory) -> Self:
        client = clients.build(config.base_url.rstrip("/"), timeout=config.timeout_seconds)
        return cls(config, Upstream(client, config.name, read_error),
                   client_id=config.credential("client_id"),
                   client_secret=config.credential("client_secret"))

    # -- webhooks -----------------------------------------------------------------------------
    def webhook_receiver(self) -> WebhookReceiver | None:
        if "webhook_id" not in self.config.options:  # webhooks are not configured
            return None
        webhook_id = str(self.config.options["webhook_id"])
        return PayPalReceiver(PayPalWebhooks(self.name, webhook_id, self.verify_webhook), self)

    async def verify_webhook(self, fields: dict[str, Any]) -> bool:
        """PayPal's own check of a delivery (providers/paypal/webhooks.py)."""
        body = await self._json("POST", "/v1/notifications/verify-webhook-signature",
                                json=fields)
        expect(isinstance(body, dict) and isinstance(body.get("verification_status"), str),
               self.name, "verification answer")
        return bool(body["verification_status"] == "SUCCESS")

    # -- auth ---------------------------------------------------------------------------------
    async def _bearer(self) -> str:
        async with self._token_lock:
            if self._token is None or time.monotonic() >= self._expires:
                body = await self.api.json(
                    "POST", "/v1/oauth2/token", auth=self._basic,
                    data={"grant_type": "client_credentials"},
                )
                expect(isinstance(body, dict) and isinstance(body.get("access_token"), str),
                       self.name, "token answer")
                ttl = body.get("expires_in")
                ttl = float(ttl) if isinstance(ttl, int | float) else 300.0
                self._token = body["access_token"]
                self._expires = time.monotonic() + max(0.0, ttl - TOKEN_MARGIN)
            assert self._token is not None
            return self._token

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        extra = dict(kwargs.pop("headers", {}))
        if method == "POST":  # PayPal replays the first result for a repeated request id
            extra.setdefault("PayPal-Request-Id", str(uuid.uuid4()))
        for attempt in (1, 2):
            token = await self._bearer()
            headers = {"Authorization": f"Bearer {token}", **extra}
            try:
                return await self.api.json(method, path, headers=headers, **kwargs)
            except AuthenticationFailed as exc:
                if exc.upstream_status != 401 or attempt == 2:
                    raise
                self._drop_token(token)
        raise AssertionError("unreachable")

    def _drop_token(self, token: str) -> None:
        if self._token == token:  # another task may have renewed it already
            self._token = None

    async def check_health(self) -> None:
        body = await self._json("GET", INVOICES, params={"page": 1, "page_size": 1})
        expect(isinstance(body, dict), self.name, "invoice list")

    # -- reads --------------------------------------------------------------------------------
    async def list_invoices(
        self, *, customer_ids: Sequence[str] | None = None
    ) -> list[InvoiceRecord]:
        if customer_ids is None:
            return await self._pages("GET", INVOICES, None)
        found = await self._limit.gather(
            self._pages("POST", "/v2/invoicing/search-invoices", {"recipient_email": email})
            for email in dict.fromkeys(customer_ids))
        return [invoice for page in found for invoice in page]

    async def _pages(self, method: str, path: str, search: dict[str, Any] | None
                     ) -> list[InvoiceRecord]:
        invoices: list[InvoiceRecord] = []
        page = 1
        while True:
            params = {"page": page, "page_size": PAGE, "total_required": "true"}
            if search is None:
                params["fields"] = "all"
            body = await self._json(method, path, params=params, json=search)
            expect(isinstance(body, dict), self.name, "invoice list")
            items = body.get("items", [])  # an empty result has no "items" at all
            expect(isinstance(items, list), self.name, "invoice list")
            invoices.extend(self._record(item) for item in items)
            pages = body.get("total_pages")
            if not items or not isinstance(pages, int) or page >= pages:
                return invoices
            page += 1

    async def get_invoices(self, ids: Sequence[str]) -> Mapping[str, InvoiceRecord]:
        wanted = list(dict.fromkeys(ids))
        if len(wanted) > SINGLE_GET_LIMIT:
            return await super().get_invoices(wanted)
        found = await asyncio.gather(*(self._find(i) for i in wanted))
        return {record.id: record for record in found if record is not None}

    async def _find(self, invoice_id: str) -> InvoiceRecord | None:
        async with self._limit:
            try:
                return await self.get_invoice(invoice_id)
            except NotFound:
                return None

    async def get_invoice(self, invoice_id: str) -> InvoiceRecord:
        return self._record(await self._json("GET", f"{INVOICES}/{invoice_id}"))

    def _record(self, raw: Any) -> InvoiceRecord:
        return invoice_record(raw, self.name, self.name)

    # -- lifecycle ----------------------------------------------------------------------------
    async def finalize_invoice(self, invoice_id: str) -> InvoiceRecord:
        """PayPal has no finalize: a send that emails nobody makes a draft payable (UNPAID)."""
        await self._require(invoice_id, FINALIZABLE, "finalized")
        await self._action(invoice_id, "send",
                           {"send_to_recipient": False, "send_to_invoicer": False})
        return await self.get_invoice(invoice_id)

    async def send_invoice(self, invoice_id: str) -> InvoiceRecord:
        """Drafts are sent; invoices already out get a reminder, as Stripe re-sends open ones."""
        current = await self._require(invoice_id, SENDABLE | REMINDABLE, "sent")
        if current in SENDABLE:
            await self._action(invoice_id, "send", {"send_to_recipient": True,
                                                    "send_to_invoicer": False})
        else:
            await self._action(invoice_id, "remind", {})
        return await self.get_invoice(invoice_id)

    async def pay_invoice(self, invoice_id: str) -> InvoiceRecord:
        """Record a payment made outside PayPal for the whole amount due (no amount = all)."""
        await self._action(invoice_id, "payments", {
            "method": self.payment_method,
            "payment_date": datetime.now(UTC).date().isoformat(),
            "note": "Recorded by PanelQL",
        })
        return await self.get_invoice(invoice_id)

    async def void_invoice(self, invoice_id: str) -> InvoiceRecord:
        await self._action(invoice_id, "cancel", {"send_to_recipient": self.notify_recipient,
                                                  "send_to_invoicer": False})
        return await self.get_invoice(invoice_id)

    async def _require(self, invoice_id: str, allowed: frozenset[str], verb: str) -> str:
        """Check state where PayPal's own answer would not be a refusal (a re-send succeeds)."""
        record = await self.get_invoice(invoice_id)
        raw = record.raw_status or ""
        if raw not in allowed:
            raise Conflict(f"invoice {invoice_id} is {raw or 'in an unknown state'} and cannot "
                           f"be {verb}", current_status=raw, provider=self.name)
        return raw

    async def _action(self, invoice_id: str, action: str, body: dict[str, Any]) -> None:
        try:
            await self._json("POST", f"{INVOICES}/{invoice_id}/{action}", json=body)
        except InvalidRequest as exc:
            if exc.upstream_status != 422:
                raise
            raise Conflict(exc.message, provider=self.name, debug=exc.debug,
                           upstream_status=422) from exc

    # -- money in and out (Invoicing v2 2.3, Orders v2 2.13, Payments v2 2.5) ----------------
    async def ensure_customer(self, customer: BillingCustomer, known_id: str | None,
                              key: str | None) -> str:
        """PayPal Invoicing has no customer objects: an invoice names its recipient by email,
        and that email is the customer id the gateway links (nothing is created upstream)."""
        return customer.email

    async def create_invoice(self, spec: InvoiceSpec, key: str | None) -> InvoiceRecord:
        """``POST /v2/invoicing/invoices``: a DRAFT with the recipient, items, due date and
        note (invoicing_v2.json ``invoice``)."""
        currency = spec.currency.upper()
        detail: dict[str, Any] = {"currency_code": currency}
        if spec.external_ref:
            detail["reference"] = spec.external_ref
        if spec.memo:
            detail["note"] = spec.memo
        if spec.due_date is not None:
            detail["payment_term"] = {"due_date": spec.due_date.date().isoformat()}
        billing: dict[str, Any] = {"email_address": spec.customer_id}
        if spec.customer.name:
            given, _, surname = spec.customer.name.partition(" ")
            billing["name"] = {"given_name": given, **({"surname": surname} if surname else {})}
        body = {
            "detail": detail, "primary_recipients": [{"billing_info": billing}],
            "items": [{"name": line.description[:200], "quantity": str(line.quantity),
                       "unit_amount": _money(line.unit_amount, currency)}
                      for line in spec.lines],
        }
        created = await self._json("POST", INVOICES, json=body,
                                   headers=_request_id(key, "invoice",
                                                       {"Prefer": "return=representation"}))
        if isinstance(created, dict) and isinstance(created.get("detail"), dict):
            return self._record(created)
        # Without the representation PayPal answers a link to the new invoice.
        href = created.get("href") if isinstance(created, dict) else None
        expect(isinstance(href, str), self.name, "created invoice link")
        return await self.get_invoice(str(href).rstrip("/").rsplit("/", 1)[-1])

    async def checkout(self, invoice: InvoiceRecord, return_url: str, cancel_url: str,
                       key: str | None) -> PaymentLink:
        """An Orders v2 order for what the invoice still owes; the payer approves it at the
        ``payer-action`` link, then :meth:`capture_payment` takes the money."""
        if (invoice.raw_status or "") not in PAYABLE:
            raise Conflict(f"invoice {invoice.id} is {invoice.raw_status} and takes no payment",
                           current_status=invoice.raw_status, provider=self.name)
        due = invoice.amount_due
        body = {
            "intent": "CAPTURE",
            "purchase_units": [{
                "reference_id": invoice.id, "custom_id": invoice.id,
                "description": f"Invoice {invoice.number or invoice.id}"[:127],
                "amount": _money(due.amount, due.currency)}],
            "payment_source": {"paypal": {"experience_context": {
                "return_url": return_url, "cancel_url": cancel_url,
                "user_action": "PAY_NOW", "shipping_preference": "NO_SHIPPING"}}},
        }
        order = await self._json("POST", ORDERS, json=body,
                                 headers=_request_id(key, "order"))
        expect(isinstance(order, dict) and isinstance(order.get("id"), str), self.name, "order")
        links = {x.get("rel"): x.get("href") for x in order.get("links") or []
                 if isinstance(x, dict)}
        url = links.get("payer-action") or links.get("approve")
        expect(isinstance(url, str), self.name, "order approval link")
        return PaymentLink(url=str(url), kind="ORDER", id=order["id"])

    async def order_invoice(self, order_id: str) -> str | None:
        """The invoice an order pays (its purchase unit's ``custom_id``), None for others."""
        order = await self._json("GET", f"{ORDERS}/{order_id}")
        expect(isinstance(order, dict), self.name, "order")
        units = order.get("purchase_units") or [{}]
        custom = units[0].get("custom_id") if isinstance(units[0], dict) else None
        return custom if isinstance(custom, str) else None

    async def capture_payment(self, order_id: str, key: str | None) -> PaymentOutcome:
        """``POST /v2/checkout/orders/{id}/capture``, then the capture recorded on the invoice
        as a PAYPAL payment (:meth:`record_capture`). A refusal (ORDER_NOT_APPROVED,
        ORDER_ALREADY_CAPTURED, a declined instrument) is a Conflict."""
        try:
            order = await self._json("POST", f"{ORDERS}/{order_id}/capture", json={},
                                     headers=_request_id(key, "capture"))
        except InvalidRequest as exc:
            if exc.upstream_status != 422:
                raise
            raise Conflict(exc.message, provider=self.name, debug=exc.debug,
                           upstream_status=422) from exc
        capture = _first_capture(order)
        expect(capture is not None, self.name, "order capture")
        assert capture is not None
        invoice_id = capture.get("custom_id")
        expect(isinstance(invoice_id, str), self.name, "capture custom_id")
        if capture.get("status") not in ("COMPLETED", "PENDING"):
            raise Conflict(f"PayPal declined the payment (capture {capture.get('status')})",
                           provider=self.name, current_status=str(capture.get("status")))
        invoice = await self.record_capture(capture)
        return PaymentOutcome(invoice=invoice, collection=Collection.CAPTURED_ORDER,
                              payment_id=str(capture["id"]))

    async def record_capture(self, capture: dict[str, Any]) -> InvoiceRecord:
        """Record a completed capture on its invoice (``custom_id``) as a PAYPAL payment with
        the capture id as ``payment_id``, once: the webhook and the mutation both call this,
        and whoever comes second finds the capture among the invoice's payments."""
        invoice_id = str(capture.get("custom_id"))
        raw = await self._json("GET", f"{INVOICES}/{invoice_id}")
        done = {pid for pid, _ in paypal_payments(raw)}
        if capture.get("status") == "COMPLETED" and capture.get("id") not in done \
                and isinstance(raw, dict) and raw.get("status") in PAYABLE:
            amount = capture.get("amount")
            # Conflict: recorded meanwhile (the webhook and the mutation met); read it below.
            with contextlib.suppress(Conflict):
                await self._action(invoice_id, "payments", {
                    "method": "PAYPAL", "payment_id": str(capture.get("id"))[:22],
                    "payment_date": datetime.now(UTC).date().isoformat(),
                    **({"amount": amount} if isinstance(amount, dict) else {}),
                })
            raw = await self._json("GET", f"{INVOICES}/{invoice_id}")
        return self._record(raw)

    async def disputed_invoices(self, dispute: dict[str, Any]) -> list[InvoiceRecord]:
        """The invoices a dispute's transactions paid (providers/paypal/disputes.py); none
        when it concerns money the gateway did not invoice."""
        found = await DisputeLinks(self.name, self._json).invoices(dispute)
        return [self._record(raw) for raw in found]

    async def refund_invoice(self, invoice: InvoiceRecord, amount: Decimal,
                             key: str | None) -> InvoiceRecord:
        """Money paid through PayPal goes back through ``/v2/payments/captures/{id}/refund``;
        the refund is then recorded on the invoice (``invoices/{id}/refunds``), which turns it
        REFUNDED or PARTIALLY_REFUNDED. An invoice paid elsewhere only gets the record."""
        raw = await self._json("GET", f"{INVOICES}/{invoice.id}")
        currency = invoice.total.currency
        left = amount
        for n, (capture_id, paid) in enumerate(paypal_payments(raw)):
            part = min(left, paid)
            if part <= 0:
                continue
            try:
                await self._json("POST", f"/v2/payments/captures/{capture_id}/refund",
                                 json={"amount": _money(part, currency),
                                       "custom_id": invoice.id},
                                 headers=_request_id(key, f"refund-{n}"))
            except InvalidRequest as exc:
                if exc.upstream_status != 422:
                    raise
                raise Conflict(exc.message, provider=self.name, debug=exc.debug,
                               upstream_status=422) from exc
            left -= part
        method = "PAYPAL" if left < amount else self.payment_method
        await self._action(invoice.id, "refunds", {
            "method": method, "refund_date": datetime.now(UTC).date().isoformat(),
            "amount": _money(amount, currency)})
        return await self.get_invoice(invoice.id)


def _first_capture(order: Any) -> dict[str, Any] | None:
    units = order.get("purchase_units") if isinstance(order, dict) else None
    for unit in units or []:
        payments = unit.get("payments") if isinstance(unit, dict) else None
        for capture in (payments or {}).get("captures") or []:
            if isinstance(capture, dict) and isinstance(capture.get("id"), str):
                return capture
    return None


def _money(value: Decimal, currency: str) -> dict[str, str]:
    places = Decimal("1") if currency.upper() in ZERO_DECIMAL else Decimal("0.01")
    if value != value.quantize(places):
        raise InvalidRequest(f"{value} has more decimals than {currency.upper()} allows",
                             fields={"amount": "too many decimals"})
    return {"currency_code": currency.upper(), "value": str(value.quantize(places))}


def _request_id(key: str | None, step: str, headers: dict[str, str] | None = None
                ) -> dict[str, str]:
    """``PayPal-Request-Id`` for one step of a mutation: PayPal answers a repeat with the
    first result (None: a fresh id, as for every POST)."""
    out = dict(headers or {})
    if key:
        out["PayPal-Request-Id"] = f"{key}:{step}"
    return out

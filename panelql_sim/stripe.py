"""Simulated Stripe API (invoices, customers, events), as stripe-python 16.1 reads it.

Speaks what stripe-python expects: form-encoded bodies with bracket notation (``a[b]=c``),
``{"object":"list","data":[…],"has_more":…,"url":…}`` lists with ``starting_after`` /
``ending_before`` cursors (newest first), ``{"error":{type,code,message,param}}`` errors, Bearer
auth with a secret key, and invoice objects with the fields the library models. Lifecycle:
``draft -finalize-> open -pay-> paid``, ``open -void-> void``, ``open -mark_uncollectible->
uncollectible -pay|void->``; bank-debit customers settle a payment after ``transition_seconds``.
Every transition records an ``invoice.*`` event, signed like Stripe's and optionally POSTed to
``webhook_url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast
from urllib.parse import parse_qsl

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from panelql_sim.framework import SIM_PREFIX, Knobs, SimPanel, json_body

DAY = 86400
# The API version stripe-python 16.1.0 pins; the payment objects below (Checkout Session,
# PaymentIntent, Charge, InvoicePayment, CreditNote, Refund) follow that version's resources
# in the library (stripe/checkout/_session.py, _invoice_payment.py, _credit_note.py, …).
API_VERSION = "2026-10-28.endive"
ZERO_DECIMAL = {"jpy", "krw", "vnd", "clp"}


def sign_payload(payload: str, secret: str, timestamp: int | None = None) -> str:
    """``Stripe-Signature`` for ``payload``: ``t=…,v1=HMAC_SHA256(secret, f"{t}.{payload}")``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def parse_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Decode Stripe's bracket notation: ``a[b]=1&c[]=x&c[]=y&d[0]=z`` → nested dicts/lists."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node: Any = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if last:
                    node.append(value)
                    break
                node.append({})
                node = node[-1]
                continue
            if last:
                node[part] = value
            else:
                nxt = parts[i + 1]
                node = node.setdefault(part, [] if nxt == "" else {})
    return out


def error(status: int, message: str, *, type_: str = "invalid_request_error",
          code: str | None = None, param: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"message": message, "type": type_}
    if code:
        body["code"] = code
        body["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param:
        body["param"] = param
    return JSONResponse({"error": body}, status_code=status)


@dataclass
class Line:
    id: str
    description: str
    quantity: int
    unit_amount: int

    @property
    def amount(self) -> int:
        return self.quantity * self.unit_amount


@dataclass
class Invoice:
    id: str
    customer: dict[str, Any]
    currency: str
    created: int
    collection_method: str
    lines: list[Line]
    status: str = "draft"
    number: str | None = None
    due_date: int | None = None
    amount_paid: int = 0
    attempt_count: int = 0
    transitions: dict[str, int | None] = field(default_factory=lambda: {
        "finalized_at": None, "marked_uncollectible_at": None, "paid_at": None,
        "voided_at": None})
    metadata: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    credited_after_payment: int = 0  # post_payment_credit_notes_amount

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)

    def to_json(self) -> dict[str, Any]:
        finalized = self.status != "draft"
        due = 0 if self.status == "void" else self.total
        remaining = 0 if self.status in ("paid", "void") else self.total - self.amount_paid
        hosted = f"https://invoice.stripe.com/i/acct_sim/test_{self.id}" if finalized else None
        lines: list[dict[str, Any]] = [{
            "id": line.id, "object": "line_item", "amount": line.amount,
            "currency": self.currency, "description": line.description, "invoice": self.id,
            "livemode": False, "metadata": {}, "quantity": line.quantity,
            "period": {"start": self.created, "end": self.created + 30 * DAY},
            "pricing": {"type": "price_details", "unit_amount_decimal": str(line.unit_amount)},
            "discountable": True, "discount_amounts": [], "discounts": [], "taxes": [],
            "parent": None, "subtotal": line.amount,
        } for line in self.lines]
        return {
            "id": self.id, "object": "invoice", "account_country": "US",
            "account_name": "PanelQL Hosting (sim)", "amount_due": due,
            "amount_paid": self.amount_paid, "amount_overpaid": 0, "amount_remaining": remaining,
            "amount_shipping": 0, "attempt_count": self.attempt_count,
            "attempted": self.attempt_count > 0, "auto_advance": not finalized,
            "automatic_tax": {"enabled": False, "liability": None, "status": None},
            "billing_reason": "manual", "collection_method": self.collection_method,
            "created": self.created, "currency": self.currency, "custom_fields": None,
            "customer": self.customer["id"], "customer_email": self.customer["email"],
            "customer_name": self.customer["name"], "description": self.description,
            "discounts": [], "due_date": self.due_date,
            "effective_at": self.transitions["finalized_at"], "ending_balance": 0 if finalized
            else None, "footer": None, "hosted_invoice_url": hosted,
            "invoice_pdf": f"{hosted}/pdf" if hosted else None, "issuer": {"type": "self"},
            "last_finalization_error": None, "latest_revision": None,
            "lines": {"object": "list", "data": lines, "has_more": False,
                      "total_count": len(lines), "url": f"/v1/invoices/{self.id}/lines"},
            "livemode": False, "metadata": self.metadata, "next_payment_attempt": None,
            "number": self.number, "on_behalf_of": None, "parent": None,
            "payment_settings": {"payment_method_types": None},
            "period_end": self.created, "period_start": self.created - 30 * DAY,
            "post_payment_credit_notes_amount": self.credited_after_payment,
            "pre_payment_credit_notes_amount": 0,
            "receipt_number": None, "starting_balance": 0, "statement_descriptor": None,
            "status": self.status, "status_transitions": dict(self.transitions),
            "subtotal": self.total, "subtotal_excluding_tax": self.total,
            "test_clock": None, "total": self.total, "total_discount_amounts": [],
            "total_excluding_tax": self.total, "total_taxes": [],
            "webhooks_delivered_at": self.created,
        }


class StripeSim(SimPanel):
    request_id_header = "Request-Id"
    name = "stripe"

    def __init__(
        self, *, api_key: str = "sk_test_demo", webhook_secret: str = "whsec_demo",
        customers: int = 8, invoices: int = 36, webhook_url: str | None = None,
        seed: int = 1, knobs: Knobs | None = None,
    ) -> None:
        super().__init__(seed=seed, knobs=knobs)
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.customers: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, Invoice] = {}
        self.events: list[dict[str, Any]] = []
        self.idempotent: dict[str, tuple[tuple[str, bytes], int, bytes]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.invoice_payments: dict[str, dict[str, Any]] = {}
        self._next_number = 1
        self.clock_offset = 0  # seconds the clock was advanced (POST /__sim/clock)
        self._seed(customers, invoices)
        # Objects created from now on get unpredictable ids, as Stripe's are: a restarted
        # simulator must not hand out the ids of a previous run's customers and invoices to a
        # gateway whose database still holds them (links, automation runs).
        self._fresh = secrets.SystemRandom()

    # -- data ---------------------------------------------------------------------------------
    def _id(self, prefix: str) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        pick = getattr(self, "_fresh", self.random)  # seeded data stays reproducible
        return prefix + "1" + "".join(pick.choice(alphabet) for _ in range(23))

    def _seed(self, customers: int, invoices: int) -> None:
        currencies = ["usd", "usd", "eur", "usd", "jpy", "gbp", "usd", "eur"]
        # card: pays at once; declined: 402; bank: settles later; None: no payment method
        methods = ["card", "card", "card", "bank", "card", "declined", None, "card"]
        for i in range(customers):
            cid = self._id("cus_")
            self.customers[cid] = {
                "id": cid, "object": "customer", "email": f"customer{i + 1}@example.com",
                "name": f"Customer {i + 1}", "currency": currencies[i % len(currencies)],
                "created": int(time.time()) - 400 * DAY, "livemode": False, "metadata": {},
                "delinquent": False, "_method": methods[i % len(methods)],
                "invoice_settings": {"default_payment_method":
                                     f"pm_{methods[i % len(methods)]}_{i}"
                                     if methods[i % len(methods)] else None},
            }
        states = ["paid", "open", "draft", "paid", "open_overdue", "void", "uncollectible",
                  "paid", "open", "draft", "paid", "open_overdue"]
        customer_ids = list(self.customers)
        now = int(time.time())
        for i in range(invoices):
            customer = self.customers[customer_ids[i % len(customer_ids)]]
            currency = customer["currency"]
            unit = 1500 if currency in ZERO_DECIMAL else 1999
            invoice = self.add_invoice(
                customer["id"], [("VPS 2 GB (monthly)", 1, unit * (1 + i % 3)),
                                 ("Extra IPv4 address", 1 + i % 2, unit // 4)],
                created=now - (invoices - i) * DAY,
                collection_method="send_invoice" if i % 3 else "charge_automatically",
            )
            invoice.metadata["external_ref"] = f"whmcs-{1000 + i}"
            # shift by round so every customer gets a mix of states
            state = states[(i + i // len(customer_ids)) % len(states)]
            if state == "draft":
                continue
            self._finalize(invoice, record=False)
            if state == "open_overdue":
                invoice.due_date = now - 5 * DAY
            elif state == "paid":
                self._mark_paid(invoice, record=False)
            elif state == "void":
                invoice.status, invoice.transitions["voided_at"] = "void", now
            elif state == "uncollectible":
                invoice.status = "uncollectible"
                invoice.transitions["marked_uncollectible_at"] = now

    def add_customer(self, name: str, email: str, method: str | None = "card") -> str:
        """A new customer (method: card, declined, bank or None), for tests and the demo."""
        cid = self._id("cus_")
        self.customers[cid] = {
            "id": cid, "object": "customer", "email": email, "name": name, "currency": "usd",
            "created": int(time.time()), "livemode": False, "metadata": {}, "delinquent": False,
            "_method": method, "invoice_settings": {
                "default_payment_method": f"pm_{method}_{cid[-6:]}" if method else None}}
        return cid

    # -- the clock ----------------------------------------------------------------------------
    def advance_clock(self, seconds: int) -> list[dict[str, Any]]:
        """Let ``seconds`` pass, as advancing a Stripe test clock does. The gateway reads dates
        against its own clock, so time passing here means every date the simulator holds
        moves that far into the past; an open invoice whose due date is passed by it gets
        Stripe's ``invoice.overdue`` event (delivered to ``webhook_url`` when set)."""
        now = int(time.time())
        events = []
        for invoice in list(self.invoices.values()):
            was_due = invoice.due_date is not None and invoice.due_date <= now
            invoice.created -= seconds
            if invoice.due_date is not None:
                invoice.due_date -= seconds
            invoice.transitions = {k: (v - seconds if v is not None else None)
                                   for k, v in invoice.transitions.items()}
            if invoice.status == "open" and not was_due and invoice.due_date is not None \
                    and invoice.due_date <= now:
                events.append(self.record_event("invoice.overdue", invoice))
        for customer in self.customers.values():
            customer["created"] -= seconds
        self.clock_offset += seconds
        return events

    async def clock(self, request: Request) -> Response:
        """``POST /__sim/clock {"advance_days": 4}`` (or ``advance_seconds``): see
        :meth:`advance_clock`. ``GET`` tells how far it was advanced."""
        if request.method == "POST":
            body = await json_body(request)
            try:
                seconds = int(float(body.get("advance_seconds", 0))
                              + float(body.get("advance_days", 0)) * DAY)
            except (TypeError, ValueError):
                return JSONResponse({"error": "advance_days / advance_seconds must be numbers"},
                                    status_code=400)
            if seconds < 0:
                return JSONResponse({"error": "the clock only moves forward"}, status_code=400)
            events = self.advance_clock(seconds)
            return JSONResponse({"offset_seconds": self.clock_offset, "events": [
                {"id": e["id"], "type": e["type"], "invoice": e["data"]["object"]["id"],
                 "number": e["data"]["object"]["number"]} for e in events]})
        return JSONResponse({"offset_seconds": self.clock_offset})

    async def open_dispute(self, request: Request) -> Response:
        """``POST /__sim/disputes {"payment_intent": "pi_…"}``: the cardholder disputes the
        charge, as Stripe's test card 4000 0000 0000 0259 does some time after a payment; the
        ``charge.dispute.created`` event carries a Dispute object (Stripe API reference, "The
        Dispute object": ``charge``, ``payment_intent``, ``amount``, ``reason``, ``status``;
        stripe-python 16.1.0 ``Dispute``)."""
        body = await json_body(request)
        intent = self.intents.get(str(body.get("payment_intent")))
        if intent is None:
            return JSONResponse({"error": "unknown payment_intent"}, status_code=404)
        charge = self.charges[intent["latest_charge"]]
        dispute = {
            "id": "dp_" + self._id("")[1:], "object": "dispute", "amount": charge["amount"],
            "charge": charge["id"], "currency": charge["currency"],
            "payment_intent": intent["id"], "reason": str(body.get("reason", "fraudulent")),
            "status": "needs_response", "is_charge_refundable": False,
            "created": int(time.time()), "livemode": False, "metadata": {}}
        charge["disputed"] = True
        event = self.record_event("charge.dispute.created", dispute)
        return JSONResponse({"dispute": dispute["id"], "event": event["id"]})

    def add_invoice(self, customer_id: str, lines: list[tuple[str, int, int]], *,
                    created: int | None = None,
                    collection_method: str = "send_invoice") -> Invoice:
        customer = self.customers[customer_id]
        invoice = Invoice(
            id=self._id("in_"), customer=customer, currency=customer["currency"] or "usd",
            created=created or int(time.time()), collection_method=collection_method,
            lines=[Line(self._id("il_"), d, q, a) for d, q, a in lines],
        )
        self.invoices[invoice.id] = invoice
        return invoice

    def _finalize(self, invoice: Invoice, *, record: bool = True) -> None:
        invoice.status = "open"
        invoice.number = f"SIM-{self._next_number:04d}"
        self._next_number += 1
        invoice.transitions["finalized_at"] = int(time.time())
        if invoice.collection_method == "send_invoice":
            invoice.due_date = invoice.created + 30 * DAY
        if record:
            self.record_event("invoice.finalized", invoice)

    def _mark_paid(self, invoice: Invoice, *, record: bool = True) -> None:
        invoice.status, invoice.amount_paid = "paid", invoice.total
        invoice.transitions["paid_at"] = int(time.time())
        if record:
            self.record_event("invoice.paid", invoice)

    # -- events -------------------------------------------------------------------------------
    def record_event(self, kind: str, obj: Invoice | dict[str, Any]) -> dict[str, Any]:
        """Record (and deliver, with ``webhook_url``) an event about ``obj``: an invoice, or
        any other object as its JSON (a Checkout Session, a Charge)."""
        body = obj.to_json() if isinstance(obj, Invoice) else dict(obj)
        event = {
            "id": self._id("evt_"), "object": "event", "api_version": API_VERSION,
            "created": int(time.time()), "data": {"object": body},
            "livemode": False, "pending_webhooks": 1 if self.webhook_url else 0,
            "request": {"id": None, "idempotency_key": None}, "type": kind,
        }
        self.events.append(event)
        if self.webhook_url:
            asyncio.get_running_loop().create_task(self._deliver(event))
        return event

    def signed(self, event: dict[str, Any], timestamp: int | None = None) -> tuple[str, str]:
        """(body, Stripe-Signature header) for ``event``, as Stripe would deliver it."""
        body = json.dumps(event, separators=(",", ":"))
        return body, sign_payload(body, self.webhook_secret, timestamp)

    async def _deliver(self, event: dict[str, Any]) -> None:
        assert self.webhook_url is not None
        body, header = self.signed(event)
        async with httpx.AsyncClient(timeout=10) as client:
            # Stripe retries failed deliveries later; the simulator just drops them.
            with contextlib.suppress(httpx.HTTPError):
                await client.post(self.webhook_url, content=body, headers={
                    "Stripe-Signature": header, "Content-Type": "application/json"})

    # -- HTTP ---------------------------------------------------------------------------------
    def authorize(self, request: Request) -> Response | None:
        if request.url.path.startswith("/c/pay/"):
            return None  # the hosted page is the customer's browser, not an API client
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return error(401, "You did not provide an API key. You need to provide your API "
                         "key in the Authorization header, using Bearer auth.")
        key = auth[len("Bearer "):]
        if key != self.api_key:
            return error(401, f"Invalid API Key provided: {key[:8]}{'*' * 8}{key[-4:]}")
        return None

    def rate_limited(self, retry_after: int) -> Response:
        response = error(429, "Request rate limit exceeded. Learn more about rate limits "
                         "here https://stripe.com/docs/rate-limits.", code="rate_limit")
        response.headers["Stripe-Should-Retry"] = "false"
        return response

    def server_error(self) -> Response:
        return error(500, "An unknown error occurred", type_="api_error")

    def routes(self) -> list[BaseRoute]:
        return [Route(r.path, self._once(r.endpoint), methods=list(r.methods or []))
                if isinstance(r, Route) and "POST" in (r.methods or set())
                and not r.path.startswith("/c/") else r for r in self._routes()]

    def _once(self, handler: Any) -> Any:
        """Stripe's idempotent requests: a POST repeating an ``Idempotency-Key`` gets the first
        answer again (header ``Idempotent-Replayed: true``); the same key with other
        parameters is refused with an ``idempotency_error``."""
        async def endpoint(request: Request) -> Response:
            key = request.headers.get("idempotency-key")
            if not key:
                return cast(Response, await handler(request))
            body = await request.body()
            seen = self.idempotent.get(key)
            if seen is not None:
                if seen[0] != (request.url.path, body):
                    return error(400, "Keys for idempotent requests can only be used with the "
                                 "same parameters they were first used with. Try using a key "
                                 "other than '" + key + "' if you meant to execute a different "
                                 "request.", type_="idempotency_error")
                return Response(seen[2], status_code=seen[1], media_type="application/json",
                                headers={"Idempotent-Replayed": "true"})
            response = cast(Response, await handler(request))
            if response.status_code < 500:  # Stripe does not keep 5xx or refused requests
                self.idempotent[key] = ((request.url.path, body), response.status_code,
                                        bytes(response.body))
            return response
        return endpoint

    def _routes(self) -> list[BaseRoute]:
        i = "/v1/invoices/{iid}"
        return [
            Route("/v1/invoices", self.list_invoices, methods=["GET"]),
            Route("/v1/invoices", self.create_invoice, methods=["POST"]),
            Route(i, self.get_invoice, methods=["GET"]),
            Route(i + "/finalize", self.finalize, methods=["POST"]),
            Route(i + "/pay", self.pay, methods=["POST"]),
            Route(i + "/void", self.void, methods=["POST"]),
            Route(i + "/send", self.send, methods=["POST"]),
            Route(i + "/mark_uncollectible", self.mark_uncollectible, methods=["POST"]),
            Route(i + "/attach_payment", self.attach_payment, methods=["POST"]),
            Route("/v1/invoiceitems", self.create_invoice_item, methods=["POST"]),
            Route("/v1/invoice_payments", self.list_invoice_payments, methods=["GET"]),
            Route("/v1/credit_notes", self.create_credit_note, methods=["POST"]),
            Route("/v1/checkout/sessions", self.create_session, methods=["POST"]),
            Route("/v1/checkout/sessions/{sid}", self.get_session, methods=["GET"]),
            Route("/v1/payment_intents/{pid}", self.get_payment_intent, methods=["GET"]),
            # The hosted Checkout page: GET shows it, POST is the customer paying there.
            Route("/c/pay/{sid}", self.hosted_page, methods=["GET"]),
            Route("/c/pay/{sid}", self.hosted_pay, methods=["POST"]),
            Route("/v1/customers", self.list_customers, methods=["GET"]),
            Route("/v1/customers", self.create_customer, methods=["POST"]),
            Route("/v1/customers/{cid}", self.get_customer, methods=["GET"]),
            Route("/v1/events", self.list_events, methods=["GET"]),
            Route(f"{SIM_PREFIX}/clock", self.clock, methods=["GET", "POST"]),
            Route(f"{SIM_PREFIX}/disputes", self.open_dispute, methods=["POST"]),
        ]

    @staticmethod
    async def _form(request: Request) -> dict[str, Any]:
        body = (await request.body()).decode()
        return parse_form(parse_qsl(body, keep_blank_values=True))

    def _page(self, request: Request, items: list[dict[str, Any]], url: str) -> Response:
        """Cursor pagination over ``items`` (already newest first), as Stripe lists do."""
        query = parse_form(request.query_params.multi_items())
        try:
            limit = int(query.get("limit", 10))
        except ValueError:
            return error(400, "Invalid integer: " + str(query.get("limit")), param="limit")
        if not 1 <= limit <= 100:
            return error(400, "This value must be between 1 and 100.", param="limit")
        ids = [item["id"] for item in items]
        for name in ("starting_after", "ending_before"):
            cursor = query.get(name)
            if cursor is not None and cursor not in ids:
                return error(400, f"No such object: '{cursor}'", code="resource_missing",
                             param=name)
        if "ending_before" in query:
            end = ids.index(query["ending_before"])
            chunk = items[max(0, end - limit):end]
            has_more = end - limit > 0
        else:
            start = ids.index(query["starting_after"]) + 1 if "starting_after" in query else 0
            chunk = items[start:start + limit]
            has_more = start + limit < len(items)
        return JSONResponse({"object": "list", "data": chunk, "has_more": has_more, "url": url})

    def _invoice(self, request: Request) -> Invoice | Response:
        invoice = self.invoices.get(request.path_params["iid"])
        if invoice is None:
            return error(404, f"No such invoice: '{request.path_params['iid']}'",
                         code="resource_missing", param="id")
        return invoice

    async def list_invoices(self, request: Request) -> Response:
        query = parse_form(request.query_params.multi_items())
        items = sorted(self.invoices.values(), key=lambda inv: (-inv.created, inv.id))
        if "customer" in query:
            items = [inv for inv in items if inv.customer["id"] == query["customer"]]
        if "status" in query:
            items = [inv for inv in items if inv.status == query["status"]]
        if "collection_method" in query:
            items = [inv for inv in items if inv.collection_method == query["collection_method"]]
        return self._page(request, [inv.to_json() for inv in items], "/v1/invoices")

    async def get_invoice(self, request: Request) -> Response:
        invoice = self._invoice(request)
        return invoice if isinstance(invoice, Response) else JSONResponse(invoice.to_json())

    async def create_invoice(self, request: Request) -> Response:
        """A draft with no lines: invoice items attached to it (``invoice=``) add them, and
        pending items of the customer join only with ``pending_invoice_items_behavior:
        include`` (the simulator keeps no pending items, so there are none to add)."""
        form = await self._form(request)
        if form.get("customer") not in self.customers:
            return error(400, f"No such customer: '{form.get('customer')}'",
                         code="resource_missing", param="customer")
        invoice = self.add_invoice(
            form["customer"], [],
            collection_method=form.get("collection_method", "charge_automatically"),
        )
        if form.get("currency"):
            invoice.currency = str(form["currency"]).lower()
        if form.get("due_date"):
            invoice.due_date = int(form["due_date"])
        elif form.get("days_until_due"):
            invoice.due_date = invoice.created + int(form["days_until_due"]) * DAY
        invoice.description = form.get("description")
        invoice.metadata.update(form.get("metadata") or {})
        self.record_event("invoice.created", invoice)
        return JSONResponse(invoice.to_json())

    async def create_invoice_item(self, request: Request) -> Response:
        form = await self._form(request)
        invoice = self.invoices.get(str(form.get("invoice")))
        if invoice is None:
            return error(400, f"No such invoice: '{form.get('invoice')}'",
                         code="resource_missing", param="invoice")
        if invoice.status != "draft":
            return error(400, "You can only add invoice items to draft invoices.",
                         code="invoice_not_editable", param="invoice")
        if form.get("customer") != invoice.customer["id"]:
            return error(400, "The invoice item's customer must match the invoice's.",
                         param="customer")
        try:
            quantity = int(form.get("quantity", 1))
            unit = Decimal(str(form["unit_amount_decimal"])) if "unit_amount_decimal" in form \
                else Decimal(int(form["amount"])) / quantity
        except (KeyError, ValueError, ArithmeticError):
            return error(400, "You must pass either amount or unit_amount_decimal.",
                         param="amount")
        if unit != unit.to_integral_value():
            return error(400, "unit_amount_decimal must be a whole number of the currency's "
                         "smallest unit here", param="unit_amount_decimal")
        line = Line(self._id("il_"), str(form.get("description") or ""), quantity, int(unit))
        invoice.lines.append(line)
        return JSONResponse({
            "id": self._id("ii_"), "object": "invoiceitem", "amount": line.amount,
            "currency": invoice.currency, "customer": invoice.customer["id"],
            "description": line.description, "invoice": invoice.id, "livemode": False,
            "metadata": form.get("metadata") or {}, "quantity": quantity,
            "date": int(time.time()), "discountable": True, "discounts": [],
            "period": {"start": int(time.time()), "end": int(time.time())},
            "pricing": {"type": "price_details", "unit_amount_decimal": str(int(unit))},
            "proration": False, "tax_rates": [], "test_clock": None, "parent": None})

    async def finalize(self, request: Request) -> Response:
        invoice = self._invoice(request)
        if isinstance(invoice, Response):
            return invoice
        if invoice.status != "draft":
            return error(400, "This invoice is already finalized, you can't re-finalize a "
                         "non-draft invoice.")
        self._finalize(invoice)
        return JSONResponse(invoice.to_json())

    async def pay(self, request: Request) -> Response:
        invoice = self._invoice(request)
        if isinstance(invoice, Response):
            return invoice
        form = await self._form(request)
        if invoice.status == "paid":
            return error(400, "Invoice is already paid", code="invoice_already_paid")
        if invoice.status == "void":
            return error(400, "This invoice has been voided and can no longer be paid.")
        out_of_band = form.get("paid_out_of_band") == "true"
        method = invoice.customer["_method"]
        if not out_of_band and method is None:
            return error(400, "This customer has no attached payment source or default "
                         "payment method.", code="invoice_no_payment_method_types")
        if invoice.status == "draft":
            self._finalize(invoice)
        if out_of_band or method == "card":
            self._mark_paid(invoice)
        elif method == "declined":
            invoice.attempt_count += 1
            self.record_event("invoice.payment_failed", invoice)
            return error(402, "Your card was declined.", type_="card_error",
                         code="card_declined")
        else:  # bank debit: the payment settles later, the invoice stays open until then
            invoice.attempt_count += 1
            self.later(lambda: self._settle(invoice))
        return JSONResponse(invoice.to_json())

    def _settle(self, invoice: Invoice) -> None:
        if invoice.status in ("open", "uncollectible"):
            self._mark_paid(invoice)

    async def void(self, request: Request) -> Response:
        invoice = self._invoice(request)
        if isinstance(invoice, Response):
            return invoice
        if invoice.status not in ("open", "uncollectible"):
            return error(400, f"You can only void open or uncollectible invoices; this "
                         f"invoice is {invoice.status}.")
        invoice.status, invoice.transitions["voided_at"] = "void", int(time.time())
        self.record_event("invoice.voided", invoice)
        return JSONResponse(invoice.to_json())

    async def send(self, request: Request) -> Response:
        invoice = self._invoice(request)
        if isinstance(invoice, Response):
            return invoice
        if invoice.collection_method != "send_invoice":
            return error(400, "You can only manually send an invoice if its collection "
                         "method is 'send_invoice'.", code="invoice_not_editable")
        if invoice.status in ("paid", "void", "uncollectible"):
            return error(400, f"You can't send an invoice that is {invoice.status}.")
        if invoice.status == "draft":
            self._finalize(invoice)  # Stripe finalizes a draft before sending it
        self.record_event("invoice.sent", invoice)
        return JSONResponse(invoice.to_json())

    async def mark_uncollectible(self, request: Request) -> Response:
        invoice = self._invoice(request)
        if isinstance(invoice, Response):
            return invoice
        if invoice.status != "open":
            return error(400, "You can only mark an open invoice as uncollectible.")
        invoice.status = "uncollectible"
        invoice.transitions["marked_uncollectible_at"] = int(time.time())
        self.record_event("invoice.marked_uncollectible", invoice)
        return JSONResponse(invoice.to_json())

    async def list_customers(self, request: Request) -> Response:
        email = request.query_params.get("email")
        items = [self._customer_json(c) for c in reversed(self.customers.values())
                 if email is None or c["email"] == email]
        return self._page(request, items, "/v1/customers")

    async def create_customer(self, request: Request) -> Response:
        """``POST /v1/customers`` (name, email, metadata): a customer paying by card, no
        invoices yet."""
        form = await self._form(request)
        cid = self.add_customer(str(form.get("name") or ""), str(form.get("email") or ""))
        if isinstance(form.get("metadata"), dict):
            self.customers[cid]["metadata"] = dict(form["metadata"])
        return JSONResponse(self._customer_json(self.customers[cid]))

    async def get_customer(self, request: Request) -> Response:
        customer = self.customers.get(request.path_params["cid"])
        if customer is None:
            return error(404, f"No such customer: '{request.path_params['cid']}'",
                         code="resource_missing", param="id")
        return JSONResponse(self._customer_json(customer))

    @staticmethod
    def _customer_json(customer: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in customer.items() if not k.startswith("_")}

    async def list_events(self, request: Request) -> Response:
        query = parse_form(request.query_params.multi_items())
        items = list(reversed(self.events))
        if "type" in query:
            items = [e for e in items if e["type"] == query["type"]]
        return self._page(request, items, "/v1/events")

    # -- payments: Checkout, PaymentIntents, invoice payments, credit notes -----------------
    def _session_json(self, session: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in session.items() if not k.startswith("_")}

    async def create_session(self, request: Request) -> Response:
        """``POST /v1/checkout/sessions`` in ``payment`` mode with ``price_data`` line items
        (the only shapes the gateway sends); the url is this simulator's hosted page."""
        form = await self._form(request)
        if form.get("mode") != "payment":
            return error(400, "The simulator takes mode=payment sessions only.", param="mode")
        if not form.get("success_url"):
            return error(400, "Missing required param: success_url.", param="success_url")
        items = form.get("line_items")
        if isinstance(items, dict):  # line_items[0][...]: indexed, as stripe-python sends it
            items = [items[k] for k in sorted(items, key=lambda k: int(k) if k.isdigit() else 0)]
        if not isinstance(items, list) or not items:
            return error(400, "line_items is required in payment mode.", param="line_items")
        total, currency = 0, None
        for item in items:
            price = item.get("price_data") if isinstance(item, dict) else None
            if not isinstance(price, dict) or "unit_amount" not in price:
                return error(400, "Each line item needs price_data with unit_amount.",
                             param="line_items[0][price_data]")
            currency = str(price.get("currency", "usd")).lower()
            total += int(price["unit_amount"]) * int(item.get("quantity", 1))
        customer = form.get("customer")
        if customer is not None and customer not in self.customers:
            return error(400, f"No such customer: '{customer}'", code="resource_missing",
                         param="customer")
        sid = "cs_test_" + self._id("")[1:]
        base = str(request.base_url).rstrip("/")
        self.sessions[sid] = {
            "id": sid, "object": "checkout.session", "mode": "payment", "status": "open",
            "payment_status": "unpaid", "amount_total": total, "amount_subtotal": total,
            "currency": currency, "customer": customer,
            "client_reference_id": form.get("client_reference_id"),
            "success_url": form["success_url"], "cancel_url": form.get("cancel_url"),
            "metadata": form.get("metadata") or {}, "payment_intent": None,
            "created": int(time.time()), "expires_at": int(time.time()) + DAY,
            "livemode": False, "url": f"{base}/c/pay/{sid}",
            "_intent_metadata": (form.get("payment_intent_data") or {}).get("metadata") or {},
        }
        return JSONResponse(self._session_json(self.sessions[sid]))

    async def get_session(self, request: Request) -> Response:
        session = self.sessions.get(request.path_params["sid"])
        if session is None:
            return error(404, f"No such checkout.session: '{request.path_params['sid']}'",
                         code="resource_missing", param="session")
        return JSONResponse(self._session_json(session))

    async def hosted_page(self, request: Request) -> Response:
        session = self.sessions.get(request.path_params["sid"])
        if session is None:
            return HTMLResponse("<h1>Something went wrong</h1>", status_code=404)
        amount = f"{session['amount_total']} {session['currency']} (smallest unit)"
        return HTMLResponse(
            f"<!doctype html><title>Pay (Stripe simulator)</title><h1>Pay {amount}</h1>"
            f"<p>Status: {session['status']}</p><form method=post>"
            f"<button name=card value=success>Pay with 4242 4242 4242 4242</button>"
            f"<button name=card value=declined>Pay with a card that is declined</button>"
            f"</form>")

    async def hosted_pay(self, request: Request) -> Response:
        """The customer pays on the hosted page (form field ``card``: ``success`` or
        ``declined``). A success completes the session, creates a succeeded PaymentIntent
        and Charge, saves nothing, sends ``checkout.session.completed`` and redirects to
        ``success_url`` as Checkout does."""
        session = self.sessions.get(request.path_params["sid"])
        if session is None:
            return HTMLResponse("<h1>Something went wrong</h1>", status_code=404)
        if session["status"] != "open":
            return HTMLResponse("<h1>This checkout session is no longer open</h1>",
                                status_code=409)
        form = dict(parse_qsl((await request.body()).decode()))
        if form.get("card", "success") == "declined":
            return HTMLResponse("<h1>Your card was declined.</h1>", status_code=402)
        pid, charge_id = self._id("pi_"), self._id("ch_")
        self.charges[charge_id] = {
            "id": charge_id, "object": "charge", "amount": session["amount_total"],
            "amount_captured": session["amount_total"], "amount_refunded": 0,
            "currency": session["currency"], "customer": session["customer"],
            "payment_intent": pid, "paid": True, "captured": True, "refunded": False,
            "status": "succeeded", "created": int(time.time()), "livemode": False,
            "metadata": {}, "refunds": {"object": "list", "data": [], "has_more": False,
                                        "url": f"/v1/charges/{charge_id}/refunds"}}
        self.intents[pid] = {
            "id": pid, "object": "payment_intent", "amount": session["amount_total"],
            "amount_received": session["amount_total"], "currency": session["currency"],
            "customer": session["customer"], "status": "succeeded",
            "latest_charge": charge_id, "metadata": dict(session["_intent_metadata"]),
            "created": int(time.time()), "livemode": False, "_invoice": None}
        session.update(status="complete", payment_status="paid", payment_intent=pid)
        self.record_event("checkout.session.completed", self._session_json(session))
        return RedirectResponse(session["success_url"], status_code=303)

    async def get_payment_intent(self, request: Request) -> Response:
        intent = self.intents.get(request.path_params["pid"])
        if intent is None:
            return error(404, f"No such payment_intent: '{request.path_params['pid']}'",
                         code="resource_missing", param="intent")
        return JSONResponse({k: v for k, v in intent.items() if not k.startswith("_")})

    async def attach_payment(self, request: Request) -> Response:
        """``POST /v1/invoices/{id}/attach_payment``: a succeeded PaymentIntent is credited to
        the invoice at once; paid in full, the invoice becomes ``paid``."""
        invoice = self._invoice(request)
        if isinstance(invoice, Response):
            return invoice
        form = await self._form(request)
        intent = self.intents.get(str(form.get("payment_intent")))
        if intent is None:
            return error(400, f"No such payment_intent: '{form.get('payment_intent')}'",
                         code="resource_missing", param="payment_intent")
        if intent["_invoice"] is not None:
            return error(400, "This PaymentIntent is already attached to an invoice.",
                         param="payment_intent")
        if invoice.status != "open":
            return error(400, f"You can only attach payments to open invoices; this invoice "
                         f"is {invoice.status}.", code="invoice_not_open")
        if intent["currency"] != invoice.currency:
            return error(400, "The PaymentIntent's currency must match the invoice's.",
                         param="payment_intent")
        intent["_invoice"] = invoice.id
        payment_id = "inpay_" + self._id("")[1:]
        self.invoice_payments[payment_id] = {
            "id": payment_id, "object": "invoice_payment", "amount_paid": intent["amount"],
            "amount_requested": intent["amount"], "created": int(time.time()),
            "currency": invoice.currency, "invoice": invoice.id, "is_default": True,
            "livemode": False, "status": "paid",
            "payment": {"type": "payment_intent", "payment_intent": intent["id"]},
            "status_transitions": {"canceled_at": None, "paid_at": int(time.time())}}
        invoice.amount_paid += intent["amount"]
        if invoice.amount_paid >= invoice.total:
            invoice.amount_paid = invoice.total
            invoice.status = "paid"
            invoice.transitions["paid_at"] = int(time.time())
            self.record_event("invoice.paid", invoice)
        return JSONResponse(invoice.to_json())

    async def list_invoice_payments(self, request: Request) -> Response:
        query = parse_form(request.query_params.multi_items())
        payment = query.get("payment")
        wanted: dict[str, Any] = payment if isinstance(payment, dict) else {}
        items = [p for p in reversed(self.invoice_payments.values())
                 if query.get("invoice") in (None, p["invoice"])
                 and query.get("status") in (None, p["status"])
                 and wanted.get("payment_intent") in (None, p["payment"]["payment_intent"])]
        return self._page(request, items, "/v1/invoice_payments")

    async def create_credit_note(self, request: Request) -> Response:
        """A credit note on a paid invoice (after payment): ``refund_amount`` refunds the
        invoice's card payments, ``out_of_band_amount`` records money given back elsewhere;
        with ``credit_amount`` they must add up to ``amount``, which may not exceed what is
        left of the payment."""
        form = await self._form(request)
        invoice = self.invoices.get(str(form.get("invoice")))
        if invoice is None:
            return error(400, f"No such invoice: '{form.get('invoice')}'",
                         code="resource_missing", param="invoice")
        if invoice.status != "paid":
            return error(400, "The simulator issues credit notes for paid invoices only.",
                         param="invoice")
        parts = {k: int(form.get(k, 0)) for k in ("refund_amount", "out_of_band_amount",
                                                   "credit_amount")}
        amount = int(form.get("amount", sum(parts.values())))
        if amount <= 0 or sum(parts.values()) != amount:
            return error(400, f"The sum of credit amount, refund amount and out of band amount "
                         f"({sum(parts.values())}) must equal the credit note amount "
                         f"({amount}).", param="amount")
        left = invoice.amount_paid - invoice.credited_after_payment
        if amount > left:
            return error(400, f"The credit note amount ({amount}) must be less than or equal "
                         f"to the invoice's remaining amount ({left}).", param="amount")
        charges = [self.charges[self.intents[p["payment"]["payment_intent"]]["latest_charge"]]
                   for p in self.invoice_payments.values() if p["invoice"] == invoice.id]
        refundable = sum(c["amount"] - c["amount_refunded"] for c in charges)
        if parts["refund_amount"] > refundable:
            return error(400, f"refund_amount ({parts['refund_amount']}) is more than the "
                         f"invoice's payments can refund ({refundable}).",
                         param="refund_amount")
        invoice.credited_after_payment += amount
        refunds: list[dict[str, Any]] = []
        owed = parts["refund_amount"]
        for charge in charges:
            part = min(owed, charge["amount"] - charge["amount_refunded"])
            if part <= 0:
                continue
            owed -= part
            charge["amount_refunded"] += part
            charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
            refund_id = self._id("re_")
            charge["refunds"]["data"].insert(0, {
                "id": refund_id, "object": "refund", "amount": part,
                "charge": charge["id"], "payment_intent": charge["payment_intent"],
                "currency": charge["currency"], "status": "succeeded",
                "created": int(time.time())})
            refunds.append({"amount_refunded": part, "refund": refund_id, "type": "refund"})
            self.record_event("charge.refunded", charge)
        note = {
            "id": "cn_" + self._id("")[1:], "object": "credit_note", "amount": amount,
            "currency": invoice.currency, "customer": invoice.customer["id"],
            "invoice": invoice.id, "livemode": False, "memo": form.get("memo"),
            "metadata": form.get("metadata") or {},
            "number": f"{invoice.number}-CN-01", "out_of_band_amount":
            parts["out_of_band_amount"] or None, "reason": form.get("reason"),
            "refunds": refunds, "status": "issued", "type": "post_payment",
            "created": int(time.time()), "total": amount, "subtotal": amount}
        self.record_event("credit_note.created", note)
        return JSONResponse(note)

"""Simulated Stripe API (invoices, customers, events), per upstream-apis.md §6.

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
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from panelql_sim.framework import SIM_PREFIX, Knobs, SimPanel, json_body

DAY = 86400
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
            "post_payment_credit_notes_amount": 0, "pre_payment_credit_notes_amount": 0,
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
        self._next_number = 1
        self.clock_offset = 0  # seconds the clock was advanced (POST /__sim/clock)
        self._seed(customers, invoices)

    # -- data ---------------------------------------------------------------------------------
    def _id(self, prefix: str) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        return prefix + "1" + "".join(self.random.choice(alphabet) for _ in range(23))

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

    def add_invoice(self, customer_id: str, lines: list[tuple[str, int, int]], *,
                    created: int | None = None,
                    collection_method: str = "send_invoice") -> Invoice:
        customer = self.customers[customer_id]
        invoice = Invoice(
            id=self._id("in_"), customer=customer, currency=customer["currency"],
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
    def record_event(self, kind: str, invoice: Invoice) -> dict[str, Any]:
        event = {
            "id": self._id("evt_"), "object": "event", "api_version": "2026-06-24.dahlia",
            "created": int(time.time()), "data": {"object": invoice.to_json()},
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
            Route("/v1/customers", self.list_customers, methods=["GET"]),
            Route("/v1/customers/{cid}", self.get_customer, methods=["GET"]),
            Route("/v1/events", self.list_events, methods=["GET"]),
            Route(f"{SIM_PREFIX}/clock", self.clock, methods=["GET", "POST"]),
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
        form = await self._form(request)
        if form.get("customer") not in self.customers:
            return error(400, f"No such customer: '{form.get('customer')}'",
                         code="resource_missing", param="customer")
        invoice = self.add_invoice(
            form["customer"], [("Service", 1, 1000)],
            collection_method=form.get("collection_method", "charge_automatically"),
        )
        invoice.description = form.get("description")
        invoice.metadata.update(form.get("metadata") or {})
        self.record_event("invoice.created", invoice)
        return JSONResponse(invoice.to_json())

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
        items = [self._customer_json(c) for c in reversed(self.customers.values())]
        return self._page(request, items, "/v1/customers")

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

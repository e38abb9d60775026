"""Simulated PayPal Invoicing API v2 with OAuth2 client credentials, per
paypal/paypal-rest-api-specifications ``openapi/invoicing_v2.json`` @ec4d8f36.

``POST /v1/oauth2/token`` (HTTP Basic client id/secret, ``grant_type=client_credentials``) hands
out bearer tokens that expire after ``token_ttl`` seconds; API calls with a missing, unknown or
expired token answer 401. Invoices carry decimal-string money, list pages follow
``page``/``page_size``/``total_required``, errors use ``{"name","message","debug_id","details"}``
and business-rule refusals are 422 with PayPal's ``issue`` codes. A check payment stays
``PAYMENT_PENDING`` for ``transition_seconds`` before the invoice becomes ``MARKED_AS_PAID``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from panelql_sim import referee
from panelql_sim.framework import SIM_PREFIX, Knobs, SimPanel, json_body

INVOICES = "/v2/invoicing/invoices"
PAID_STATES = {"PAID", "MARKED_AS_PAID", "PARTIALLY_REFUNDED", "REFUNDED", "MARKED_AS_REFUNDED"}
REFUNDABLE_STATES = {"PAID", "MARKED_AS_PAID", "PARTIALLY_REFUNDED"}
ORDERS = "/v2/checkout/orders"


def error(status: int, name: str, message: str, *, issue: str | None = None,
          description: str | None = None, field_: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"name": name, "message": message,
                            "debug_id": secrets.token_hex(7)}
    if issue:
        detail: dict[str, Any] = {"issue": issue, "description": description or message}
        if field_:
            detail["field"] = field_
        body["details"] = [detail]
    body["links"] = [{"href": "https://developer.paypal.com/docs/api/invoicing/v2/#error-"
                      + (issue or name), "rel": "information_link", "method": "GET"}]
    return JSONResponse(body, status_code=status)


def unprocessable(issue: str, description: str) -> JSONResponse:
    return error(422, "UNPROCESSABLE_ENTITY", "The requested action could not be performed, "
                 "semantically incorrect, or failed business validation.",
                 issue=issue, description=description)


@dataclass
class PayPalInvoice:
    id: str
    number: str
    recipient: str
    currency: str
    items: list[tuple[str, int, Decimal]]
    invoice_date: date
    due: date
    status: str = "DRAFT"
    reference: str | None = None
    paid: Decimal = Decimal("0")
    transactions: list[dict[str, Any]] = field(default_factory=list)
    times: dict[str, str] = field(default_factory=dict)
    refunded: Decimal = Decimal("0")
    refunds: list[dict[str, Any]] = field(default_factory=list)
    note: str = "Thank you for your business."
    recipient_name: dict[str, str] | None = None

    @property
    def total(self) -> Decimal:
        return sum((unit * qty for _, qty, unit in self.items), Decimal("0"))

    def _money(self, value: Decimal) -> dict[str, str]:
        places = Decimal("1") if self.currency in ("JPY", "HUF", "TWD") else Decimal("0.01")
        return {"currency_code": self.currency, "value": str(value.quantize(places))}

    def to_json(self, base: str) -> dict[str, Any]:
        url = "https://www.sandbox.paypal.com/invoice"
        body: dict[str, Any] = {
            "id": self.id, "status": self.status,
            "detail": {
                "invoice_number": self.number,
                "invoice_date": self.invoice_date.isoformat(), "currency_code": self.currency,
                "note": self.note, "term": "Due on receipt",
                "payment_term": {"term_type": "NET_30", "due_date": self.due.isoformat()},
                "metadata": {
                    **self.times,
                    "recipient_view_url": f"{url}/p/#{self.id.replace('-', '')}",
                    "invoicer_view_url": f"{url}/s/details/{self.id}",
                },
            },
            "invoicer": {"business_name": "PanelQL Hosting (sim)",
                         "email_address": "billing@panelql.test"},
            "primary_recipients": [{"billing_info": {
                "email_address": self.recipient,
                "name": self.recipient_name or {
                    "given_name": self.recipient.split("@")[0].title(),
                    "surname": "Customer"}}}],
            "items": [{"id": f"ITEM-{i + 1}", "name": name, "quantity": str(qty),
                       "unit_amount": self._money(unit), "unit_of_measure": "QUANTITY"}
                      for i, (name, qty, unit) in enumerate(self.items)],
            "configuration": {"allow_tip": False, "tax_calculated_after_discount": True,
                              "tax_inclusive": False},
            "amount": {**self._money(self.total),
                       "breakdown": {"item_total": self._money(self.total)}},
            "links": [{"href": f"{base}{INVOICES}/{self.id}", "rel": "self", "method": "GET"}],
        }
        if self.reference is not None:  # a string in the document, never null
            body["detail"]["reference"] = self.reference
        if self.status != "DRAFT":
            owed = Decimal("0") if self.status in PAID_STATES | {"CANCELLED"} \
                else self.total - self.paid
            body["due_amount"] = self._money(owed)
        if self.paid:
            body["payments"] = {"paid_amount": self._money(self.paid),
                                "transactions": self.transactions}
        if self.refunded:
            body["refunds"] = {"refund_amount": self._money(self.refunded),
                               "transactions": self.refunds}
        return body


class PayPalSim(SimPanel):
    request_id_header = "Paypal-Debug-Id"
    name = "paypal"
    documents = ("paypal-invoicing_v2.json", "paypal-notifications_webhooks_v1.json",
                 "paypal-checkout_orders_v2.json", "paypal-payments_payment_v2.json")
    # /v1/oauth2/token is in none of PayPal's published files.
    # The buyer's approval page (/checkoutnow) is PayPal's website, not its API.
    document_quirks = referee.Quirks(undocumented=(r"/v1/oauth2/token", r"/checkoutnow"),
                                     read_only_echoed=("webhook_event",))

    def __init__(
        self, *, client_id: str = "pp_demo_client", client_secret: str = "pp_demo_secret",
        invoices: int = 24, token_ttl: int = 32400, seed: int = 1,
        knobs: Knobs | None = None, webhook_id: str = "8PT597110X687430LKGECATA",
    ) -> None:
        super().__init__(seed=seed, knobs=knobs)
        self.webhook_id = webhook_id
        # Stands in for PayPal's signing key: deliveries are signed with it and only
        # verify-webhook-signature (this simulator) can check them, as with the real service.
        self._signing_key = secrets.token_bytes(32)
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl = token_ttl
        self.tokens: dict[str, float] = {}  # token → expiry (monotonic)
        self.invoices: dict[str, PayPalInvoice] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.captures: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        # PayPal-Request-Id → (path, status, body): a repeated POST gets the first answer.
        self.request_ids: dict[str, tuple[str, int, bytes]] = {}
        self.webhook_url: str | None = None
        self.deliveries: list[dict[str, Any]] = []  # every event emitted, newest last
        self._seed(invoices)

    # -- data ---------------------------------------------------------------------------------
    def _id(self) -> str:
        chars = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        groups = ["".join(self.random.choice(chars) for _ in range(4)) for _ in range(4)]
        return "INV2-" + "-".join(groups)

    def _seed(self, count: int) -> None:
        states = ["SENT", "PAID", "DRAFT", "UNPAID", "MARKED_AS_PAID", "CANCELLED",
                  "PARTIALLY_PAID", "SCHEDULED", "SENT", "REFUNDED", "PAYMENT_PENDING",
                  "PARTIALLY_REFUNDED"]
        currencies = ["USD", "USD", "EUR", "USD", "JPY", "GBP"]
        today = datetime.now(UTC).date()
        for i in range(count):
            currency = currencies[i % len(currencies)]
            unit = Decimal("1500") if currency == "JPY" else Decimal("19.99")
            issued = today - timedelta(days=(count - i) * 3)
            invoice = self.add_invoice(
                f"customer{i % 6 + 1}@example.com", currency,
                [("Shared hosting (monthly)", 1, unit), ("Domain renewal", 1 + i % 2, unit / 2
                  if currency != "JPY" else Decimal("750"))],
                invoice_date=issued, due=issued + timedelta(days=30 if i % 4 else 2),
            )
            invoice.reference = f"whmcs-{2000 + i}"
            state = states[i % len(states)]
            invoice.status = state
            if state in PAID_STATES:
                invoice.paid = invoice.total
            elif state == "PARTIALLY_PAID":
                invoice.paid = (invoice.total / 2).quantize(Decimal("1"))
            if state == "SCHEDULED":
                invoice.invoice_date = today + timedelta(days=7)
                invoice.due = invoice.invoice_date + timedelta(days=30)

    def add_invoice(self, recipient: str, currency: str, items: list[tuple[str, int, Decimal]],
                    *, invoice_date: date, due: date) -> PayPalInvoice:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        invoice = PayPalInvoice(
            id=self._id(), number=f"{len(self.invoices) + 1:04d}", recipient=recipient,
            currency=currency, items=items, invoice_date=invoice_date, due=due,
            times={"create_time": stamp, "last_update_time": stamp},
        )
        self.invoices[invoice.id] = invoice
        return invoice

    def expire_tokens(self) -> None:
        """Make every issued token invalid (PayPal dropping them early)."""
        self.tokens.clear()

    # -- HTTP ---------------------------------------------------------------------------------
    def authorize(self, request: Request) -> Response | None:
        if request.url.path == "/checkoutnow":
            return None  # the buyer's browser on PayPal's site
        auth = request.headers.get("authorization", "")
        if request.url.path == "/v1/oauth2/token":
            expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode())
            if auth != f"Basic {expected.decode()}":
                return JSONResponse({"error": "invalid_client",
                                     "error_description": "Client Authentication failed"},
                                    status_code=401)
            return None
        if not auth.startswith("Bearer "):
            return error(401, "AUTHENTICATION_FAILURE", "Authentication failed due to invalid "
                         "authentication credentials or a missing Authorization header.")
        expiry = self.tokens.get(auth[len("Bearer "):])
        if expiry is None or expiry < time.monotonic():
            return JSONResponse({"error": "invalid_token",
                                 "error_description": "Access Token not found in cache"},
                                status_code=401)
        return None

    def rate_limited(self, retry_after: int) -> Response:
        response = error(429, "RATE_LIMIT_REACHED", "Too many requests. Blocked due to "
                         "rate limiting.")
        response.headers["Retry-After"] = str(retry_after)
        return response

    def server_error(self) -> Response:
        return error(500, "INTERNAL_SERVER_ERROR", "An internal server error has occurred.")

    def routes(self) -> list[BaseRoute]:
        one = INVOICES + "/{iid}"
        return [
            Route("/v1/oauth2/token", self.token, methods=["POST"]),
            Route(INVOICES, self.list_invoices, methods=["GET"]),
            Route(INVOICES, self.create_invoice, methods=["POST"]),
            Route("/v2/invoicing/search-invoices", self.search, methods=["POST"]),
            Route(one, self.get_invoice, methods=["GET"]),
            Route(one, self.delete_invoice, methods=["DELETE"]),
            Route(one + "/send", self.send, methods=["POST"]),
            Route(one + "/remind", self.remind, methods=["POST"]),
            Route(one + "/cancel", self.cancel, methods=["POST"]),
            Route(one + "/payments", self.record_payment, methods=["POST"]),
            Route(one + "/refunds", self.record_refund, methods=["POST"]),
            Route(ORDERS, self._once(self.create_order), methods=["POST"]),
            Route(ORDERS + "/{oid}", self.get_order, methods=["GET"]),
            Route(ORDERS + "/{oid}/capture", self._once(self.capture_order), methods=["POST"]),
            Route("/v2/payments/captures/{cid}", self.get_capture, methods=["GET"]),
            Route("/v2/payments/captures/{cid}/refund", self._once(self.refund_capture),
                  methods=["POST"]),
            Route("/checkoutnow", self.approval_page, methods=["GET"]),
            Route("/checkoutnow", self.approve, methods=["POST"]),
            Route("/v1/notifications/verify-webhook-signature", self.verify_webhook,
                  methods=["POST"]),
            Route(f"{SIM_PREFIX}/disputes", self.open_dispute, methods=["POST"]),
        ]

    # -- webhooks -----------------------------------------------------------------------------
    def _signature(self, transmission_id: str, transmission_time: str, webhook_id: str,
                   event: dict[str, Any]) -> str:
        # PayPal signs "<transmission id>|<time>|<webhook id>|<crc32 of the body>" (with RSA);
        # the simulator signs the same string with an HMAC only it knows.
        crc = zlib.crc32(json.dumps(event, sort_keys=True).encode())
        message = f"{transmission_id}|{transmission_time}|{webhook_id}|{crc}".encode()
        # Hex, not base64: notifications_webhooks_v1.json gives transmission_sig the pattern
        # ^(?!\d+$)\w+\S+ (a word character first), which base64 breaks one time in 32.
        return hmac.new(self._signing_key, message, hashlib.sha256).hexdigest()

    def delivery(self, event_type: str, invoice_id: str) -> tuple[bytes, dict[str, str]]:
        """A signed ``INVOICING.INVOICE.*`` delivery for one invoice, as PayPal would POST it
        to the webhook URL: the body and the transmission headers."""
        invoice = self.invoices[invoice_id]
        return self.signed(self.event(
            event_type, "invoices",
            {"invoice": invoice.to_json("https://api-m.sandbox.paypal.com")},
            f"An invoice was {event_type.rsplit('.', 1)[-1].lower()}"))

    @staticmethod
    def event(event_type: str, resource_type: str, resource: dict[str, Any],
              summary: str) -> dict[str, Any]:
        return {
            "id": f"WH-{secrets.token_hex(9).upper()}",
            "create_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "resource_type": resource_type, "event_type": event_type, "summary": summary,
            "resource": resource, "links": [], "event_version": "1.0",
            "resource_version": "2.0",
        }

    def signed(self, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        transmission_id = str(uuid.uuid4())
        transmission_time = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-TIME": transmission_time,
            "PAYPAL-TRANSMISSION-SIG": self._signature(transmission_id, transmission_time,
                                                       self.webhook_id, event),
            "PAYPAL-CERT-URL": "https://api-m.sandbox.paypal.com/v1/notifications/certs/"
                               "CERT-360caa42-fca2a594-simulated",
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
            "Content-Type": "application/json",
        }
        return json.dumps(event).encode(), headers

    def emit(self, event_type: str, resource_type: str, resource: dict[str, Any],
             summary: str) -> dict[str, Any]:
        """Record a PAYMENT.* event and POST it, signed, to ``webhook_url`` when set (PayPal
        retries failed deliveries for days; the simulator drops them)."""
        event = self.event(event_type, resource_type, resource, summary)
        self.deliveries.append(event)
        if self.webhook_url:
            asyncio.get_running_loop().create_task(self._deliver(event))
        return event

    async def _deliver(self, event: dict[str, Any]) -> None:
        assert self.webhook_url is not None
        body, headers = self.signed(event)
        async with httpx.AsyncClient(timeout=10) as client:
            with contextlib.suppress(httpx.HTTPError):
                await client.post(self.webhook_url, content=body, headers=headers)

    async def verify_webhook(self, request: Request) -> Response:
        body = await json_body(request)
        names = ("auth_algo", "cert_url", "transmission_id", "transmission_sig",
                 "transmission_time", "webhook_id", "webhook_event")
        missing = [n for n in names if not body.get(n)]
        if missing:
            return error(400, "VALIDATION_ERROR", "Invalid data provided",
                         issue="MISSING_REQUIRED_PARAMETER", field_=f"/{missing[0]}")
        expected = self._signature(body["transmission_id"], body["transmission_time"],
                                   body["webhook_id"], body["webhook_event"])
        genuine = (body["webhook_id"] == self.webhook_id
                   and hmac.compare_digest(expected, str(body["transmission_sig"])))
        return JSONResponse({"verification_status": "SUCCESS" if genuine else "FAILURE"})

    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type",
                                 "error_description": "Grant Type is NULL"}, status_code=400)
        token = "A21AA" + secrets.token_urlsafe(48)
        self.tokens[token] = time.monotonic() + self.token_ttl
        return JSONResponse({
            "scope": "https://uri.paypal.com/services/invoicing", "access_token": token,
            "token_type": "Bearer", "app_id": "APP-80W284485P519543T",
            "expires_in": self.token_ttl, "nonce": secrets.token_hex(16),
        })

    def _page(self, request: Request, items: list[PayPalInvoice]) -> Response:
        try:
            page = int(request.query_params.get("page", 1))
            size = int(request.query_params.get("page_size", 20))
        except ValueError:
            return error(400, "INVALID_REQUEST", "Request is not well-formed, syntactically "
                         "incorrect, or violates schema.", issue="INVALID_PARAMETER_SYNTAX",
                         field_="page")
        if not (1 <= page <= 1000 and 1 <= size <= 100):
            return error(400, "INVALID_REQUEST", "Request is not well-formed, syntactically "
                         "incorrect, or violates schema.", issue="INVALID_PARAMETER_VALUE",
                         description="The value of a field is invalid.", field_="page_size")
        chunk = items[(page - 1) * size: page * size]
        base = str(request.base_url).rstrip("/")
        body: dict[str, Any] = {"links": [{"href": f"{base}{request.url.path}?page={page}"
                                           f"&page_size={size}", "rel": "self",
                                           "method": request.method}]}
        if chunk:  # PayPal omits "items" from an empty page
            body["items"] = [inv.to_json(base) for inv in chunk]
        if request.query_params.get("total_required") == "true":
            body["total_items"] = len(items)
            body["total_pages"] = -(-len(items) // size)
        return JSONResponse(body)

    def _sorted(self) -> list[PayPalInvoice]:
        return sorted(self.invoices.values(), key=lambda inv: (inv.invoice_date, inv.id),
                      reverse=True)

    async def list_invoices(self, request: Request) -> Response:
        return self._page(request, self._sorted())

    async def search(self, request: Request) -> Response:
        body = await json_body(request)
        items = self._sorted()
        if "recipient_email" in body:
            items = [inv for inv in items if inv.recipient == body["recipient_email"]]
        if isinstance(body.get("status"), list):
            items = [inv for inv in items if inv.status in body["status"]]
        if "currency_code" in body:
            items = [inv for inv in items if inv.currency == body["currency_code"]]
        if "invoice_number" in body:
            items = [inv for inv in items if inv.number == body["invoice_number"]]
        return self._page(request, items)

    def _invoice(self, request: Request) -> PayPalInvoice | Response:
        invoice = self.invoices.get(request.path_params["iid"])
        if invoice is None:
            return error(404, "RESOURCE_NOT_FOUND", "The specified resource does not exist.",
                         issue="INVALID_RESOURCE_ID", description="Requested resource ID was "
                         "not found.")
        return invoice

    async def get_invoice(self, request: Request) -> Response:
        invoice = self._invoice(request)
        if isinstance(invoice, Response):
            return invoice
        return JSONResponse(invoice.to_json(str(request.base_url).rstrip("/")))

    async def create_invoice(self, request: Request) -> Response:
        body = await json_body(request)
        detail = body.get("detail")
        currency = detail.get("currency_code") if isinstance(detail, dict) else None
        if not isinstance(currency, str):
            return error(400, "INVALID_REQUEST", "Request is not well-formed, syntactically "
                         "incorrect, or violates schema.", issue="MISSING_REQUIRED_PARAMETER",
                         field_="/detail/currency_code")
        recipients = body.get("primary_recipients") or [{}]
        first: dict[str, Any] = recipients[0] if isinstance(recipients[0], dict) else {}
        billing: dict[str, Any] = first.get("billing_info") or {}
        email = str(billing.get("email_address", ""))
        items = [(str(it.get("name", "Item")), int(it.get("quantity", "1")),
                  Decimal(str((it.get("unit_amount") or {}).get("value", "0"))))
                 for it in body.get("items") or []]
        today = datetime.now(UTC).date()
        term = detail.get("payment_term") if isinstance(detail, dict) else None
        due = term.get("due_date") if isinstance(term, dict) else None
        invoice = self.add_invoice(email, currency, items, invoice_date=today,
                                   due=date.fromisoformat(due) if isinstance(due, str)
                                   else today + timedelta(days=30))
        assert isinstance(detail, dict)
        invoice.reference = detail.get("reference")
        if isinstance(detail.get("note"), str):
            invoice.note = detail["note"]
        if isinstance(billing.get("name"), dict):
            invoice.recipient_name = billing["name"]
        base = str(request.base_url).rstrip("/")
        if request.headers.get("prefer") == "return=representation":
            return JSONResponse(invoice.to_json(base), status_code=201)
        return JSONResponse({"rel": "self", "href": f"{base}{INVOICES}/{invoice.id}",
                             "method": "GET"}, status_code=201)

    async def delete_invoice(self, request: Request) -> Response:
        invoice = self._invoice(request)
        if isinstance(invoice, Response):
            return invoice
        if invoice.status != "DRAFT":
            return unprocessable("CANNOT_DELETE_INVOICE", "Only draft invoices can be deleted.")
        del self.invoices[invoice.id]
        return Response(status_code=204)

    def _touch(self, invoice: PayPalInvoice, *keys: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for key in ("last_update_time", *keys):
            invoice.times[key] = stamp

    async def send(self, request: Request) -> Response:
        invoice = self._invoice(request)
        if isinstance(invoice, Response):
            return invoice
        body = await json_body(request)
        if invoice.status not in ("DRAFT", "SCHEDULED"):
            # [unverified] issue name; PayPal documents /remind for invoices already sent.
            return unprocessable("CANNOT_SEND_INVOICE",
                                 f"Invoice in {invoice.status} status cannot be sent.")
        base = str(request.base_url).rstrip("/")
        link = {"href": f"{invoice.to_json(base)['detail']['metadata']['recipient_view_url']}",
                "rel": "payer-view", "method": "GET"}
        if invoice.invoice_date > datetime.now(UTC).date():
            invoice.status = "SCHEDULED"
            self._touch(invoice)
            return JSONResponse({}, status_code=202)
        invoice.status = "SENT" if body.get("send_to_recipient", True) else "UNPAID"
        self._touch(invoice, "first_sent_time", "last_sent_time")
        return JSONResponse(link)

    async def remind(self, request: Request) -> Response:
        invoice = self._invoice(request)
        if isinstance(invoice, Response):
            return invoice
        if invoice.status not in ("SENT", "UNPAID", "PARTIALLY_PAID"):
            return unprocessable("CANNOT_REMIND_INVOICE", "You cannot remind an invoice which "
                                 "is in DRAFT status. Only UNPAID, SENT and PARTIALLY_PAID "
                                 "invoices can be reminded.")
        self._touch(invoice, "last_sent_time")
        return Response(status_code=204)

    async def cancel(self, request: Request) -> Response:
        invoice = self._invoice(request)
        if isinstance(invoice, Response):
            return invoice
        refusal = {
            "DRAFT": ("CANNOT_CANCEL_DRAFT_INVOICE", "Draft invoice cannot be canceled."),
            "SCHEDULED": ("CANNOT_CANCEL_SCHEDULED_INVOICE", "Cannot cancel a scheduled "
                          "invoice."),
            "CANCELLED": ("INVOICE_CANCELED_ALREADY", "Invoice is already cancelled."),
            "REFUNDED": ("CANNOT_CANCEL_REFUNDED_INVOICE", "Cannot cancel a refunded or "
                         "partially refunded invoice."),
            "PARTIALLY_REFUNDED": ("CANNOT_CANCEL_REFUNDED_INVOICE", "Cannot cancel a "
                                   "refunded or partially refunded invoice."),
        }.get(invoice.status)
        if refusal is None and (invoice.status in PAID_STATES or invoice.paid):
            refusal = ("CANNOT_CANCEL_PAID_INVOICE", "Cannot cancel a paid or partially paid "
                       "invoice.")
        if refusal:
            return unprocessable(*refusal)
        invoice.status = "CANCELLED"
        self._touch(invoice, "cancel_time")
        invoice.times["cancelled_by"] = "billing@panelql.test"
        return Response(status_code=204)

    async def record_payment(self, request: Request) -> Response:
        invoice = self._invoice(request)
        if isinstance(invoice, Response):
            return invoice
        body = await json_body(request)
        if not body.get("method"):
            return error(400, "INVALID_REQUEST", "Request is not well-formed, syntactically "
                         "incorrect, or violates schema.", issue="MISSING_REQUIRED_PARAMETER",
                         description="Payment method is missing. Please provide a valid "
                         "payment method.", field_="/method")
        if invoice.status not in ("SENT", "UNPAID", "PARTIALLY_PAID"):
            return unprocessable("CANNOT_PROCESS_PAYMENTS", "Current invoice state does not "
                                 "support payment processing.")
        owed = invoice.total - invoice.paid
        amount = Decimal(str((body.get("amount") or {}).get("value", owed)))
        if amount > owed:
            return unprocessable("PAYMENT_AMOUNT_GREATER_THAN_AMOUNT_DUE",
                                 "Payment amount is greater than the amount due.")
        payment_id = str(body.get("payment_id") or f"EXTR-{secrets.token_hex(8).upper()}")
        transaction = {
            "payment_id": payment_id, "type": "EXTERNAL", "method": body["method"],
            "payment_date": body.get("payment_date"), "note": body.get("note"),
            "amount": invoice._money(amount)}
        invoice.transactions.append({k: v for k, v in transaction.items() if v is not None})
        invoice.paid += amount
        if invoice.paid < invoice.total:
            invoice.status = "PARTIALLY_PAID"
        elif body["method"] == "CHECK":  # the check clears a little later
            invoice.status = "PAYMENT_PENDING"
            self.later(lambda: self._clear(invoice))
        else:
            invoice.status = "MARKED_AS_PAID"
        self._touch(invoice)
        return JSONResponse({"payment_id": payment_id})

    def _clear(self, invoice: PayPalInvoice) -> None:
        if invoice.status == "PAYMENT_PENDING":
            invoice.status = "MARKED_AS_PAID"

    # -- invoices: recorded refunds -----------------------------------------------------------
    async def record_refund(self, request: Request) -> Response:
        """``POST .../refunds`` (invoicing_v2.json ``invoices.refunds``): all payments
        refunded → REFUNDED (MARKED_AS_REFUNDED for money recorded as paid elsewhere), else
        PARTIALLY_REFUNDED; refused with the document's 422 issues."""
        invoice = self._invoice(request)
        if isinstance(invoice, Response):
            return invoice
        body = await json_body(request)
        if not body.get("method"):
            return error(400, "INVALID_REQUEST", "Request is not well-formed, syntactically "
                         "incorrect, or violates schema.", issue="MISSING_REQUIRED_PARAMETER",
                         field_="/method")
        if invoice.status not in REFUNDABLE_STATES:
            return unprocessable("CANNOT_PROCESS_REFUNDS",
                                 "Current invoice state does not support refunds.")
        left = invoice.paid - invoice.refunded
        amount = Decimal(str((body.get("amount") or {}).get("value", left)))
        if amount <= 0 or amount > left:
            return unprocessable("INVALID_REFUND_AMOUNT",
                                 "Recorded refunds cannot exceed recorded payments.")
        refund_id = f"EXTR-{secrets.token_hex(8).upper()}"
        record = {"refund_id": refund_id, "type": "EXTERNAL",
                  "refund_date": body.get("refund_date"), "method": body["method"],
                  "amount": invoice._money(amount)}
        invoice.refunds.append({k: v for k, v in record.items() if v is not None})
        invoice.refunded += amount
        if invoice.refunded < invoice.paid:
            invoice.status = "PARTIALLY_REFUNDED"
        else:
            by_paypal = any(t.get("method") == "PAYPAL" for t in invoice.transactions)
            invoice.status = "REFUNDED" if by_paypal else "MARKED_AS_REFUNDED"
        self._touch(invoice)
        return JSONResponse({"refund_id": refund_id})

    # -- Orders v2 and Payments v2 ------------------------------------------------------------
    def _once(self, handler: Any) -> Any:
        """``PayPal-Request-Id``: a POST repeating one gets the first answer again (PayPal
        keeps them for hours to days per API)."""
        async def endpoint(request: Request) -> Response:
            key = request.headers.get("paypal-request-id")
            seen = self.request_ids.get(key) if key else None
            if seen is not None and seen[0] == request.url.path:
                return Response(seen[2], status_code=200 if seen[1] == 201 else seen[1],
                                media_type="application/json")
            response: Response = await handler(request)
            if key and response.status_code < 500:
                self.request_ids[key] = (request.url.path, response.status_code,
                                         bytes(response.body))
            return response
        return endpoint

    @staticmethod
    def _stamp() -> str:
        return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _order_json(self, order: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in order.items() if not k.startswith("_")}

    def _not_found(self, what: str) -> JSONResponse:
        # The description is an enum of one text in checkout_orders_v2.json and
        # payments_payment_v2.json: ``what`` (order, capture) cannot be added to it.
        return error(404, "RESOURCE_NOT_FOUND", "The specified resource does not exist.",
                     issue="INVALID_RESOURCE_ID", description="Specified resource ID does not "
                     "exist. Please check the resource ID and try again.")

    async def create_order(self, request: Request) -> Response:
        """``POST /v2/checkout/orders`` with ``intent: CAPTURE``. With
        ``payment_source.paypal.experience_context`` the answer is PAYER_ACTION_REQUIRED and
        a ``payer-action`` link; without it CREATED and an ``approve`` link."""
        body = await json_body(request)
        units = body.get("purchase_units")
        if body.get("intent") != "CAPTURE" or not isinstance(units, list) or not units:
            return error(400, "INVALID_REQUEST", "Request is not well-formed, syntactically "
                         "incorrect, or violates schema.", issue="MISSING_REQUIRED_PARAMETER",
                         field_="/purchase_units" if body.get("intent") else "/intent")
        amount = units[0].get("amount") if isinstance(units[0], dict) else None
        if not isinstance(amount, dict) or not amount.get("value"):
            return error(400, "INVALID_REQUEST", "Request is not well-formed, syntactically "
                         "incorrect, or violates schema.", issue="MISSING_REQUIRED_PARAMETER",
                         field_="/purchase_units/@reference_id=='default'/amount")
        context = ((body.get("payment_source") or {}).get("paypal") or {}).get(
            "experience_context") or {}
        oid = "".join(self.random.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789") for _ in range(17))
        base = str(request.base_url).rstrip("/")
        approve = f"{base}/checkoutnow?token={oid}"
        order = {
            "id": oid, "intent": "CAPTURE",
            "status": "PAYER_ACTION_REQUIRED" if context else "CREATED",
            "purchase_units": [{k: v for k, v in units[0].items() if k in (
                "reference_id", "amount", "custom_id", "invoice_id", "description")}],
            "create_time": self._stamp(),
            "links": [{"href": f"{base}{ORDERS}/{oid}", "rel": "self", "method": "GET"},
                      {"href": approve, "rel": "payer-action" if context else "approve",
                       "method": "GET"},
                      {"href": f"{base}{ORDERS}/{oid}/capture", "rel": "capture",
                       "method": "POST"}],
            "_return_url": context.get("return_url"), "_cancel_url": context.get("cancel_url"),
            "_declined": False,
        }
        if context:
            order["payment_source"] = {"paypal": {}}
        self.orders[oid] = order
        return JSONResponse(self._order_json(order), status_code=201)

    async def get_order(self, request: Request) -> Response:
        order = self.orders.get(request.path_params["oid"])
        if order is None:
            return self._not_found("order")
        return JSONResponse(self._order_json(order))

    async def approval_page(self, request: Request) -> Response:
        order = self.orders.get(request.query_params.get("token", ""))
        if order is None:
            return HTMLResponse("<h1>Things don't appear to be working</h1>", status_code=404)
        amount = order["purchase_units"][0]["amount"]
        return HTMLResponse(
            f"<!doctype html><title>PayPal (simulator)</title><h1>Pay {amount['value']} "
            f"{amount['currency_code']}</h1><p>Order {order['id']}: {order['status']}</p>"
            f"<form method=post><button name=funding value=balance>Pay with PayPal balance"
            f"</button><button name=funding value=declined>Pay with a card that will be "
            f"declined</button></form>")

    async def approve(self, request: Request) -> Response:
        """The buyer approves on PayPal's page: the order becomes APPROVED and the browser
        goes to ``return_url?token=…&PayerID=…``. ``funding=declined`` approves with an
        instrument whose capture will be declined."""
        order = self.orders.get(request.query_params.get("token", ""))
        if order is None:
            return HTMLResponse("<h1>Things don't appear to be working</h1>", status_code=404)
        if order["status"] not in ("CREATED", "PAYER_ACTION_REQUIRED"):
            return HTMLResponse(f"<h1>This order is {order['status']}</h1>", status_code=409)
        form = dict(parse_qsl((await request.body()).decode()))
        order["_declined"] = form.get("funding") == "declined"
        order["status"] = "APPROVED"
        order["payer"] = {"payer_id": "".join(self.random.choice("23456789ABCDEFGHJKLMNPQRSTUVWXYZ")
                                              for _ in range(13)),
                          "email_address": "buyer@example.com"}
        back = order["_return_url"] or "about:blank"
        sep = "&" if "?" in back else "?"
        return RedirectResponse(f"{back}{sep}token={order['id']}&PayerID="
                                f"{order['payer']['payer_id']}", status_code=303)

    async def capture_order(self, request: Request) -> Response:
        """``POST /v2/checkout/orders/{id}/capture``: only an APPROVED order
        (422 ORDER_NOT_APPROVED, ORDER_ALREADY_CAPTURED). A declined instrument gives a
        DECLINED capture and PAYMENT.CAPTURE.DENIED [unverified: PayPal may instead answer
        422 INSTRUMENT_DECLINED, which the gateway treats the same way]."""
        order = self.orders.get(request.path_params["oid"])
        if order is None:
            return self._not_found("order")
        if order["status"] == "COMPLETED":
            return unprocessable("ORDER_ALREADY_CAPTURED", "Order already captured.If "
                                 "'intent=CAPTURE' only one capture per order is allowed.")
        if order["status"] != "APPROVED":
            return unprocessable("ORDER_NOT_APPROVED", "Payer has not yet approved the Order "
                                 "for payment. Please redirect the payer to the 'rel':'approve' "
                                 "url returned as part of the HATEOAS links within the Create "
                                 "Order call or provide a valid `payment_source` in the "
                                 "request.")
        unit = order["purchase_units"][0]
        cid = "".join(self.random.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789") for _ in range(17))
        base = str(request.base_url).rstrip("/")
        capture: dict[str, Any] = {
            "id": cid, "status": "DECLINED" if order["_declined"] else "COMPLETED",
            "amount": unit["amount"], "final_capture": True,
            "seller_protection": {"status": "ELIGIBLE",
                                  "dispute_categories": ["ITEM_NOT_RECEIVED",
                                                         "UNAUTHORIZED_TRANSACTION"]},
            "create_time": self._stamp(), "update_time": self._stamp(),
            "links": [{"href": f"{base}/v2/payments/captures/{cid}", "rel": "self",
                       "method": "GET"},
                      {"href": f"{base}{ORDERS}/{order['id']}", "rel": "up", "method": "GET"}],
        }
        if unit.get("custom_id"):
            capture["custom_id"] = unit["custom_id"]
        if unit.get("invoice_id"):
            capture["invoice_id"] = unit["invoice_id"]
        self.captures[cid] = {**capture, "_refunded": Decimal("0"), "_order": order["id"]}
        order["status"] = "COMPLETED"
        unit["payments"] = {"captures": [capture]}
        resource = {**capture, "supplementary_data": {"related_ids": {"order_id": order["id"]}}}
        if order["_declined"]:
            self.emit("PAYMENT.CAPTURE.DENIED", "capture", resource,
                      f"Payment denied for {unit['amount']['value']} "
                      f"{unit['amount']['currency_code']}")
        else:
            self.emit("PAYMENT.CAPTURE.COMPLETED", "capture", resource,
                      f"Payment completed for {unit['amount']['value']} "
                      f"{unit['amount']['currency_code']}")
        return JSONResponse(self._order_json(order), status_code=201)

    # -- disputes -----------------------------------------------------------------------------
    async def open_dispute(self, request: Request) -> Response:
        """``POST /__sim/disputes {"invoice_id": "INV2-…"}``: the payer disputes the PayPal
        payments recorded on an invoice, and ``CUSTOMER.DISPUTE.CREATED`` goes out with the
        dispute as its resource (customer_disputes_v1.json @ec4d8f36 ``dispute`` and
        ``transaction_info``). ``"invoice_number": false`` leaves the number out, as on
        PayPal's own sample; ``"transactions": [{"seller_transaction_id", "invoice_number"}]``
        disputes those instead (payments the gateway never invoiced)."""
        body = await json_body(request)
        disputed = body.get("transactions")
        if not isinstance(disputed, list):
            invoice = self.invoices.get(str(body.get("invoice_id")))
            if invoice is None:
                return JSONResponse({"error": "unknown invoice_id"}, status_code=404)
            number = invoice.number if body.get("invoice_number", True) is not False else None
            disputed = [{"seller_transaction_id": t["payment_id"], "invoice_number": number,
                         "gross_amount": t.get("amount")}
                        for t in invoice.transactions if t.get("method") == "PAYPAL"]
            if not disputed:
                return JSONResponse({"error": "no PayPal payment on that invoice"},
                                    status_code=409)
        dispute = self.dispute(disputed, str(body.get(
            "reason", "MERCHANDISE_OR_SERVICE_NOT_RECEIVED")))
        event = self.emit("CUSTOMER.DISPUTE.CREATED", "dispute", dispute,
                          f"A new dispute opened with Case # {dispute['dispute_id']}")
        return JSONResponse({"dispute": dispute["dispute_id"], "event": event["id"]})

    def dispute(self, transactions: list[dict[str, Any]], reason: str) -> dict[str, Any]:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        dispute_id = f"PP-D-{self.random.randrange(10_000, 100_000)}"
        amount = next((t["gross_amount"] for t in transactions
                       if isinstance(t.get("gross_amount"), dict)), None)
        return {
            "dispute_id": dispute_id, "create_time": stamp, "update_time": stamp,
            "disputed_transactions": [
                {**{k: v for k, v in t.items() if v is not None}, "create_time": stamp,
                 "transaction_status": "COMPLETED",
                 "seller": {"merchant_id": "RD465XN5VS364", "name": "PanelQL Hosting (sim)"}}
                for t in transactions],
            "reason": reason, "status": "OPEN",
            **({"dispute_amount": amount} if amount else {}),
            "dispute_life_cycle_stage": "INQUIRY", "dispute_channel": "INTERNAL",
            "links": [{"href": f"https://api-m.sandbox.paypal.com/v1/customer/disputes/"
                               f"{dispute_id}", "rel": "self", "method": "GET"}],
        }

    async def get_capture(self, request: Request) -> Response:
        capture = self.captures.get(request.path_params["cid"])
        if capture is None:
            return self._not_found("capture")
        return JSONResponse({k: v for k, v in capture.items() if not k.startswith("_")})

    async def refund_capture(self, request: Request) -> Response:
        """``POST /v2/payments/captures/{id}/refund``: the whole rest without an amount; more
        than is left is 422 REFUND_AMOUNT_EXCEEDED, nothing left CAPTURE_FULLY_REFUNDED."""
        capture = self.captures.get(request.path_params["cid"])
        if capture is None:
            return self._not_found("capture")
        if capture["status"] not in ("COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"):
            return unprocessable("REFUND_NOT_ALLOWED", "Refund cannot be issued against this "
                                 "capture.")
        body = await json_body(request)
        total = Decimal(capture["amount"]["value"])
        left = total - capture["_refunded"]
        if left <= 0:
            return unprocessable("CAPTURE_FULLY_REFUNDED", "The capture has already been "
                                 "fully refunded")
        amount = Decimal(str((body.get("amount") or {}).get("value", left)))
        if amount > left:
            return unprocessable("REFUND_AMOUNT_EXCEEDED", "The refund amount must be less "
                                 "than or equal to the capture amount that has not yet been "
                                 "refunded.")
        capture["_refunded"] += amount
        capture["status"] = "REFUNDED" if capture["_refunded"] >= total else "PARTIALLY_REFUNDED"
        rid = "".join(self.random.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789") for _ in range(17))
        base = str(request.base_url).rstrip("/")
        refund: dict[str, Any] = {
            "id": rid, "status": "COMPLETED",
            "amount": {"currency_code": capture["amount"]["currency_code"],
                       "value": str(amount)},
            "create_time": self._stamp(), "update_time": self._stamp(),
            "links": [{"href": f"{base}/v2/payments/refunds/{rid}", "rel": "self",
                       "method": "GET"},
                      {"href": f"{base}/v2/payments/captures/{capture['id']}", "rel": "up",
                       "method": "GET"}]}
        for name in ("custom_id", "invoice_id", "note_to_payer"):
            if body.get(name):
                refund[name] = body[name]
        self.refunds[rid] = refund
        self.emit("PAYMENT.CAPTURE.REFUNDED", "refund", refund,
                  f"A {amount} {capture['amount']['currency_code']} capture payment was "
                  f"refunded")
        return JSONResponse(refund, status_code=201)

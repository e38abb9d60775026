"""Stripe adapter: invoices read and driven through the ``stripe`` library's async client.

Every call goes through ``StripeClient.v1.invoices.*_async``; nothing here builds Stripe HTTP
requests by hand. The library's HTTPX client is handed the gateway's pooled ``httpx`` client
(so ``ClientFactory`` settings and injected transports apply) and records each answer's HTTP
status, so a body the library cannot read still maps by status.

Batching: ``list_invoices()`` pages ``GET /v1/invoices`` 100 at a time (``has_more`` +
``starting_after``); with ``customer_ids`` it runs one such list per customer, concurrently.
Stripe has no get-by-ids, so ``get_invoices`` retrieves a few ids one by one (bounded) and lists
everything when asked for many.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from functools import partial
from typing import Any, Self, TypeVar

import httpx
import stripe
from stripe import RequestOptions
from stripe.params import InvoiceListParams, InvoicePayParams

from panelql.domain.records import (
    BillingCustomer,
    Collection,
    InvoiceRecord,
    InvoiceSpec,
    PaymentLink,
)
from panelql.providers.bounded import Bounded
from panelql.providers.config import ConnectionConfig
from panelql.providers.contract import BillingProvider, Capability, Family, WebhookReceiver
from panelql.providers.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidRequest,
    NotFound,
    ProviderError,
    RateLimited,
    Unavailable,
    UnexpectedResponse,
)
from panelql.providers.http import ClientFactory, expect
from panelql.providers.retry_after import retry_after
from panelql.providers.stripe.mapping import (
    decimal_to_minor,
    invoice_record,
    is_state_error,
    timestamp,
)
from panelql.providers.stripe.receiver import StripeReceiver
from panelql.providers.stripe.webhooks import StripeWebhooks
from panelql.providers.transport import ResponseTooLarge

PAGE = 100
CONCURRENCY = 8
# Up to this many ids, single retrieves beat listing every invoice of the account.
SINGLE_GET_LIMIT = 20

T = TypeVar("T")
_last_status: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "stripe_last_status", default=None
)


class GatewayHTTPClient(stripe.HTTPClient):
    """stripe's extension point for transports (a ``stripe.HTTPClient`` subclass passed as
    ``StripeClient(http_client=…)``; stripe/_http_client.py, stripe-python 16.1), sending
    through the gateway's pooled ``httpx`` client: its transport, limits and TLS settings."""

    name = "panelql-httpx"

    def __init__(self, client: httpx.AsyncClient, timeout: float) -> None:
        super().__init__()
        self.client = client
        self.timeout = timeout

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        _last_status.set(None)
        try:
            response = await self.client.request(
                method, url, headers=headers, content=post_data or None, timeout=self.timeout)
        except Exception as exc:
            # The library's contract: a transport failure is an APIConnectionError, whose
            # should_retry lets its own retries (max_network_retries) take it up.
            raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]  # stripe's own
                f"network error talking to Stripe ({type(exc).__name__})", should_retry=True
            ) from exc
        _last_status.set(response.status_code)
        return response.content, response.status_code, response.headers

    def sleep_async(self, secs: float) -> Awaitable[None]:
        return asyncio.sleep(secs)

    async def close_async(self) -> None:
        """The factory owns the injected client and closes it."""


class StripeProvider(BillingProvider):
    kind = "stripe"
    families = frozenset({Family.BILLING})
    capabilities = frozenset(
        {Capability.INVOICE_READ, Capability.INVOICE_FINALIZE, Capability.INVOICE_PAY,
         Capability.INVOICE_VOID, Capability.INVOICE_SEND, Capability.INVOICE_CREATE,
         Capability.INVOICE_CHECKOUT, Capability.INVOICE_REFUND, Capability.BILLING_CUSTOMER}
    )

    def __init__(self, config: ConnectionConfig, client: stripe.StripeClient) -> None:
        super().__init__(config)
        self.client = client
        self._limit = Bounded(CONCURRENCY)
        # Pay with ``paid_out_of_band`` (mark paid, money collected elsewhere) instead of
        # charging the customer's default payment method.
        self.pay_out_of_band = bool(config.options.get("pay_out_of_band", False))
        self.pay_collection = (Collection.RECORDED_OUT_OF_BAND if self.pay_out_of_band
                               else Collection.CHARGED_SAVED_METHOD)

    @classmethod
    def from_config(cls, config: ConnectionConfig, clients: ClientFactory) -> Self:
        base = config.base_url.rstrip("/") or stripe.DEFAULT_API_BASE
        http = GatewayHTTPClient(
            clients.build(base, timeout=config.timeout_seconds), config.timeout_seconds
        )
        client = stripe.StripeClient(
            config.credential("api_key"),
            http_client=http,
            base_addresses={"api": base},
            # The gateway retries at its own layer (with idempotency keys); opt in here to let
            # the library retry 409/5xx/network errors too.
            max_network_retries=int(config.options.get("max_network_retries", 0)),
            stripe_version=config.options.get("stripe_version"),
        )
        return cls(config, client)

    async def _call(self, fn: Callable[[], Awaitable[T]], *, action: bool = False) -> T:
        """The one error boundary: stripe exceptions → the provider error tree."""
        try:
            return await fn()
        except stripe.StripeError as exc:
            raise stripe_error(exc, self.name, action=action) from exc
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            # The library choked on a body that is not Stripe's (a proxy's error page…).
            raise status_error(_last_status.get(), self.name) from exc

    async def check_health(self) -> None:
        await self._call(lambda: self.client.v1.invoices.list_async(params={"limit": 1}))

    # -- reads --------------------------------------------------------------------------------
    async def list_invoices(
        self, *, customer_ids: Sequence[str] | None = None
    ) -> list[InvoiceRecord]:
        if customer_ids is None:
            return await self._list(None)
        pages = await self._limit.gather(self._list(cid) for cid in dict.fromkeys(customer_ids))
        return [invoice for page in pages for invoice in page]

    async def _list(self, customer: str | None) -> list[InvoiceRecord]:
        invoices: list[InvoiceRecord] = []
        cursor: str | None = None
        while True:
            query: InvoiceListParams = {"limit": PAGE}
            if customer:
                query["customer"] = customer
            if cursor:
                query["starting_after"] = cursor
            page = await self._call(partial(self.client.v1.invoices.list_async, params=query))
            data: Any = getattr(page, "data", None)
            expect(isinstance(data, list), self.name, "invoice list")
            invoices.extend(self._record(item) for item in data)
            if not getattr(page, "has_more", False) or not data:
                return invoices
            # A page that does not move the cursor would loop forever.
            expect(invoices[-1].id != cursor, self.name, "page cursor")
            cursor = invoices[-1].id

    async def get_invoices(self, ids: Sequence[str]) -> Mapping[str, InvoiceRecord]:
        wanted = list(dict.fromkeys(ids))
        if len(wanted) > SINGLE_GET_LIMIT:
            return await super().get_invoices(wanted)
        found = await self._limit.gather(self._find(i) for i in wanted)
        return {record.id: record for record in found if record is not None}

    async def _find(self, invoice_id: str) -> InvoiceRecord | None:
        try:
            return await self.get_invoice(invoice_id)
        except NotFound:
            return None

    async def get_invoice(self, invoice_id: str) -> InvoiceRecord:
        raw = await self._call(lambda: self.client.v1.invoices.retrieve_async(invoice_id))
        return self._record(raw)

    def _record(self, obj: Any) -> InvoiceRecord:
        raw = obj.to_dict() if isinstance(obj, stripe.StripeObject) else obj
        return invoice_record(raw, self.name, self.name)

    def webhooks(self) -> StripeWebhooks:
        """The verifier for this connection's webhook endpoint (credential ``webhook_secret``)."""
        return StripeWebhooks.from_config(self.config)

    def webhook_receiver(self) -> WebhookReceiver | None:
        try:
            return StripeReceiver(self.webhooks(), self)
        except KeyError:  # the connection has no webhook secret: webhooks are not configured
            return None

    # -- lifecycle ----------------------------------------------------------------------------
    async def finalize_invoice(self, invoice_id: str) -> InvoiceRecord:
        invoices = self.client.v1.invoices
        return self._record(await self._call(
            lambda: invoices.finalize_invoice_async(invoice_id), action=True))

    async def pay_invoice(self, invoice_id: str) -> InvoiceRecord:
        params: InvoicePayParams = {"paid_out_of_band": True} if self.pay_out_of_band else {}
        invoices = self.client.v1.invoices
        return self._record(await self._call(
            lambda: invoices.pay_async(invoice_id, params=params), action=True))

    async def void_invoice(self, invoice_id: str) -> InvoiceRecord:
        invoices = self.client.v1.invoices
        return self._record(await self._call(
            lambda: invoices.void_invoice_async(invoice_id), action=True))

    async def send_invoice(self, invoice_id: str) -> InvoiceRecord:
        invoices = self.client.v1.invoices
        return self._record(await self._call(
            lambda: invoices.send_invoice_async(invoice_id), action=True))


    # -- money in and out (stripe-python 16.1.0, API 2026-10-28.endive) -----------------------
    async def ensure_customer(self, customer: BillingCustomer, known_id: str | None,
                              key: str | None) -> str:
        """The Customer tagged ``metadata.panelql_customer_ref``: the linked one while it
        exists, else one with that tag among the email's customers, else a new one."""
        customers = self.client.v1.customers
        if known_id is not None:
            try:
                found = await self._call(lambda: customers.retrieve_async(known_id))
                if not getattr(found, "deleted", False):
                    return known_id
            except NotFound:
                pass
        page = await self._call(lambda: customers.list_async(
            params={"email": customer.email, "limit": 100}))
        for item in getattr(page, "data", []) or []:
            raw = item.to_dict() if isinstance(item, stripe.StripeObject) else {}
            tags = raw.get("metadata")
            if isinstance(tags, dict) and tags.get("panelql_customer_ref") \
                    == customer.customer_ref:
                return str(raw["id"])
        params: dict[str, Any] = {"email": customer.email,
                                  "metadata": {"panelql_customer_ref": customer.customer_ref}}
        if customer.name:
            params["name"] = customer.name
        created = await self._call(lambda: customers.create_async(
            params=params, options=_options(key, "customer")), action=True)  # type: ignore[arg-type]
        return str(created.id)

    async def create_invoice(self, spec: InvoiceSpec, key: str | None) -> InvoiceRecord:
        """A draft invoice, then one invoice item per line attached to it (Stripe adds pending
        items to a new invoice only when asked; attaching keeps other pending items out)."""
        currency = spec.currency.lower()
        metadata = {"panelql_customer_ref": spec.customer.customer_ref}
        if spec.external_ref:
            metadata["external_ref"] = spec.external_ref
        params: dict[str, Any] = {
            "customer": spec.customer_id, "currency": currency, "auto_advance": False,
            "collection_method": "send_invoice", "metadata": metadata,
            "pending_invoice_items_behavior": "exclude",
        }
        if spec.due_date is not None:
            params["due_date"] = int(spec.due_date.timestamp())
        else:
            params["days_until_due"] = int(self.config.options.get("days_until_due", 30))
        if spec.memo:
            params["description"] = spec.memo
        invoices, items = self.client.v1.invoices, self.client.v1.invoice_items
        draft = await self._call(lambda: invoices.create_async(
            params=params, options=_options(key, "invoice")), action=True)  # type: ignore[arg-type]
        for n, line in enumerate(spec.lines):
            item = {"customer": spec.customer_id, "invoice": draft.id, "currency": currency,
                    "description": line.description, "quantity": line.quantity,
                    "unit_amount_decimal": str(decimal_to_minor(line.unit_amount, currency))}
            await self._call(partial(items.create_async, params=item,  # type: ignore[arg-type]
                                     options=_options(key, f"item-{n}")), action=True)
        return await self.get_invoice(draft.id)

    async def checkout(self, invoice: InvoiceRecord, return_url: str, cancel_url: str,
                       key: str | None) -> PaymentLink:
        """A Checkout Session for what the invoice still owes. Checkout cannot pay an invoice
        by itself: its PaymentIntent is attached to the invoice when
        ``checkout.session.completed`` arrives (:meth:`attach_checkout`)."""
        currency = invoice.amount_due.currency.lower()
        name = f"Invoice {invoice.number or invoice.id}"
        metadata = {"panelql_invoice": invoice.id}
        params: dict[str, Any] = {
            "mode": "payment", "success_url": return_url, "cancel_url": cancel_url,
            "client_reference_id": invoice.id, "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "line_items": [{"quantity": 1, "price_data": {
                "currency": currency, "product_data": {"name": name},
                "unit_amount": decimal_to_minor(invoice.amount_due.amount, currency)}}],
        }
        if invoice.customer_id:
            params["customer"] = invoice.customer_id
        sessions = self.client.v1.checkout.sessions
        session = await self._call(lambda: sessions.create_async(
            params=params, options=_options(key, "checkout")), action=True)  # type: ignore[arg-type]
        url = getattr(session, "url", None)
        expect(isinstance(url, str), self.name, "checkout session url")
        return PaymentLink(url=str(url), kind="CHECKOUT_SESSION", id=str(session.id),
                           expires_at=timestamp(getattr(session, "expires_at", None)))

    async def attach_checkout(self, session: Mapping[str, Any], event_id: str
                              ) -> InvoiceRecord | None:
        """After ``checkout.session.completed``: credit the session's PaymentIntent to the
        invoice named in its metadata (``POST /v1/invoices/{id}/attach_payment``). None for a
        session the gateway did not create; a replayed event finds the payment attached."""
        metadata = session.get("metadata") if isinstance(session.get("metadata"), dict) else {}
        invoice_id = metadata.get("panelql_invoice") if isinstance(metadata, dict) else None
        intent = session.get("payment_intent")
        if isinstance(intent, dict):
            intent = intent.get("id")
        if not isinstance(invoice_id, str) or not isinstance(intent, str):
            return None
        if session.get("payment_status") != "paid":
            return await self.get_invoice(invoice_id)
        current = await self.get_invoice(invoice_id)
        if current.raw_status != "open":  # paid already (a replay), or voided meanwhile
            return current
        invoices = self.client.v1.invoices
        return self._record(await self._call(lambda: invoices.attach_payment_async(
            invoice_id, params={"payment_intent": intent},
            options={"idempotency_key": f"panelql-attach-{event_id}"}), action=True))

    async def invoice_of_payment(self, payment_intent: str) -> InvoiceRecord | None:
        """The invoice a PaymentIntent was credited to (``GET /v1/invoice_payments``)."""
        payments = self.client.v1.invoice_payments
        page = await self._call(lambda: payments.list_async(params={
            "payment": {"type": "payment_intent", "payment_intent": payment_intent},
            "limit": 1}))
        data = getattr(page, "data", None) or []
        if not data:
            return None
        invoice = data[0].invoice
        invoice_id = invoice if isinstance(invoice, str) else getattr(invoice, "id", None)
        return await self.get_invoice(str(invoice_id)) if invoice_id else None

    async def refund_invoice(self, invoice: InvoiceRecord, amount: Decimal,
                             key: str | None) -> InvoiceRecord:
        """A credit note after payment: ``refund_amount`` gives money back through the
        invoice's card payments, ``out_of_band_amount`` records it for an invoice paid
        elsewhere (``paid_out_of_band``), as Stripe's credit notes document."""
        currency = invoice.total.currency.lower()
        minor = decimal_to_minor(amount, currency)
        payments = self.client.v1.invoice_payments
        page = await self._call(lambda: payments.list_async(
            params={"invoice": invoice.id, "status": "paid", "limit": 100}))
        by_card = sum(int(getattr(p, "amount_paid", 0) or 0)
                      for p in getattr(page, "data", None) or []
                      if getattr(getattr(p, "payment", None), "type", None) == "payment_intent")
        refunded = decimal_to_minor(invoice.amount_refunded.amount, currency) \
            if invoice.amount_refunded else 0
        through_card = max(0, min(minor, by_card - refunded))
        params: dict[str, Any] = {"invoice": invoice.id, "amount": minor,
                                  "reason": "requested_by_customer"}
        if through_card:
            params["refund_amount"] = through_card
        if minor - through_card:
            params["out_of_band_amount"] = minor - through_card
        notes = self.client.v1.credit_notes
        await self._call(lambda: notes.create_async(
            params=params, options=_options(key, "refund")), action=True)  # type: ignore[arg-type]
        return await self.get_invoice(invoice.id)


def _options(key: str | None, step: str) -> RequestOptions:
    """Stripe ``Idempotency-Key`` for one step of a mutation (None: the library's own)."""
    return {"idempotency_key": f"{key}:{step}"} if key else {}


def stripe_error(exc: stripe.StripeError, provider: str, *, action: bool = False) -> ProviderError:
    """Map one stripe exception to the most specific ProviderError (most specific class first)."""
    status = exc.http_status
    code = exc.code
    message = exc.user_message or None
    kwargs: dict[str, Any] = {
        "provider": provider, "upstream_status": status,
        "debug": {"type": type(exc).__name__, "code": code, "request_id": exc.request_id},
    }
    if isinstance(exc, stripe.CardError):
        # The customer's payment method refused; Stripe writes these messages for end users.
        return Conflict(message or "the payment was declined", **kwargs)
    if isinstance(exc, stripe.IdempotencyError):
        return InvalidRequest("the idempotency key was reused with other parameters", **kwargs)
    if isinstance(exc, stripe.InvalidRequestError):
        param = exc.param
        if status == 404 or code == "resource_missing":
            return NotFound(message or "not found upstream", **kwargs)
        if action and is_state_error(code, message, param):
            return Conflict(message or "the invoice is in the wrong state", **kwargs)
        fields = {param: message or "invalid"} if param else None
        return InvalidRequest(message or f"{provider} rejected the request", fields=fields,
                              **kwargs)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        # Stripe's message echoes part of the key: never pass it on.
        return AuthenticationFailed(f"{provider} rejected the gateway's credentials", **kwargs)
    if isinstance(exc, stripe.RateLimitError):
        return RateLimited(f"{provider} is rate limiting the gateway",
                           retry_after=retry_after(exc.headers), **kwargs)
    if isinstance(exc, stripe.APIConnectionError):
        if isinstance(exc.__cause__, ResponseTooLarge):
            return UnexpectedResponse(f"{provider} answered with more data than the gateway "
                                      "accepts", **kwargs)
        timed_out = isinstance(exc.__cause__, httpx.TimeoutException)
        text = "timed out" if timed_out else "is unreachable"
        return Unavailable(f"{provider} {text}", **kwargs)
    return status_error(status, provider, kwargs)


def status_error(
    status: int | None, provider: str, kwargs: dict[str, Any] | None = None
) -> ProviderError:
    """Errors known only by HTTP status (APIError, or a body the library could not read)."""
    kwargs = kwargs or {"provider": provider, "upstream_status": status}
    if status is not None and status >= 500:
        return Unavailable(f"{provider} is failing (HTTP {status})", **kwargs)
    if status in (401, 403):
        return AuthenticationFailed(f"{provider} rejected the gateway's credentials", **kwargs)
    if status == 404:
        return NotFound("not found upstream", **kwargs)
    if status == 409:  # lock_timeout and friends: another request is changing the object
        return Conflict(f"{provider} is busy with this object; retry", retryable=True, **kwargs)
    if status == 429:
        return RateLimited(f"{provider} is rate limiting the gateway", **kwargs)
    if status in (400, 422):
        return InvalidRequest(f"{provider} rejected the request", **kwargs)
    return UnexpectedResponse(f"{provider} sent an answer the gateway cannot read", **kwargs)



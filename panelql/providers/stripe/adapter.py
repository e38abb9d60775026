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
from functools import partial
from typing import Any, Self, TypeVar

import httpx
import stripe
from stripe.params import InvoiceListParams, InvoicePayParams

from panelql.domain.records import InvoiceRecord
from panelql.providers.config import ConnectionConfig
from panelql.providers.contract import BillingProvider, Capability, Family
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
from panelql.providers.stripe.mapping import invoice_record, is_state_error
from panelql.providers.stripe.webhooks import StripeWebhooks

PAGE = 100
CONCURRENCY = 8
# Up to this many ids, single retrieves beat listing every invoice of the account.
SINGLE_GET_LIMIT = 20

T = TypeVar("T")
_last_status: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "stripe_last_status", default=None
)


class GatewayHTTPXClient(stripe.HTTPXClient):
    """The library's HTTPX client, sending through the gateway's pooled ``httpx`` client."""

    def __init__(self, client: httpx.AsyncClient, timeout: float) -> None:
        super().__init__(timeout=timeout)
        # The library builds its own AsyncClient; use the injected one instead (same interface).
        self._client_async = client

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        _last_status.set(None)
        content, status, response_headers = await super().request_async(
            method, url, headers, post_data
        )
        _last_status.set(status)
        return content, status, response_headers

    def _get_request_args_kwargs(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> list[Any]:
        # stripe passes the encoded form as ``data=``; httpx 0.28 deprecates raw ``data`` (a
        # DeprecationWarning on every POST with a body), ``content=`` is the same bytes.
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        if isinstance(kwargs.get("data"), str | bytes):
            kwargs["content"] = kwargs.pop("data")
        return [args, kwargs]

    async def close_async(self) -> None:
        """The factory owns the injected client and closes it."""


class StripeProvider(BillingProvider):
    kind = "stripe"
    families = frozenset({Family.BILLING})
    capabilities = frozenset(
        {Capability.INVOICE_READ, Capability.INVOICE_FINALIZE, Capability.INVOICE_PAY,
         Capability.INVOICE_VOID, Capability.INVOICE_SEND}
    )

    def __init__(self, config: ConnectionConfig, client: stripe.StripeClient) -> None:
        super().__init__(config)
        self.client = client
        self._limit = asyncio.Semaphore(CONCURRENCY)
        # Pay with ``paid_out_of_band`` (mark paid, money collected elsewhere) instead of
        # charging the customer's default payment method.
        self.pay_out_of_band = bool(config.options.get("pay_out_of_band", False))

    @classmethod
    def from_config(cls, config: ConnectionConfig, clients: ClientFactory) -> Self:
        base = config.base_url.rstrip("/") or stripe.DEFAULT_API_BASE
        http = GatewayHTTPXClient(
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
        pages = await asyncio.gather(
            *(self._bounded(self._list(cid)) for cid in dict.fromkeys(customer_ids))
        )
        return [invoice for page in pages for invoice in page]

    async def _bounded(self, work: Awaitable[T]) -> T:
        async with self._limit:
            return await work

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
        found = await asyncio.gather(*(self._bounded(self._find(i)) for i in wanted))
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
                           retry_after=_retry_after(exc.headers), **kwargs)
    if isinstance(exc, stripe.APIConnectionError):
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


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    value = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after")
    try:
        return float(value) if value else None
    except ValueError:
        return None

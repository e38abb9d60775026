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
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Self

import httpx

from panelql.domain.records import InvoiceRecord
from panelql.providers.config import ConnectionConfig
from panelql.providers.contract import BillingProvider, Capability, Family
from panelql.providers.errors import AuthenticationFailed, Conflict, InvalidRequest, NotFound
from panelql.providers.http import ClientFactory, Upstream, expect
from panelql.providers.paypal.mapping import (
    FINALIZABLE,
    REMINDABLE,
    SENDABLE,
    invoice_record,
)

PAGE = 100
CONCURRENCY = 8
SINGLE_GET_LIMIT = 20
TOKEN_MARGIN = 60.0  # renew this many seconds before PayPal says the token expires
INVOICES = "/v2/invoicing/invoices"


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
         Capability.INVOICE_VOID, Capability.INVOICE_SEND}
    )

    def __init__(self, config: ConnectionConfig, upstream: Upstream, *, client_id: str,
                 client_secret: str) -> None:
        super().__init__(config)
        self.api = upstream
        self._basic = httpx.BasicAuth(client_id, client_secret)
        self._token: str | None = None
        self._expires = 0.0
        self._token_lock = asyncio.Lock()
        self._limit = asyncio.Semaphore(CONCURRENCY)
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
        extra = kwargs.pop("headers", {})
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
        found = await asyncio.gather(*(
            self._bounded_pages({"recipient_email": email})
            for email in dict.fromkeys(customer_ids)
        ))
        return [invoice for page in found for invoice in page]

    async def _bounded_pages(self, search: dict[str, Any]) -> list[InvoiceRecord]:
        async with self._limit:
            return await self._pages("POST", "/v2/invoicing/search-invoices", search)

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

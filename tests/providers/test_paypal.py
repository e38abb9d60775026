from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
import respx

from panelql.domain.status import InvoiceStatus
from panelql.providers import errors
from panelql.providers.paypal.adapter import PayPalProvider
from panelql.providers.paypal.mapping import INVOICE_STATUS
from panelql.providers.stripe.mapping import is_overdue
from panelql_sim.paypal import PayPalSim
from panelql_sim.runner import BackgroundServers
from tests.providers.contract import BillingContract, ContractEnv
from tests.providers.helpers import builder, fixture

BASE = "http://paypal.test"
TOKEN = "/v1/oauth2/token"
INVOICES = "/v2/invoicing/invoices"


@pytest.fixture(scope="module")
def sim(background: BackgroundServers) -> Iterator[tuple[PayPalSim, str]]:
    panel = PayPalSim()
    served = background.serve("paypal-contract", panel.app())
    yield panel, served.url


def _build(url: str, **overrides: str) -> PayPalProvider:
    provider = builder("paypal", url, client_id="pp_demo_client",
                       client_secret="pp_demo_secret")(**overrides)
    assert isinstance(provider, PayPalProvider)
    return provider


@pytest.fixture
def env(sim: tuple[PayPalSim, str]) -> ContractEnv:
    panel, url = sim
    build = builder("paypal", url, client_id=panel.client_id, client_secret=panel.client_secret)
    return ContractEnv(
        provider=build(), knobs=panel.knobs,
        with_bad_credentials=lambda: build(client_secret="wrong_secret"),
        with_timeout=lambda t: build(timeout=t),
        upstream_totals=lambda: {  # what the simulator sends as the invoice's amount
            i.id: (Decimal(i.to_json("")["amount"]["value"]), i.currency)
            for i in panel.invoices.values()},
    )


class TestPayPalContract(BillingContract):
    pass


def _first(panel: PayPalSim, *statuses: str) -> str:
    for invoice in panel.invoices.values():
        if invoice.status in statuses:
            return invoice.id
    raise AssertionError(f"no {statuses} invoice in the simulator")


# -- against the simulator -------------------------------------------------------------------


async def test_list_is_one_token_and_one_page_per_hundred(sim: tuple[PayPalSim, str]) -> None:
    panel, url = sim
    provider = _build(url)
    panel.reset_stats()
    invoices = await provider.list_invoices()
    assert len(invoices) == len(panel.invoices)
    assert panel.stats == {"POST /*/*/token": 1, "GET /*/invoicing/invoices": 1}
    await provider.list_invoices()
    assert panel.stats["POST /*/*/token"] == 1  # the token is cached
    assert {i.raw_status for i in invoices} >= {"DRAFT", "SENT", "PAID", "CANCELLED",
                                                "PARTIALLY_PAID", "SCHEDULED"}
    assert any(is_overdue(i) for i in invoices)
    jpy = [i for i in invoices if i.total.currency == "JPY"]
    assert jpy and all(i.total.amount == i.total.amount.to_integral_value() for i in jpy)


async def test_list_pages_through_many(background: BackgroundServers) -> None:
    panel = PayPalSim(invoices=250, seed=4)
    served = background.serve("paypal-many", panel.app())
    invoices = await _build(served.url).list_invoices()
    assert len({i.id for i in invoices}) == 250
    assert panel.stats["GET /*/invoicing/invoices"] == 3
    background.stop_one("paypal-many")


async def test_customer_filter_searches_by_recipient(sim: tuple[PayPalSim, str]) -> None:
    panel, url = sim
    provider = _build(url)
    panel.reset_stats()
    emails = ["customer1@example.com", "customer2@example.com"]
    invoices = await provider.list_invoices(customer_ids=emails)
    assert panel.stats["POST /*/invoicing/search-invoices"] == 2
    assert {i.customer_id for i in invoices} == set(emails)
    assert len(invoices) == sum(1 for i in panel.invoices.values() if i.recipient in emails)


async def test_get_invoices_skips_missing(sim: tuple[PayPalSim, str]) -> None:
    panel, url = sim
    provider = _build(url)
    some = list(panel.invoices)[:3]
    found = await provider.get_invoices([*some, "INV2-NOPE-NOPE-NOPE-NOPE"])
    assert set(found) == set(some)


async def test_token_is_fetched_again_once_after_401(sim: tuple[PayPalSim, str]) -> None:
    panel, url = sim
    provider = _build(url)
    await provider.check_health()
    panel.expire_tokens()
    panel.reset_stats()
    await provider.check_health()
    assert panel.stats["POST /*/*/token"] == 1
    assert panel.stats["GET /*/invoicing/invoices"] == 2


async def test_token_renewed_before_expiry(background: BackgroundServers) -> None:
    panel = PayPalSim(invoices=2, token_ttl=30)  # shorter than the renewal margin
    served = background.serve("paypal-ttl", panel.app())
    provider = _build(served.url)
    await provider.check_health()
    await provider.check_health()
    assert panel.stats["POST /*/*/token"] == 2
    assert panel.stats["GET /*/invoicing/invoices"] == 2  # never a 401 round trip
    background.stop_one("paypal-ttl")


async def test_finalize_send_pay_and_conflicts(sim: tuple[PayPalSim, str]) -> None:
    panel, url = sim
    provider = _build(url)
    draft = _first(panel, "DRAFT")
    opened = await provider.finalize_invoice(draft)
    assert opened.status is InvoiceStatus.OPEN and opened.raw_status == "UNPAID"
    with pytest.raises(errors.Conflict) as info:
        await provider.finalize_invoice(draft)
    assert info.value.current_status == "UNPAID"
    panel.reset_stats()
    reminded = await provider.send_invoice(draft)  # already out: a reminder
    assert reminded.raw_status == "UNPAID"
    assert panel.stats["POST /*/invoicing/invoices/*/remind"] == 1
    paid = await provider.pay_invoice(draft)
    assert paid.status is InvoiceStatus.PAID and paid.raw_status == "MARKED_AS_PAID"
    assert paid.amount_paid == paid.total and paid.amount_due.amount == 0
    with pytest.raises(errors.Conflict):
        await provider.pay_invoice(draft)
    with pytest.raises(errors.Conflict) as cancel:
        await provider.void_invoice(draft)
    assert cancel.value.message == "Cannot cancel a paid or partially paid invoice."
    with pytest.raises(errors.Conflict):
        await provider.send_invoice(draft)


async def test_send_draft_and_void(sim: tuple[PayPalSim, str]) -> None:
    panel, url = sim
    provider = _build(url)
    draft = _first(panel, "DRAFT")
    sent = await provider.send_invoice(draft)
    assert sent.raw_status == "SENT" and panel.invoices[draft].status == "SENT"
    voided = await provider.void_invoice(draft)
    assert voided.status is InvoiceStatus.VOID and voided.amount_due.amount == 0
    with pytest.raises(errors.Conflict):
        await provider.void_invoice(draft)
    with pytest.raises(errors.NotFound):
        await provider.void_invoice("INV2-NOPE-NOPE-NOPE-NOPE")


async def test_check_payment_settles_later(sim: tuple[PayPalSim, str]) -> None:
    panel, url = sim
    panel.knobs.transition_seconds = 0.2
    provider = builder("paypal", url, client_id=panel.client_id,
                       client_secret=panel.client_secret)()
    assert isinstance(provider, PayPalProvider)
    provider.payment_method = "CHECK"
    try:
        invoice_id = _first(panel, "SENT", "UNPAID")
        pending = await provider.pay_invoice(invoice_id)
        assert pending.raw_status == "PAYMENT_PENDING" and pending.status is InvoiceStatus.OPEN
        await asyncio.sleep(0.5)
        assert (await provider.get_invoice(invoice_id)).raw_status == "MARKED_AS_PAID"
    finally:
        panel.knobs.transition_seconds = 2.0


# -- hand-written payloads (tests/fixtures/PROVENANCE.md) ------------------------------------------


@pytest.fixture
def provider() -> PayPalProvider:
    return _build(BASE, client_id="rec_client", client_secret="rec_secret")


@respx.mock
async def test_invoices_from_hand_written_pages(provider: PayPalProvider) -> None:
    token = respx.post(f"{BASE}{TOKEN}").mock(
        return_value=httpx.Response(200, json=fixture("paypal", "token.json")))
    respx.get(f"{BASE}{INVOICES}", params={"page": "2"}).mock(
        return_value=httpx.Response(200, json=fixture("paypal", "invoices_page2.json")))
    respx.get(f"{BASE}{INVOICES}", params={"page": "1"}).mock(
        return_value=httpx.Response(200, json=fixture("paypal", "invoices_page1.json")))
    invoices = {i.id: i for i in await provider.list_invoices()}
    sent = token.calls.last.request
    assert sent.headers["authorization"].startswith("Basic ")
    assert sent.content == b"grant_type=client_credentials"
    assert len(invoices) == 5
    open_one = invoices["INV2-Z56S-5LLA-Q52L-CPZ5"]
    assert open_one.status is InvoiceStatus.OPEN and open_one.raw_status == "SENT"
    assert open_one.total.amount == Decimal("119.97") and open_one.total.currency == "USD"
    assert open_one.amount_due.amount == Decimal("119.97")
    assert open_one.amount_paid.amount == Decimal("0")
    assert open_one.lines[0].quantity == 3 and open_one.lines[0].amount.amount == Decimal("119.97")
    assert open_one.customer_id == "jenny@example.com" and open_one.external_ref == "whmcs-4711"
    assert open_one.number == "0042" and open_one.hosted_url
    assert open_one.due_date is not None and open_one.due_date.date().isoformat() == "2025-01-31"
    assert is_overdue(open_one, datetime(2025, 2, 1, tzinfo=UTC))
    assert not is_overdue(open_one, datetime(2025, 1, 31, 18, tzinfo=UTC))
    jpy = invoices["INV2-JPY0-AAAA-BBBB-CCCC"]
    assert jpy.status is InvoiceStatus.PAID and jpy.amount_paid.amount == Decimal("1500")
    draft = invoices["INV2-DRFT-AAAA-BBBB-CCCC"]
    assert draft.status is InvoiceStatus.DRAFT and draft.amount_due.amount == Decimal("10.00")
    partial = invoices["INV2-PART-AAAA-BBBB-CCCC"]
    assert partial.status is InvoiceStatus.OPEN
    assert (partial.amount_paid.amount, partial.amount_due.amount) == (Decimal("60.00"),
                                                                       Decimal("40.00"))
    weird = invoices["INV2-WEIRD-AAAA-BBBB-CCC"]
    assert weird.status is InvoiceStatus.DRAFT and weird.raw_status == "ARCHIVED_SOMEHOW"
    bearer = respx.calls.last.request.headers["authorization"]
    assert bearer == "Bearer A21AAFakeRecordedToken"


@respx.mock
async def test_hand_written_errors(provider: PayPalProvider) -> None:
    respx.post(f"{BASE}{TOKEN}").mock(
        return_value=httpx.Response(200, json=fixture("paypal", "token.json")))
    respx.post(f"{BASE}{INVOICES}/INV2-X/cancel").mock(
        return_value=httpx.Response(422, json=fixture("paypal", "error_cancel_paid.json")))
    with pytest.raises(errors.Conflict) as conflict:
        await provider.void_invoice("INV2-X")
    assert conflict.value.message == "Cannot cancel a paid or partially paid invoice."
    respx.get(f"{BASE}{INVOICES}/INV2-GONE").mock(
        return_value=httpx.Response(404, json=fixture("paypal", "error_not_found.json")))
    with pytest.raises(errors.NotFound):
        await provider.get_invoice("INV2-GONE")
    respx.get(f"{BASE}{INVOICES}/INV2-BAD").mock(return_value=httpx.Response(200, json={
        "id": "INV2-BAD", "status": "SENT", "detail": {"currency_code": "USD"},
        "amount": {"currency_code": "USD", "value": 19.99}}))
    with pytest.raises(errors.UnexpectedResponse):  # a float, not a decimal string
        await provider.get_invoice("INV2-BAD")


@respx.mock
async def test_bad_client_credentials(provider: PayPalProvider) -> None:
    respx.post(f"{BASE}{TOKEN}").mock(return_value=httpx.Response(
        401, json={"error": "invalid_client", "error_description": "Client Authentication failed"}))
    with pytest.raises(errors.AuthenticationFailed) as info:
        await provider.check_health()
    assert "rec_secret" not in info.value.message


@respx.mock
async def test_persistent_401_is_retried_only_once(provider: PayPalProvider) -> None:
    token = respx.post(f"{BASE}{TOKEN}").mock(
        return_value=httpx.Response(200, json=fixture("paypal", "token.json")))
    api = respx.get(f"{BASE}{INVOICES}").mock(return_value=httpx.Response(
        401, json={"error": "invalid_token",
                   "error_description": "Token signature verification failed"}))
    with pytest.raises(errors.AuthenticationFailed):
        await provider.check_health()
    assert token.call_count == 2 and api.call_count == 2


# -- mapping ---------------------------------------------------------------------------------


def test_mapping_table_covers_every_paypal_status() -> None:
    # invoice_status (invoicing_v2.json) + the statuses listed in upstream-apis.md §6b
    listed = {"DRAFT", "SENT", "SCHEDULED", "PAID", "MARKED_AS_PAID", "CANCELLED", "REFUNDED",
              "PARTIALLY_PAID", "PARTIALLY_REFUNDED", "MARKED_AS_REFUNDED", "UNPAID",
              "PAYMENT_PENDING", "AUTO_CANCELLED", "PAID_EXTERNAL", "REFUNDED_EXTERNAL",
              "SHARED"}
    assert set(INVOICE_STATUS) == listed
    assert {k for k, v in INVOICE_STATUS.items() if v is InvoiceStatus.DRAFT} == {
        "DRAFT", "SCHEDULED"}
    assert {k for k, v in INVOICE_STATUS.items() if v is InvoiceStatus.VOID} == {
        "CANCELLED", "AUTO_CANCELLED"}
    assert {k for k, v in INVOICE_STATUS.items() if v is InvoiceStatus.OPEN} == {
        "SENT", "UNPAID", "SHARED", "PARTIALLY_PAID", "PAYMENT_PENDING"}

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
import respx

from panelql.domain.records import InvoiceRecord
from panelql.domain.status import InvoiceStatus
from panelql.providers import errors
from panelql.providers.stripe.adapter import StripeProvider
from panelql.providers.stripe.mapping import (
    INVOICE_STATUS,
    invoice_record,
    is_overdue,
    minor_to_decimal,
)
from panelql.providers.stripe.webhooks import StripeWebhooks
from panelql_sim.runner import BackgroundServers
from panelql_sim.stripe import StripeSim, parse_form, sign_payload
from tests.providers.contract import BillingContract, ContractEnv, exact_from_minor_units
from tests.providers.helpers import builder, clients, config, fixture

BASE = "http://stripe.test"


@pytest.fixture(scope="module")
def sim(background: BackgroundServers) -> Iterator[tuple[StripeSim, str]]:
    panel = StripeSim()
    served = background.serve("stripe-contract", panel.app())
    yield panel, served.url


def _build(url: str, **overrides: str) -> StripeProvider:
    provider = builder("stripe", url, api_key="sk_test_demo", webhook_secret="whsec_demo")(
        **overrides)
    assert isinstance(provider, StripeProvider)
    return provider


# The contract on the production transport, and on the escape hatch (upstream_transport =
# "httpx") for this kind too: a smaller run of the same suite.
@pytest.fixture(params=[True, False], ids=["lean", "httpx"])
def env(request: pytest.FixtureRequest, sim: tuple[StripeSim, str]) -> ContractEnv:
    panel, url = sim
    build = builder("stripe", url, lean=request.param, api_key=panel.api_key)
    return ContractEnv(
        provider=build(), knobs=panel.knobs,
        with_bad_credentials=lambda: build(api_key="sk_test_wrong_key_1234"),
        with_timeout=lambda t: build(timeout=t),
        upstream_totals=lambda: {i.id: (exact_from_minor_units(i.total, i.currency), i.currency)
                                for i in panel.invoices.values()},
    )


class TestStripeContract(BillingContract):
    pass


# -- against the simulator -------------------------------------------------------------------


async def test_list_pages_by_cursor_in_one_call_per_hundred(sim: tuple[StripeSim, str]) -> None:
    panel, url = sim
    provider = _build(url)
    panel.reset_stats()
    invoices = await provider.list_invoices()
    assert len(invoices) == len(panel.invoices)
    assert len({i.id for i in invoices}) == len(invoices)
    assert panel.stats["GET /*/invoices"] == 1
    assert {i.raw_status for i in invoices} >= {"draft", "open", "paid", "uncollectible", "void"}
    jpy = [i for i in invoices if i.total.currency == "JPY"]
    assert jpy and all(i.total.amount == i.total.amount.to_integral_value() for i in jpy)
    assert any(is_overdue(i) for i in invoices)


async def test_list_follows_has_more(background: BackgroundServers) -> None:
    panel = StripeSim(invoices=230, seed=3)
    served = background.serve("stripe-many", panel.app())
    provider = _build(served.url)
    invoices = await provider.list_invoices()
    assert len(invoices) == 230 and len({i.id for i in invoices}) == 230
    assert panel.stats["GET /*/invoices"] == 3
    background.stop_one("stripe-many")


async def test_customer_filter_lists_per_customer(sim: tuple[StripeSim, str]) -> None:
    panel, url = sim
    provider = _build(url)
    customers = list(panel.customers)[:3]
    panel.reset_stats()
    invoices = await provider.list_invoices(customer_ids=customers)
    assert panel.stats["GET /*/invoices"] == 3
    assert {i.customer_id for i in invoices} == set(customers)
    expected = [i for i in panel.invoices.values() if i.customer["id"] in customers]
    assert len(invoices) == len(expected)


async def test_get_invoices_retrieves_few_ids_and_skips_missing(
    sim: tuple[StripeSim, str],
) -> None:
    panel, url = sim
    provider = _build(url)
    some = list(panel.invoices)[:2]
    found = await provider.get_invoices([*some, "in_does_not_exist"])
    assert set(found) == set(some)
    with pytest.raises(errors.NotFound):
        await provider.get_invoice("in_does_not_exist")


def _first(panel: StripeSim, status: str, method: str | None = "card",
           collection: str | None = None) -> str:
    """An invoice in one of ``status`` (comma-separated) whose customer pays by ``method``."""
    for invoice in panel.invoices.values():
        if invoice.status in status.split(",") and invoice.customer["_method"] == method and (
                collection is None or invoice.collection_method == collection):
            return invoice.id
    raise AssertionError(f"no {status} invoice for a {method} customer in the simulator")


async def test_finalize_then_pay_then_wrong_state(sim: tuple[StripeSim, str]) -> None:
    panel, url = sim
    provider = _build(url)
    draft = _first(panel, "draft")
    opened = await provider.finalize_invoice(draft)
    assert opened.status is InvoiceStatus.OPEN and opened.number and opened.hosted_url
    assert panel.invoices[draft].status == "open"
    with pytest.raises(errors.Conflict) as info:
        await provider.finalize_invoice(draft)
    assert "finalized" in info.value.message
    paid = await provider.pay_invoice(draft)
    assert paid.status is InvoiceStatus.PAID and paid.amount_paid == paid.total
    with pytest.raises(errors.Conflict):
        await provider.pay_invoice(draft)
    with pytest.raises(errors.Conflict):
        await provider.void_invoice(draft)
    assert [e["type"] for e in panel.events[-2:]] == ["invoice.finalized", "invoice.paid"]


async def test_void_and_send(sim: tuple[StripeSim, str]) -> None:
    panel, url = sim
    provider = _build(url)
    open_id = _first(panel, "open", collection="send_invoice")
    sent = await provider.send_invoice(open_id)
    assert sent.status is InvoiceStatus.OPEN
    assert panel.events[-1]["type"] == "invoice.sent"
    voided = await provider.void_invoice(open_id)
    assert voided.status is InvoiceStatus.VOID and panel.invoices[open_id].status == "void"
    with pytest.raises(errors.Conflict):
        await provider.send_invoice(open_id)
    with pytest.raises(errors.NotFound):
        await provider.void_invoice("in_missing")


async def test_declined_card_is_conflict_and_no_method_is_invalid(
    sim: tuple[StripeSim, str],
) -> None:
    panel, url = sim
    provider = _build(url)
    with pytest.raises(errors.Conflict) as info:
        await provider.pay_invoice(_first(panel, "open", "declined"))
    assert info.value.message == "Your card was declined."
    with pytest.raises(errors.InvalidRequest):
        await provider.pay_invoice(_first(panel, "open,uncollectible,draft", None))


async def test_out_of_band_payment_option(sim: tuple[StripeSim, str]) -> None:
    panel, url = sim
    cfg = config("stripe", url, api_key=panel.api_key)
    provider = StripeProvider.from_config(replace(cfg, options={"pay_out_of_band": True}),
                                          clients(url))
    paid = await provider.pay_invoice(_first(panel, "open,uncollectible,draft", None))
    assert paid.status is InvoiceStatus.PAID


async def test_bank_debit_settles_later(sim: tuple[StripeSim, str]) -> None:
    panel, url = sim
    provider = _build(url)
    panel.knobs.transition_seconds = 0.2
    try:
        invoice_id = _first(panel, "open,uncollectible", "bank")
        pending = await provider.pay_invoice(invoice_id)
        assert pending.status is not InvoiceStatus.PAID  # the debit is still processing
        await asyncio.sleep(0.5)
        assert (await provider.get_invoice(invoice_id)).status is InvoiceStatus.PAID
    finally:
        panel.knobs.transition_seconds = 2.0


async def test_sim_events_verify_through_the_webhook_helper(sim: tuple[StripeSim, str]) -> None:
    panel, url = sim
    provider = _build(url)
    draft = _first(panel, "draft")
    await provider.finalize_invoice(draft)
    body, header = panel.signed(panel.events[-1])
    event = provider.webhooks().parse(body.encode(), header)
    assert event.type == "invoice.finalized"
    assert event.invoice is not None and event.invoice.id == draft
    assert event.invoice.status is InvoiceStatus.OPEN


# -- hand-written payloads (tests/fixtures/PROVENANCE.md) ------------------------------------------


@pytest.fixture
def provider() -> StripeProvider:
    return _build(BASE, api_key="sk_test_recorded")


@respx.mock
async def test_invoices_from_hand_written_pages(provider: StripeProvider) -> None:
    # respx matches params as a subset, so the more specific route goes first.
    second = respx.get(f"{BASE}/v1/invoices",
                       params={"starting_after": "in_1QfDraft0000000000003"}).mock(
        return_value=httpx.Response(200, json=fixture("stripe", "invoices_page2.json")))
    first = respx.get(f"{BASE}/v1/invoices", params={"limit": "100"}).mock(
        return_value=httpx.Response(200, json=fixture("stripe", "invoices_page1.json")))
    invoices = {i.id: i for i in await provider.list_invoices()}
    assert first.called and second.called
    assert first.calls.last.request.headers["authorization"] == "Bearer sk_test_recorded"
    assert len(invoices) == 5
    open_one = invoices["in_1QfOpen00000000000001"]
    assert open_one.status is InvoiceStatus.OPEN and open_one.raw_status == "open"
    assert open_one.amount_due.amount == Decimal("49.99") and open_one.total.currency == "USD"
    assert open_one.due_date == datetime(2025, 1, 1, tzinfo=UTC)
    assert open_one.number == "A1B2C3D4-0007" and open_one.external_ref == "whmcs-4711"
    assert open_one.lines[0].amount.amount == Decimal("49.99") and open_one.lines[0].quantity == 1
    assert open_one.hosted_url and open_one.customer_id == "cus_QfR2s9K1aBcDeF"
    assert is_overdue(open_one, datetime(2025, 2, 1, tzinfo=UTC))
    assert not is_overdue(open_one, datetime(2024, 12, 1, tzinfo=UTC))
    jpy = invoices["in_1QfJpyPaid00000000002"]
    assert jpy.total.amount == Decimal("1500") and jpy.status is InvoiceStatus.PAID
    kwd = invoices["in_1QfKwdUnc000000000004"]
    assert kwd.total.amount == Decimal("12.345")
    assert kwd.status is InvoiceStatus.UNCOLLECTIBLE
    assert invoices["in_1QfDraft0000000000003"].hosted_url is None
    unknown = invoices["in_1QfFuture00000000005"]
    assert unknown.status is InvoiceStatus.DRAFT and unknown.raw_status == "in_review"


@respx.mock
async def test_hand_written_errors_map_to_the_tree(provider: StripeProvider) -> None:
    respx.post(f"{BASE}/v1/invoices/in_1/finalize").mock(
        return_value=httpx.Response(400, json=fixture("stripe", "error_already_finalized.json")))
    with pytest.raises(errors.Conflict):
        await provider.finalize_invoice("in_1")
    respx.get(f"{BASE}/v1/invoices/in_missing").mock(
        return_value=httpx.Response(404, json=fixture("stripe", "error_resource_missing.json")))
    with pytest.raises(errors.NotFound) as missing:
        await provider.get_invoice("in_missing")
    assert missing.value.message == "No such invoice: 'in_missing'"
    respx.post(f"{BASE}/v1/invoices/in_2/pay").mock(
        return_value=httpx.Response(402, json=fixture("stripe", "error_card_declined.json")))
    with pytest.raises(errors.Conflict):
        await provider.pay_invoice("in_2")
    respx.get(f"{BASE}/v1/invoices").mock(return_value=httpx.Response(
        400, json={"error": {"type": "invalid_request_error", "param": "limit",
                             "message": "This value must be between 1 and 100."}}))
    with pytest.raises(errors.InvalidRequest) as bad:
        await provider.list_invoices()
    assert bad.value.fields == {"limit": "This value must be between 1 and 100."}


@respx.mock
async def test_auth_rate_limit_and_garbage(provider: StripeProvider) -> None:
    route = respx.get(f"{BASE}/v1/invoices")
    route.mock(return_value=httpx.Response(401, json={"error": {
        "type": "invalid_request_error",
        "message": "Invalid API Key provided: sk_test_********ded"}}))
    with pytest.raises(errors.AuthenticationFailed) as auth:
        await provider.check_health()
    assert "sk_test" not in auth.value.message
    route.mock(return_value=httpx.Response(403, json={"error": {
        "type": "invalid_request_error", "message": "The provided key does not have access"}}))
    with pytest.raises(errors.AuthenticationFailed):
        await provider.check_health()
    route.mock(return_value=httpx.Response(429, headers={"Retry-After": "3"}, json={"error": {
        "type": "invalid_request_error", "code": "rate_limit", "message": "Too many"}}))
    with pytest.raises(errors.RateLimited) as limited:
        await provider.check_health()
    assert limited.value.retry_after == 3
    route.mock(return_value=httpx.Response(502, json={"error": "bad gateway"}))
    with pytest.raises(errors.Unavailable):
        await provider.check_health()
    route.mock(return_value=httpx.Response(200, json={"object": "list", "data": "nope"}))
    with pytest.raises(errors.UnexpectedResponse):
        await provider.list_invoices()
    route.mock(return_value=httpx.Response(200, json={"object": "list", "has_more": False,
                                                      "data": [{"id": "in_x"}]}))
    with pytest.raises(errors.UnexpectedResponse):
        await provider.list_invoices()
    route.mock(return_value=httpx.Response(200, json={
        **fixture("stripe", "invoices_page1.json"), "has_more": True}))
    with pytest.raises(errors.UnexpectedResponse):  # a cursor that never moves
        await provider.list_invoices()
    route.mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(errors.Unavailable):
        await provider.check_health()


# -- webhooks --------------------------------------------------------------------------------


def _signed_event(secret: str = "whsec_demo", at: int | None = None) -> tuple[bytes, str]:
    body = json.dumps(fixture("stripe", "event_invoice_paid.json"))
    return body.encode(), sign_payload(body, secret, at)


def test_webhook_turns_invoice_events_into_records() -> None:
    hooks = StripeWebhooks("stripe-test", "whsec_demo")
    body, header = _signed_event()
    event = hooks.parse(body, header)
    assert event.id == "evt_1QfPaidEvent000001" and event.type == "invoice.paid"
    assert isinstance(event.invoice, InvoiceRecord)
    assert event.invoice.status is InvoiceStatus.PAID
    assert event.invoice.amount_paid.amount == Decimal("49.99")


def test_webhook_rejects_bad_signature_and_stale_timestamp() -> None:
    hooks = StripeWebhooks("stripe-test", "whsec_demo", tolerance=300)
    body, header = _signed_event(secret="whsec_other")
    with pytest.raises(errors.InvalidRequest, match="bad signature"):
        hooks.parse(body, header)
    body, header = _signed_event(at=int(time.time()) - 3600)
    with pytest.raises(errors.InvalidRequest, match="stale"):
        hooks.parse(body, header)
    with pytest.raises(errors.InvalidRequest):
        hooks.parse(body, None)
    body, header = _signed_event()
    with pytest.raises(errors.InvalidRequest):
        hooks.parse(body + b"tampered", header)


def test_webhook_non_invoice_event_and_garbage() -> None:
    hooks = StripeWebhooks("stripe-test", "whsec_demo")
    other = json.dumps({"id": "evt_2", "object": "event", "type": "customer.created",
                        "created": 1, "data": {"object": {"id": "cus_1"}}})
    assert hooks.parse(other, sign_payload(other, "whsec_demo")).invoice is None
    broken = json.dumps({"id": "evt_3", "object": "event", "type": "invoice.paid",
                         "data": {"object": {"id": "in_1", "currency": "usd"}}})
    with pytest.raises(errors.InvalidRequest):
        hooks.parse(broken, sign_payload(broken, "whsec_demo"))
    with pytest.raises(errors.InvalidRequest):
        hooks.parse("not json", sign_payload("not json", "whsec_demo"))


# -- mapping ---------------------------------------------------------------------------------


def test_mapping_table_covers_every_stripe_invoice_status() -> None:
    # stripe/_invoice.py: status Literal["draft", "open", "paid", "uncollectible", "void"]
    assert set(INVOICE_STATUS) == {"draft", "open", "paid", "uncollectible", "void"}
    assert INVOICE_STATUS["uncollectible"] is InvoiceStatus.UNCOLLECTIBLE
    # Refund states come from credit notes after payment, not from the status word.
    refunds = {InvoiceStatus.REFUNDED, InvoiceStatus.PARTIALLY_REFUNDED}
    assert {INVOICE_STATUS[s] for s in INVOICE_STATUS} == set(InvoiceStatus) - refunds


@pytest.mark.parametrize(("credited", "expected"), [
    (None, InvoiceStatus.PAID), (0, InvoiceStatus.PAID), (500, InvoiceStatus.PARTIALLY_REFUNDED),
    (2000, InvoiceStatus.REFUNDED)])
def test_a_paid_invoice_with_credit_notes_after_payment_reads_refunded(
        credited: int | None, expected: InvoiceStatus) -> None:
    raw = {"id": "in_1", "currency": "usd", "status": "paid", "amount_due": 2000,
           "amount_paid": 2000, "total": 2000, "post_payment_credit_notes_amount": credited}
    record = invoice_record(raw, "stripe", "stripe")
    assert record.status is expected and record.raw_status == "paid"
    assert (record.amount_refunded.amount if record.amount_refunded else 0) == \
        minor_to_decimal(credited or 0, "usd")


@pytest.mark.parametrize(("amount", "currency", "expected"), [
    (1999, "usd", "19.99"), (1500, "jpy", "1500"), (12345, "kwd", "12.345"),
    (5, "eur", "0.05"), (0, "usd", "0.00"), (100000, "krw", "100000"),
])
def test_minor_units_are_exact(amount: int, currency: str, expected: str) -> None:
    assert minor_to_decimal(amount, currency) == Decimal(expected)
    assert str(minor_to_decimal(amount, currency)) == expected


def test_form_bracket_notation() -> None:
    pairs = [("limit", "3"), ("created[gte]", "10"), ("expand[0]", "lines"),
             ("metadata[a]", "b"), ("tags[]", "x"), ("tags[]", "y")]
    assert parse_form(pairs) == {"limit": "3", "created": {"gte": "10"},
                                 "expand": {"0": "lines"}, "metadata": {"a": "b"},
                                 "tags": ["x", "y"]}

"""Stripe money in and out against the simulator, through the real ``stripe`` library:
customer find-or-create, invoice creation, Checkout + attach_payment, credit-note refunds,
and the Idempotency-Key passed through (API 2026-10-28.endive, stripe-python 16.1.0)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from panelql.domain.records import BillingCustomer, InvoiceLineInput, InvoiceSpec
from panelql.domain.status import InvoiceStatus
from panelql.providers import errors
from panelql.providers.http import ClientFactory
from panelql.providers.stripe.adapter import StripeProvider
from panelql_sim.runner import BackgroundServers
from panelql_sim.stripe import StripeSim
from tests.providers.helpers import builder, config

WHO = BillingCustomer("whmcs:77", "ada@example.com", "Ada Lovelace")


@pytest.fixture(scope="module")
def sim(background: BackgroundServers) -> Iterator[tuple[StripeSim, str]]:
    panel = StripeSim()
    served = background.serve("stripe-payments", panel.app())
    yield panel, served.url


@pytest.fixture
def provider(sim: tuple[StripeSim, str]) -> StripeProvider:
    built = builder("stripe", sim[1], api_key="sk_test_demo", webhook_secret="whsec_demo")()
    assert isinstance(built, StripeProvider)
    return built


def _spec(customer_id: str, *lines: tuple[str, int, str]) -> InvoiceSpec:
    return InvoiceSpec(
        customer_id=customer_id, customer=WHO, currency="USD",
        lines=tuple(InvoiceLineInput(d, q, Decimal(a)) for d, q, a in lines),
        due_date=datetime.now(UTC) + timedelta(days=14), memo="Thank you",
        external_ref="INV-77")


async def _paid_by_checkout(panel: StripeSim, provider: StripeProvider, key: str) -> str:
    customer = await provider.ensure_customer(WHO, None, f"{key}:c")
    draft = await provider.create_invoice(_spec(customer, ("VPS", 2, "10.00")), key)
    invoice = await provider.finalize_invoice(draft.id)
    link = await provider.checkout(invoice, "https://shop.test/ok", "https://shop.test/no", key)
    async with httpx.AsyncClient() as client:
        paid = await client.post(link.url, data={"card": "success"})
    assert paid.status_code == 303 and paid.headers["location"] == "https://shop.test/ok"
    event = panel.events[-1]
    assert event["type"] == "checkout.session.completed"
    attached = await provider.attach_checkout(event["data"]["object"], event["id"])
    assert attached is not None and attached.status is InvoiceStatus.PAID
    return invoice.id


async def test_customer_is_found_again_by_its_reference(
        sim: tuple[StripeSim, str], provider: StripeProvider) -> None:
    panel, _ = sim
    first = await provider.ensure_customer(WHO, None, None)
    assert panel.customers[first]["metadata"] == {"panelql_customer_ref": "whmcs:77"}
    assert await provider.ensure_customer(WHO, None, None) == first  # found by email + tag
    assert await provider.ensure_customer(WHO, first, None) == first
    other = BillingCustomer("whmcs:78", WHO.email, None)  # same email, other customer
    assert await provider.ensure_customer(other, None, None) != first


async def test_create_invoice_with_lines_memo_due_date_and_ref(
        sim: tuple[StripeSim, str], provider: StripeProvider) -> None:
    customer = await provider.ensure_customer(WHO, None, None)
    record = await provider.create_invoice(
        _spec(customer, ("VPS 2 GB", 2, "9.99"), ("IPv4", 1, "2.50")), "k-create-1")
    assert record.status is InvoiceStatus.DRAFT and record.customer_id == customer
    assert record.total.amount == Decimal("22.48") and record.total.currency == "USD"
    assert [(x.description, x.quantity, x.amount.amount) for x in record.lines] == [
        ("VPS 2 GB", 2, Decimal("19.98")), ("IPv4", 1, Decimal("2.50"))]
    assert record.memo == "Thank you" and record.external_ref == "INV-77"
    assert record.due_date is not None


async def test_the_same_key_replays_upstream_instead_of_creating_twice(
        sim: tuple[StripeSim, str], provider: StripeProvider) -> None:
    panel, _ = sim
    customer = await provider.ensure_customer(WHO, None, None)
    before = len(panel.invoices)
    # One spec for both: _spec's due date moves with the clock, and a retry across a second
    # boundary would rightly be refused as other parameters (a loaded CI run saw it).
    spec = _spec(customer, ("VPS", 1, "5.00"))
    one = await provider.create_invoice(spec, "k-replay")
    two = await provider.create_invoice(spec, "k-replay")
    assert one.id == two.id and len(panel.invoices) == before + 1
    assert len(panel.invoices[one.id].lines) == 1  # the item was not added twice
    with pytest.raises(errors.InvalidRequest):  # same key, other parameters
        await provider.create_invoice(replace(spec, lines=(
            InvoiceLineInput("VPS", 1, Decimal("6.00")),)), "k-replay")


async def test_checkout_payment_is_attached_and_refunds_are_credit_notes(
        sim: tuple[StripeSim, str], provider: StripeProvider) -> None:
    panel, _ = sim
    invoice_id = await _paid_by_checkout(panel, provider, "k-pay-1")
    paid = await provider.get_invoice(invoice_id)
    assert paid.amount_paid.amount == Decimal("20.00") and paid.amount_refunded is None
    half = await provider.refund_invoice(paid, Decimal("10.00"), "k-refund-1")
    assert half.status is InvoiceStatus.PARTIALLY_REFUNDED and half.raw_status == "paid"
    assert half.amount_refunded is not None and half.amount_refunded.amount == Decimal("10.00")
    refunded = [e for e in panel.events if e["type"] == "charge.refunded"][-1]
    charge = refunded["data"]["object"]
    assert charge["amount_refunded"] == 1000 and charge["refunded"] is False
    owner = await provider.invoice_of_payment(charge["payment_intent"])
    assert owner is not None and owner.id == invoice_id
    rest = await provider.refund_invoice(half, Decimal("10.00"), "k-refund-2")
    assert rest.status is InvoiceStatus.REFUNDED
    with pytest.raises(errors.InvalidRequest):  # nothing left: Stripe refuses the credit note
        await provider.refund_invoice(rest, Decimal("1.00"), "k-refund-3")


async def test_a_replayed_checkout_event_attaches_once(
        sim: tuple[StripeSim, str], provider: StripeProvider) -> None:
    panel, _ = sim
    invoice_id = await _paid_by_checkout(panel, provider, "k-pay-2")
    event = [e for e in panel.events if e["type"] == "checkout.session.completed"][-1]
    again = await provider.attach_checkout(event["data"]["object"], event["id"])
    assert again is not None and again.id == invoice_id
    assert panel.invoices[invoice_id].amount_paid == 2000


async def test_out_of_band_payment_is_refunded_out_of_band(
        sim: tuple[StripeSim, str]) -> None:
    panel, url = sim
    base = config("stripe", url, api_key="sk_test_demo")
    provider = StripeProvider.from_config(
        replace(base, options={"pay_out_of_band": True}), ClientFactory())
    customer = await provider.ensure_customer(WHO, None, None)
    draft = await provider.create_invoice(_spec(customer, ("VPS", 1, "8.00")), None)
    await provider.finalize_invoice(draft.id)
    paid = await provider.pay_invoice(draft.id)
    refunded = await provider.refund_invoice(paid, Decimal("8.00"), None)
    assert refunded.status is InvoiceStatus.REFUNDED
    assert not [e for e in panel.events if e["type"] == "charge.refunded"
                and e["data"]["object"]["amount"] == 800]

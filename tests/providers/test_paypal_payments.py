"""PayPal money in and out against the simulator (checked against paypal-invoicing_v2.json 2.3,
paypal-checkout_orders_v2.json 2.13 and paypal-payments_payment_v2.json 2.5 by the referee):
draft invoices, Orders v2 create / approve / capture, capture refunds recorded on the invoice,
and PayPal-Request-Id passed through."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from panelql.domain.records import BillingCustomer, Collection, InvoiceLineInput, InvoiceSpec
from panelql.domain.status import InvoiceStatus
from panelql.providers import errors
from panelql.providers.paypal.adapter import PayPalProvider
from panelql_sim.paypal import PayPalSim
from panelql_sim.runner import BackgroundServers
from tests.providers.helpers import builder

WHO = BillingCustomer("whmcs:91", "grace@example.com", "Grace Hopper")


@pytest.fixture(scope="module")
def sim(background: BackgroundServers) -> Iterator[tuple[PayPalSim, str]]:
    panel = PayPalSim()
    served = background.serve("paypal-payments", panel.app())
    yield panel, served.url


@pytest.fixture
def provider(sim: tuple[PayPalSim, str]) -> PayPalProvider:
    built = builder("paypal", sim[1], client_id="pp_demo_client",
                    client_secret="pp_demo_secret")()
    assert isinstance(built, PayPalProvider)
    return built


def _spec(*lines: tuple[str, int, str]) -> InvoiceSpec:
    return InvoiceSpec(
        customer_id=WHO.email, customer=WHO, currency="EUR",
        lines=tuple(InvoiceLineInput(d, q, Decimal(a)) for d, q, a in lines),
        due_date=datetime.now(UTC) + timedelta(days=10), memo="Merci", external_ref="INV-91")


async def _approve(url: str, funding: str = "balance") -> None:
    async with httpx.AsyncClient() as client:
        answer = await client.post(url, data={"funding": funding})
    assert answer.status_code == 303 and "token=" in answer.headers["location"]


async def _open_invoice(provider: PayPalProvider, key: str | None = None) -> str:
    draft = await provider.create_invoice(_spec(("Game server", 2, "7.50")), key)
    return (await provider.finalize_invoice(draft.id)).id


async def test_create_invoice_is_a_draft_with_recipient_items_and_note(
        provider: PayPalProvider) -> None:
    assert await provider.ensure_customer(WHO, None, None) == WHO.email
    record = await provider.create_invoice(
        _spec(("Game server", 2, "7.50"), ("Backup slot", 1, "1.25")), "pp-create-1")
    assert record.status is InvoiceStatus.DRAFT and record.raw_status == "DRAFT"
    assert record.customer_id == WHO.email and record.total.amount == Decimal("16.25")
    assert record.memo == "Merci" and record.external_ref == "INV-91"
    assert record.due_date is not None and record.due_date.date() == _spec().due_date.date()  # type: ignore[union-attr]


async def test_order_approved_then_captured_pays_the_invoice_once(
        sim: tuple[PayPalSim, str], provider: PayPalProvider) -> None:
    panel, _ = sim
    invoice_id = await _open_invoice(provider)
    invoice = await provider.get_invoice(invoice_id)
    link = await provider.checkout(invoice, "https://shop.test/ok", "https://shop.test/no",
                                   "pp-order-1")
    assert link.kind == "ORDER" and link.id and "checkoutnow" in link.url
    assert await provider.order_invoice(str(link.id)) == invoice_id
    with pytest.raises(errors.Conflict):  # ORDER_NOT_APPROVED
        await provider.capture_payment(str(link.id), "pp-cap-early")
    await _approve(link.url)
    outcome = await provider.capture_payment(str(link.id), "pp-cap-1")
    assert outcome.collection is Collection.CAPTURED_ORDER and outcome.payment_id
    assert outcome.invoice.status is InvoiceStatus.PAID
    assert outcome.invoice.amount_paid.amount == Decimal("15.00")
    completed = [e for e in panel.deliveries if e["event_type"] == "PAYMENT.CAPTURE.COMPLETED"]
    assert completed[-1]["resource"]["custom_id"] == invoice_id
    # the webhook records the same capture: nothing is recorded twice
    again = await provider.record_capture(completed[-1]["resource"])
    assert again.amount_paid.amount == Decimal("15.00")
    assert len(panel.invoices[invoice_id].transactions) == 1
    # the same request id replays PayPal's first answer instead of ORDER_ALREADY_CAPTURED
    replay = await provider.capture_payment(str(link.id), "pp-cap-1")
    assert replay.payment_id == outcome.payment_id


async def test_refunds_go_back_through_the_capture_and_are_recorded(
        sim: tuple[PayPalSim, str], provider: PayPalProvider) -> None:
    panel, _ = sim
    invoice_id = await _open_invoice(provider)
    link = await provider.checkout(await provider.get_invoice(invoice_id), "https://s.test/",
                                   "https://s.test/", None)
    await _approve(link.url)
    paid = (await provider.capture_payment(str(link.id), None)).invoice
    half = await provider.refund_invoice(paid, Decimal("7.50"), "pp-ref-1")
    assert half.status is InvoiceStatus.PARTIALLY_REFUNDED
    assert half.raw_status == "PARTIALLY_REFUNDED"
    assert half.amount_refunded is not None and half.amount_refunded.amount == Decimal("7.50")
    refunded = [e for e in panel.deliveries if e["event_type"] == "PAYMENT.CAPTURE.REFUNDED"]
    assert refunded[-1]["resource"]["custom_id"] == invoice_id
    full = await provider.refund_invoice(half, Decimal("7.50"), "pp-ref-2")
    assert full.status is InvoiceStatus.REFUNDED and full.raw_status == "REFUNDED"
    with pytest.raises(errors.Conflict):  # the capture has nothing left
        await provider.refund_invoice(full, Decimal("1.00"), "pp-ref-3")


async def test_a_declined_instrument_is_a_conflict_and_a_denied_event(
        sim: tuple[PayPalSim, str], provider: PayPalProvider) -> None:
    panel, _ = sim
    invoice_id = await _open_invoice(provider)
    link = await provider.checkout(await provider.get_invoice(invoice_id), "https://s.test/",
                                   "https://s.test/", None)
    await _approve(link.url, funding="declined")
    with pytest.raises(errors.Conflict):
        await provider.capture_payment(str(link.id), None)
    assert panel.deliveries[-1]["event_type"] == "PAYMENT.CAPTURE.DENIED"
    assert (await provider.get_invoice(invoice_id)).status is InvoiceStatus.OPEN


async def test_checkout_of_a_paid_invoice_is_a_conflict(
        sim: tuple[PayPalSim, str], provider: PayPalProvider) -> None:
    panel, _ = sim
    paid = next(i for i in panel.invoices.values() if i.status == "PAID")
    with pytest.raises(errors.Conflict):
        await provider.checkout(await provider.get_invoice(paid.id), "https://s.test/",
                                "https://s.test/", None)


async def test_an_invoice_paid_elsewhere_gets_a_recorded_refund_only(
        sim: tuple[PayPalSim, str], provider: PayPalProvider) -> None:
    panel, _ = sim
    invoice_id = await _open_invoice(provider)
    paid = await provider.pay_invoice(invoice_id)
    assert paid.raw_status == "MARKED_AS_PAID"
    captures = len(panel.refunds)
    refunded = await provider.refund_invoice(paid, paid.amount_paid.amount, None)
    assert refunded.status is InvoiceStatus.REFUNDED
    assert refunded.raw_status == "MARKED_AS_REFUNDED" and len(panel.refunds) == captures

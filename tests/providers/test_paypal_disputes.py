"""Which invoices a PayPal dispute concerns, against the simulator (search-invoices checked
against paypal-invoicing_v2.json 2.3 by the referee). The dispute resources are the
simulator's, shaped after customer_disputes_v1.json @ec4d8f36 ``dispute``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from panelql.domain.records import BillingCustomer, InvoiceLineInput, InvoiceSpec
from panelql.providers import errors
from panelql.providers.paypal.adapter import PayPalProvider
from panelql_sim.paypal import PayPalInvoice, PayPalSim
from panelql_sim.runner import BackgroundServers
from tests.providers.helpers import builder

WHO = BillingCustomer("whmcs:93", "ada@example.com", "Ada Lovelace")


@pytest.fixture(scope="module")
def sim(background: BackgroundServers) -> Iterator[tuple[PayPalSim, str]]:
    panel = PayPalSim(invoices=4)
    served = background.serve("paypal-disputes", panel.app())
    yield panel, served.url


@pytest.fixture
def provider(sim: tuple[PayPalSim, str]) -> PayPalProvider:
    built = builder("paypal", sim[1], client_id="pp_demo_client",
                    client_secret="pp_demo_secret")()
    assert isinstance(built, PayPalProvider)
    return built


async def _captured(provider: PayPalProvider) -> tuple[str, str]:
    """An invoice paid through the gateway's checkout: (invoice id, capture id)."""
    spec = InvoiceSpec(customer_id=WHO.email, customer=WHO, currency="USD",
                       lines=(InvoiceLineInput("Game server", 1, Decimal("9.00")),),
                       due_date=datetime.now(UTC) + timedelta(days=10))
    draft = await provider.create_invoice(spec, None)
    invoice = await provider.finalize_invoice(draft.id)
    link = await provider.checkout(invoice, "https://s.test/", "https://s.test/", None)
    async with httpx.AsyncClient() as client:
        assert (await client.post(link.url, data={"funding": "balance"})).status_code == 303
    outcome = await provider.capture_payment(str(link.id), None)
    assert outcome.payment_id is not None
    return invoice.id, outcome.payment_id


def _paid_on_paypals_page(panel: PayPalSim, transaction_id: str) -> PayPalInvoice:
    """An invoice the payer paid on PayPal's own invoice page: a PAYPAL payment whose id is
    no capture the Payments API knows."""
    invoice = next(i for i in panel.invoices.values() if i.status in ("SENT", "UNPAID"))
    invoice.transactions.append({"payment_id": transaction_id, "type": "PAYPAL",
                                 "method": "PAYPAL", "amount": invoice._money(invoice.total)})
    invoice.paid, invoice.status = invoice.total, "PAID"
    return invoice


def _dispute(panel: PayPalSim, *transactions: dict[str, Any]) -> dict[str, Any]:
    return panel.dispute(list(transactions), "MERCHANDISE_OR_SERVICE_NOT_RECEIVED")


async def test_a_captured_payment_leads_to_its_invoice_without_a_number(
        sim: tuple[PayPalSim, str], provider: PayPalProvider) -> None:
    panel, _ = sim
    invoice_id, capture_id = await _captured(provider)
    found = await provider.disputed_invoices(
        _dispute(panel, {"seller_transaction_id": capture_id}))
    assert [i.id for i in found] == [invoice_id]


async def test_a_number_leads_only_to_the_invoice_that_transaction_paid(
        sim: tuple[PayPalSim, str], provider: PayPalProvider) -> None:
    panel, _ = sim
    invoice = _paid_on_paypals_page(panel, "7HP41350DX1234567")
    found = await provider.disputed_invoices(_dispute(
        panel, {"seller_transaction_id": "7HP41350DX1234567", "invoice_number": invoice.number}))
    assert [i.id for i in found] == [invoice.id]
    # The same number with a transaction that did not pay it: someone else's money.
    assert await provider.disputed_invoices(_dispute(
        panel, {"seller_transaction_id": "0XX00000XX0000000",
                "invoice_number": invoice.number})) == []
    # Without a transaction id, the number is all there is.
    found = await provider.disputed_invoices(_dispute(
        panel, {"invoice_number": invoice.number}))
    assert [i.id for i in found] == [invoice.id]


async def test_several_transactions_give_each_invoice_once_and_skip_strangers(
        sim: tuple[PayPalSim, str], provider: PayPalProvider) -> None:
    panel, _ = sim
    first, capture_id = await _captured(provider)
    second = _paid_on_paypals_page(panel, "3KD11350DX7654321")
    found = await provider.disputed_invoices(_dispute(
        panel, {"seller_transaction_id": "9ZZ99999ZZ9999999", "invoice_number": "NOPE-1"},
        {"seller_transaction_id": capture_id},
        {"seller_transaction_id": "3KD11350DX7654321", "invoice_number": second.number},
        {"seller_transaction_id": capture_id},
        {"invoice_number": "x" * 40},  # longer than any searchable number: not asked
        {"custom": "nothing to look for"}))
    assert sorted(i.id for i in found) == sorted([first, second.id])


async def test_a_capture_whose_custom_id_names_an_invoice_it_did_not_pay_is_ignored(
        sim: tuple[PayPalSim, str], provider: PayPalProvider) -> None:
    panel, _ = sim
    invoice_id, capture_id = await _captured(provider)
    panel.captures["1AB23456CD7890123"] = {**panel.captures[capture_id],
                                           "id": "1AB23456CD7890123"}
    assert await provider.disputed_invoices(
        _dispute(panel, {"seller_transaction_id": "1AB23456CD7890123"})) == []
    assert invoice_id  # the invoice exists; the capture is simply not one of its payments


async def test_paypal_failing_during_the_lookup_is_an_upstream_error(
        sim: tuple[PayPalSim, str], provider: PayPalProvider) -> None:
    panel, _ = sim
    panel.knobs.fail_status, panel.knobs.fault_paths = 503, ["/v2/invoicing/search-invoices"]
    try:
        with pytest.raises(errors.Unavailable):
            await provider.disputed_invoices(_dispute(panel, {"invoice_number": "0001"}))
    finally:
        panel.knobs.fail_status, panel.knobs.fault_paths = None, None

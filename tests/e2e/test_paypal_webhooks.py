"""PayPal webhooks end to end: the simulated PayPal signs a delivery, the gateway asks PayPal's
verify-webhook-signature (real HTTP) and publishes an invoice event to a WebSocket subscriber.
Forged, incomplete, replayed and unverifiable deliveries are answered without an event."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from panelql.settings import ProviderEntry
from panelql_sim.paypal import PayPalSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, start_gateway, wait_for_subscribers
from tests.e2e.wsclient import ws_client


@pytest.fixture(scope="module")
def paypal(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[GatewayUnderTest, PayPalSim]]:
    sim = PayPalSim(invoices=12)
    served = background.serve("paypal-hooks", sim.app())
    tmp: Path = tmp_path_factory.mktemp("paypal-hooks")
    entries = [ProviderEntry(name="pp", kind="paypal", base_url=served.url,
                             credentials={"client_id": sim.client_id,
                                          "client_secret": sim.client_secret},
                             options={"webhook_id": sim.webhook_id}),
               ProviderEntry(name="pp-unhooked", kind="paypal", base_url=served.url,
                             credentials={"client_id": sim.client_id,
                                          "client_secret": sim.client_secret})]
    yield start_gateway(background, "gw-paypal-hooks", {"pp": sim}, entries,
                        tmp / "hooks.db"), sim


def _sent_invoice(sim: PayPalSim) -> str:
    return next(i.id for i in sim.invoices.values() if i.status in ("SENT", "UNPAID"))


async def test_verified_delivery_becomes_one_invoice_event(
        paypal: tuple[GatewayUnderTest, PayPalSim]) -> None:
    gw, sim = paypal
    invoice_id = _sent_invoice(sim)
    async with ws_client(gw.url) as client:
        assert (await client.init({"x-api-key": gw.admin_key}))["type"] == "connection_ack"
        await client.subscribe("subscription { invoiceStatusChanged { status previous source "
                               "invoice { number } } }")
        await wait_for_subscribers(gw, "invoice", 1)
        sim.invoices[invoice_id].status = "PAID"
        body, headers = sim.delivery("INVOICING.INVOICE.PAID", invoice_id)
        async with httpx.AsyncClient(base_url=gw.url) as http:
            first = await http.post("/webhooks/paypal/pp", content=body, headers=headers)
            again = await http.post("/webhooks/paypal/pp", content=body, headers=headers)
        assert first.status_code == 200, first.text
        assert first.json() == {"received": True, "duplicate": False, "events": 1}
        assert again.json()["duplicate"] is True  # PayPal redelivers; nothing happens twice
        message = await client.recv()
        event = message["payload"]["data"]["invoiceStatusChanged"]
        assert event["status"] == "PAID" and event["source"] == "WEBHOOK"
        assert event["invoice"]["number"] == sim.invoices[invoice_id].number
        with pytest.raises(asyncio.TimeoutError):
            await client.recv(timeout=0.5)  # the replay published nothing


async def test_forged_or_incomplete_deliveries_are_refused(
        paypal: tuple[GatewayUnderTest, PayPalSim]) -> None:
    gw, sim = paypal
    body, headers = sim.delivery("INVOICING.INVOICE.CANCELLED", _sent_invoice(sim))
    tampered = body.replace(b'"INVOICING.INVOICE.CANCELLED"', b'"INVOICING.INVOICE.PAID"')
    async with httpx.AsyncClient(base_url=gw.url) as http:
        forged = await http.post("/webhooks/paypal/pp", content=tampered, headers=headers)
        unsigned = await http.post("/webhooks/paypal/pp", content=body, headers={
            k: v for k, v in headers.items() if k != "PAYPAL-TRANSMISSION-SIG"})
        garbage = await http.post("/webhooks/paypal/pp", content=b"<xml/>", headers=headers)
        unhooked = await http.post("/webhooks/paypal/pp-unhooked", content=body,
                                   headers=headers)
    assert forged.status_code == 400
    assert forged.json()["error"]["code"] == "INVALID_WEBHOOK"
    assert "did not verify" in forged.json()["error"]["message"]
    assert unsigned.status_code == 400 and "paypal-transmission-sig" in unsigned.text
    assert garbage.status_code == 400
    assert unhooked.status_code == 404  # no webhook_id: webhooks are not configured there


async def test_paypal_down_answers_503_and_the_redelivery_is_processed(
        paypal: tuple[GatewayUnderTest, PayPalSim]) -> None:
    gw, sim = paypal
    body, headers = sim.delivery("INVOICING.INVOICE.UPDATED", _sent_invoice(sim))
    sim.knobs.fail_status = 503
    sim.knobs.fault_paths = ["/v1/notifications"]
    try:
        async with httpx.AsyncClient(base_url=gw.url, timeout=30) as http:
            down = await http.post("/webhooks/paypal/pp", content=body, headers=headers)
    finally:
        sim.knobs.fail_status = None
        sim.knobs.fault_paths = None
    assert down.status_code == 503, down.text
    assert down.json()["error"]["code"] == "PROVIDER_UNAVAILABLE"
    async with httpx.AsyncClient(base_url=gw.url) as http:
        later = await http.post("/webhooks/paypal/pp", content=body, headers=headers)
    assert later.json() == {"received": True, "duplicate": False, "events": 1}


def _paid_on_paypals_page(sim: PayPalSim, transaction_id: str) -> str:
    """An invoice the payer paid on PayPal's own invoice page: its PAYPAL payment is no
    capture of the Payments API, so a dispute about it is found by its invoice number."""
    invoice = sim.invoices[_sent_invoice(sim)]
    invoice.transactions.append({"payment_id": transaction_id, "type": "PAYPAL",
                                 "method": "PAYPAL", "amount": invoice._money(invoice.total)})
    invoice.paid, invoice.status = invoice.total, "PAID"
    return invoice.id


# 400: PayPal refusing the gateway's own search is no fault of the delivery; answered 400 it
# would count as a forgery against PayPal's address (web/webhooks.py).
@pytest.mark.parametrize("failure", [503, 400])
async def test_a_dispute_whose_invoice_search_fails_answers_503_and_is_redelivered(
        paypal: tuple[GatewayUnderTest, PayPalSim], failure: int) -> None:
    gw, sim = paypal
    transaction = f"8MC58540DF{failure}0000"
    invoice_id = _paid_on_paypals_page(sim, transaction)
    dispute = sim.dispute([{"seller_transaction_id": transaction,
                            "invoice_number": sim.invoices[invoice_id].number}],
                          "MERCHANDISE_OR_SERVICE_NOT_RECEIVED")
    body, headers = sim.signed(sim.event("CUSTOMER.DISPUTE.CREATED", "dispute", dispute,
                                         "A new dispute opened"))
    sim.knobs.fail_status = failure
    sim.knobs.fault_paths = ["/v2/invoicing/search-invoices"]
    try:
        async with httpx.AsyncClient(base_url=gw.url, timeout=30) as http:
            down = await http.post("/webhooks/paypal/pp", content=body, headers=headers)
    finally:
        sim.knobs.fail_status = None
        sim.knobs.fault_paths = None
    # Verified, but not processed: not refused as a forgery, and not marked as seen.
    assert down.status_code == 503, down.text
    assert down.json()["error"]["code"] == "PROVIDER_UNAVAILABLE"
    async with ws_client(gw.url) as client:
        assert (await client.init({"x-api-key": gw.admin_key}))["type"] == "connection_ack"
        await client.subscribe("subscription { invoiceStatusChanged { status eventType "
                               "payment source } }")
        await wait_for_subscribers(gw, "invoice", 1)
        async with httpx.AsyncClient(base_url=gw.url) as http:
            later = await http.post("/webhooks/paypal/pp", content=body, headers=headers)
        assert later.json() == {"received": True, "duplicate": False, "events": 1}
        event = (await client.recv())["payload"]["data"]["invoiceStatusChanged"]
    assert event == {"status": "PAID", "eventType": "CUSTOMER.DISPUTE.CREATED",
                     "payment": None, "source": "WEBHOOK"}


async def test_a_dispute_event_without_a_dispute_is_refused(
        paypal: tuple[GatewayUnderTest, PayPalSim]) -> None:
    gw, sim = paypal
    body, headers = sim.signed(sim.event("CUSTOMER.DISPUTE.CREATED", "dispute",
                                         {"status": "OPEN"}, "A new dispute opened"))
    async with httpx.AsyncClient(base_url=gw.url) as http:
        answer = await http.post("/webhooks/paypal/pp", content=body, headers=headers)
    assert answer.status_code == 400 and "dispute_id" in answer.text


def _capture_of(custom_id: str) -> dict[str, object]:
    return {"id": "3C679366HH908993F", "status": "COMPLETED", "custom_id": custom_id,
            "amount": {"currency_code": "USD", "value": "10.00"}}


async def test_captures_of_other_apps_orders_are_acknowledged_and_never_throttled(
        paypal: tuple[GatewayUnderTest, PayPalSim]) -> None:
    """custom_id is free text to PayPal: a shop on the same PayPal account puts its own order
    reference there. Such captures are PayPal's genuine deliveries; refused, they would count
    as forgeries until PayPal's address is turned away (429) for the gateway's invoices too."""
    gw, sim = paypal
    async with httpx.AsyncClient(base_url=gw.url) as http:
        answers = []
        for n in range(12):  # more than the throttle lets through
            body, headers = sim.signed(sim.event(
                "PAYMENT.CAPTURE.COMPLETED", "capture", _capture_of(f"shop-order-{n}"),
                "Payment completed for $ 10.0 USD"))
            answers.append(await http.post("/webhooks/paypal/pp", content=body,
                                           headers=headers))
        invoice_event = sim.delivery("INVOICING.INVOICE.UPDATED", next(iter(sim.invoices)))
        after = await http.post("/webhooks/paypal/pp", content=invoice_event[0],
                                headers=invoice_event[1])
    assert [(a.status_code, a.json().get("events")) for a in answers] == [(200, 0)] * 12
    assert after.json() == {"received": True, "duplicate": False, "events": 1}


async def test_a_refused_invoice_lookup_for_a_capture_is_redelivered(
        paypal: tuple[GatewayUnderTest, PayPalSim]) -> None:
    gw, sim = paypal
    invoice_id = next(iter(sim.invoices))
    body, headers = sim.signed(sim.event(
        "PAYMENT.CAPTURE.DENIED", "capture", {**_capture_of(invoice_id), "status": "DECLINED"},
        "Payment denied"))
    sim.knobs.fail_status = 400
    sim.knobs.fault_paths = ["/v2/invoicing/invoices"]
    try:
        async with httpx.AsyncClient(base_url=gw.url) as http:
            refused = await http.post("/webhooks/paypal/pp", content=body, headers=headers)
    finally:
        sim.knobs.fail_status = None
        sim.knobs.fault_paths = None
    assert refused.status_code == 503, refused.text
    async with httpx.AsyncClient(base_url=gw.url) as http:
        later = await http.post("/webhooks/paypal/pp", content=body, headers=headers)
    assert later.json() == {"received": True, "duplicate": False, "events": 1}

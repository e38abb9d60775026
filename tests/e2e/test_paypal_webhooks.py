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

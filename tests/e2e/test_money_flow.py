"""Money in and out end to end, as a billing integration sees it: real HTTP to the gateway and
to the simulated Stripe and PayPal (the real ``stripe`` library; PayPal refereed by its
documents), the providers' webhooks delivered over real HTTP, and a real WebSocket
subscription watching ``invoiceStatusChanged``.

Stripe: createInvoice → checkout (a Checkout Session) → the customer pays on the hosted page →
``checkout.session.completed`` → PAID; refund half → PARTIALLY_REFUNDED. PayPal: createInvoice
→ checkout (an order) → the buyer approves → capturePayment → PAID; refund half. Then the ways
it goes wrong."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from panelql.application.ids import decode, encode
from panelql.domain.records import Ref, ResourceType
from panelql.settings import ProviderEntry
from panelql_sim.paypal import PayPalSim
from panelql_sim.runner import BackgroundServers
from panelql_sim.stripe import StripeSim
from tests.e2e.harness import GatewayUnderTest, start_gateway, wait_for_subscribers
from tests.e2e.wsclient import TransportWS, ws_client

CREATE = """mutation Create($input: CreateInvoiceInput!, $key: String) {
  createInvoice(input: $input, idempotencyKey: $key) {
    replayed invoice { id status rawStatus total { amount currency } memo externalRef
                       customerId lines { description quantity amount { amount } } } } }"""
CHECKOUT = """mutation Pay($id: ID!) {
  checkout(id: $id, returnUrl: "https://shop.test/thanks", cancelUrl: "https://shop.test/no") {
    paymentLink { url kind id } invoice { status } } }"""
REFUND = """mutation Refund($id: ID!, $amount: String, $key: String) {
  refundInvoice(id: $id, amount: $amount, idempotencyKey: $key) {
    replayed invoice { status rawStatus amountPaid { amount } amountRefunded { amount } } } }"""
CAPTURE = """mutation Capture($id: ID!, $order: String!) {
  capturePayment(id: $id, orderId: $order) {
    collection paymentId invoice { status rawStatus amountPaid { amount } } } }"""
WATCH = """subscription Watch($ids: [ID!]) {
  invoiceStatusChanged(filter: {ids: $ids}) {
    id status previous rawStatus eventType payment source } }"""


@pytest.fixture(scope="module")
def money(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[GatewayUnderTest, StripeSim, PayPalSim]]:
    stripe_sim, paypal_sim = StripeSim(customers=2, invoices=4), PayPalSim(invoices=4)
    st = background.serve("money-stripe", stripe_sim.app())
    pp = background.serve("money-paypal", paypal_sim.app())
    entries = [
        ProviderEntry(name="stripe", kind="stripe", base_url=st.url,
                      credentials={"api_key": stripe_sim.api_key,
                                   "webhook_secret": stripe_sim.webhook_secret}),
        ProviderEntry(name="paypal", kind="paypal", base_url=pp.url,
                      credentials={"client_id": paypal_sim.client_id,
                                   "client_secret": paypal_sim.client_secret},
                      options={"webhook_id": paypal_sim.webhook_id})]
    tmp: Path = tmp_path_factory.mktemp("money")
    gw = start_gateway(background, "gw-money", {"stripe": stripe_sim, "paypal": paypal_sim},
                       entries, tmp / "money.db")
    # The providers call the gateway back, as their dashboards are configured to.
    stripe_sim.webhook_url = f"{gw.url}/webhooks/stripe/stripe"
    paypal_sim.webhook_url = f"{gw.url}/webhooks/paypal/paypal"
    yield gw, stripe_sim, paypal_sim


def _invoice_input(provider: str, customer: str, **extra: Any) -> dict[str, Any]:
    return {"provider": provider, "customerRef": customer, "email": f"{customer[6:]}@ex.test",
            "name": "Ada Lovelace", "currency": "EUR", "memo": "Game server, May",
            "externalRef": f"WHMCS-{customer}", **extra,
            "lines": [{"description": "Game server 4 GB", "unitAmount": "12.50",
                       "quantity": 2}]}


def _data(answer: dict[str, Any], field: str) -> Any:
    assert "errors" not in answer, answer
    return answer["data"][field]


def _code(answer: dict[str, Any]) -> str:
    assert answer.get("errors"), answer
    return str(answer["errors"][0]["extensions"]["code"])


async def _until(client: TransportWS, status: str) -> dict[str, Any]:
    """The next invoice event with this status (events before it are the earlier steps)."""
    for _ in range(10):
        message = await client.recv()
        assert message["type"] == "next", message
        event: dict[str, Any] = message["payload"]["data"]["invoiceStatusChanged"]
        if event["status"] == status:
            return event
    raise AssertionError(f"no {status} event")


def _post_form(url: str, data: dict[str, str]) -> httpx.Response:
    return httpx.post(url, data=data, follow_redirects=False)


async def test_stripe_invoice_paid_through_checkout_then_half_refunded(
        money: tuple[GatewayUnderTest, StripeSim, PayPalSim]) -> None:
    gw, stripe_sim, _ = money
    made = _data(gw.query(CREATE, {"input": _invoice_input("stripe", "whmcs:st-1"),
                                   "key": "st-create-1"}), "createInvoice")
    invoice = made["invoice"]
    assert invoice["status"] == "DRAFT" and invoice["total"] == {"amount": "25.00",
                                                                 "currency": "EUR"}
    assert invoice["memo"] == "Game server, May" and invoice["externalRef"] == "WHMCS-whmcs:st-1"
    links = gw.query('{ customerLinks(customerRef: "whmcs:st-1") { provider resourceType '
                     'resourceId } }')
    assert _data(links, "customerLinks") == [{"provider": "stripe",
                                              "resourceType": "BillingCustomer",
                                              "resourceId": invoice["customerId"]}]
    async with ws_client(gw.url) as client:
        assert (await client.init({"x-api-key": gw.admin_key}))["type"] == "connection_ack"
        await client.subscribe(WATCH, {"ids": [invoice["id"]]})
        await wait_for_subscribers(gw, "invoice", 1)
        pay = _data(gw.query(CHECKOUT, {"id": invoice["id"]}), "checkout")
        assert pay["paymentLink"]["kind"] == "CHECKOUT_SESSION"
        assert pay["invoice"]["status"] == "OPEN"  # a draft is finalized first
        page = httpx.get(pay["paymentLink"]["url"])
        assert page.status_code == 200 and "<form" in page.text
        paid = _post_form(pay["paymentLink"]["url"], {"card": "success"})
        assert paid.status_code == 303 and paid.headers["location"] == "https://shop.test/thanks"
        event = await _until(client, "PAID")
        assert event["source"] == "WEBHOOK" and event["payment"] == "SUCCEEDED"
        assert event["eventType"] in ("checkout.session.completed", "invoice.paid")
        assert stripe_sim.invoices[decode(invoice["id"]).id].status == "paid"
        refund = _data(gw.query(REFUND, {"id": invoice["id"], "amount": "12.50",
                                         "key": "st-refund-1"}), "refundInvoice")
        assert refund["invoice"] == {"status": "PARTIALLY_REFUNDED", "rawStatus": "paid",
                                     "amountPaid": {"amount": "25.00"},
                                     "amountRefunded": {"amount": "12.50"}}
        event = await _until(client, "PARTIALLY_REFUNDED")
        assert event["payment"] == "REFUNDED" and event["rawStatus"] == "paid"
        assert event["eventType"] in ("refundInvoice", "charge.refunded")
        again = _data(gw.query(REFUND, {"id": invoice["id"], "amount": "12.50",
                                        "key": "st-refund-1"}), "refundInvoice")
        assert again["replayed"] is True  # the same key refunds once
    refunds = [e for e in stripe_sim.events if e["type"] == "charge.refunded"]
    assert len(refunds) == 1 and refunds[0]["data"]["object"]["amount_refunded"] == 1250


async def test_paypal_order_approved_captured_then_half_refunded(
        money: tuple[GatewayUnderTest, StripeSim, PayPalSim]) -> None:
    gw, _, paypal_sim = money
    invoice = _data(gw.query(CREATE, {"input": _invoice_input("paypal", "whmcs:pp-1")}),
                    "createInvoice")["invoice"]
    assert invoice["status"] == "DRAFT" and invoice["customerId"] == "pp-1@ex.test"
    async with ws_client(gw.url) as client:
        assert (await client.init({"x-api-key": gw.admin_key}))["type"] == "connection_ack"
        await client.subscribe(WATCH, {"ids": [invoice["id"]]})
        await wait_for_subscribers(gw, "invoice", 1)
        pay = _data(gw.query(CHECKOUT, {"id": invoice["id"]}), "checkout")
        link = pay["paymentLink"]
        assert link["kind"] == "ORDER" and "checkoutnow?token=" in link["url"]
        early = gw.query(CAPTURE, {"id": invoice["id"], "order": link["id"]})
        assert _code(early) == "CONFLICT"  # not approved yet (ORDER_NOT_APPROVED)
        approved = _post_form(link["url"], {"funding": "balance"})
        assert approved.status_code == 303
        assert approved.headers["location"].startswith("https://shop.test/thanks?token=")
        captured = _data(gw.query(CAPTURE, {"id": invoice["id"], "order": link["id"]}),
                         "capturePayment")
        assert captured["collection"] == "CAPTURED_ORDER" and captured["paymentId"]
        assert captured["invoice"]["status"] == "PAID"
        assert captured["invoice"]["amountPaid"] == {"amount": "25.00"}
        event = await _until(client, "PAID")
        assert event["payment"] == "SUCCEEDED"
        refund = _data(gw.query(REFUND, {"id": invoice["id"], "amount": "12.50"}),
                       "refundInvoice")
        assert refund["invoice"]["status"] == "PARTIALLY_REFUNDED"
        assert refund["invoice"]["rawStatus"] == "PARTIALLY_REFUNDED"
        event = await _until(client, "PARTIALLY_REFUNDED")
        assert event["payment"] == "REFUNDED"
        rest = _data(gw.query(REFUND, {"id": invoice["id"]}), "refundInvoice")
        assert rest["invoice"]["status"] == "REFUNDED"  # no longer reads PAID
        assert rest["invoice"]["amountRefunded"] == {"amount": "25.00"}
    upstream = paypal_sim.invoices[next(i for i in paypal_sim.invoices
                                        if paypal_sim.invoices[i].recipient == "pp-1@ex.test")]
    assert len(upstream.transactions) == 1  # webhook and mutation recorded the capture once


async def test_create_invoice_replays_with_its_key_and_refuses_other_input(
        money: tuple[GatewayUnderTest, StripeSim, PayPalSim]) -> None:
    gw, stripe_sim, _ = money
    before = len(stripe_sim.invoices)
    variables = {"input": _invoice_input("stripe", "whmcs:st-2"), "key": "st-create-2"}
    first = _data(gw.query(CREATE, variables), "createInvoice")
    again = _data(gw.query(CREATE, variables), "createInvoice")
    assert again["replayed"] is True and again["invoice"]["id"] == first["invoice"]["id"]
    assert len(stripe_sim.invoices) == before + 1
    other = {"input": _invoice_input("stripe", "whmcs:st-2", memo="changed"),
             "key": "st-create-2"}
    assert _code(gw.query(CREATE, other)) == "BAD_USER_INPUT"


async def test_wrong_input_wrong_state_and_unknown_invoices_are_coded(
        money: tuple[GatewayUnderTest, StripeSim, PayPalSim]) -> None:
    gw, stripe_sim, _ = money
    bad = _invoice_input("stripe", "whmcs:st-3")
    bad["lines"][0]["unitAmount"] = "ten"
    assert _code(gw.query(CREATE, {"input": bad})) == "BAD_USER_INPUT"
    assert _code(gw.query(CREATE, {"input": {**_invoice_input("stripe", "whmcs:st-3"),
                                             "currency": "EURO"}})) == "BAD_USER_INPUT"
    assert _code(gw.query(CREATE, {"input": _invoice_input("nope", "whmcs:st-3")})) \
        == "NOT_FOUND"
    invoice = _data(gw.query(CREATE, {"input": _invoice_input("stripe", "whmcs:st-3")}),
                    "createInvoice")["invoice"]
    unpaid = gw.query(REFUND, {"id": invoice["id"]})
    assert _code(unpaid) == "CONFLICT"
    assert unpaid["errors"][0]["extensions"]["currentStatus"] == "DRAFT"
    unknown = invoice["id"][:-3] + "AAA"
    assert _code(gw.query(CHECKOUT, {"id": unknown})) in ("NOT_FOUND", "BAD_USER_INPUT")
    paid = next(i for i in stripe_sim.invoices.values() if i.status == "paid")
    paid_id = encode(Ref("stripe", ResourceType.INVOICE, paid.id))
    missing_id = encode(Ref("stripe", ResourceType.INVOICE, "in_1DoesNotExist"))
    assert _code(gw.query(CHECKOUT, {"id": missing_id})) == "NOT_FOUND"
    assert _code(gw.query(REFUND, {"id": missing_id})) == "NOT_FOUND"
    assert _code(gw.query(CHECKOUT, {"id": paid_id})) == "CONFLICT"
    over = gw.query(REFUND, {"id": paid_id, "amount": "100000.00"})
    assert _code(over) == "BAD_USER_INPUT"
    assert over["errors"][0]["extensions"]["reason"] == "OVER_REFUND"
    assert _code(gw.query(CAPTURE, {"id": paid_id, "order": "5O190127TN364715T"})) \
        == "NOT_SUPPORTED"  # Stripe has no orders to capture


async def test_pay_invoice_says_what_it_did(
        money: tuple[GatewayUnderTest, StripeSim, PayPalSim]) -> None:
    gw, _, _ = money
    pay = "mutation($id: ID!) { payInvoice(id: $id) { collection invoice { status } } }"
    for provider, expected in (("stripe", "CHARGED_SAVED_METHOD"),
                               ("paypal", "RECORDED_OUT_OF_BAND")):
        invoices = _data(gw.query('query($p: [String!]) { invoices(first: 50, filter: '
                                  '{provider: $p, status: [OPEN]}) { edges { node { id } } } }',
                                  {"p": [provider]}), "invoices")["edges"]
        answers = [gw.query(pay, {"id": e["node"]["id"]}) for e in invoices]
        done = [a["data"]["payInvoice"] for a in answers if not a.get("errors")]
        assert done, answers
        assert {d["collection"] for d in done} == {expected}


async def test_provider_down_is_unavailable_and_nothing_half_done(
        money: tuple[GatewayUnderTest, StripeSim, PayPalSim]) -> None:
    gw, stripe_sim, _ = money
    before = len(stripe_sim.invoices)
    stripe_sim.knobs.fail_status = 503
    try:
        down = gw.query(CREATE, {"input": _invoice_input("stripe", "whmcs:st-4"),
                                 "key": "st-down"})
    finally:
        stripe_sim.knobs.fail_status = None
    assert _code(down) == "PROVIDER_UNAVAILABLE"
    assert len(stripe_sim.invoices) == before
    later = _data(gw.query(CREATE, {"input": _invoice_input("stripe", "whmcs:st-4"),
                                    "key": "st-down"}), "createInvoice")
    assert later["replayed"] is False  # the key was released: the retry ran for real


async def test_replayed_payment_webhook_changes_nothing_twice(
        money: tuple[GatewayUnderTest, StripeSim, PayPalSim]) -> None:
    gw, stripe_sim, _ = money
    completed = [e for e in stripe_sim.events if e["type"] == "checkout.session.completed"]
    assert completed, "the Stripe flow above paid through Checkout"
    body, signature = stripe_sim.signed(completed[0])
    answer = httpx.post(f"{gw.url}/webhooks/stripe/stripe", content=body,
                        headers={"Stripe-Signature": signature,
                                 "Content-Type": "application/json"})
    assert answer.status_code == 200 and answer.json()["duplicate"] is True
    forged = httpx.post(f"{gw.url}/webhooks/stripe/stripe", content=body,
                        headers={"Stripe-Signature": signature.replace("v1=", "v1=0")})
    assert forged.status_code == 400


async def test_customer_keys_pay_their_own_invoices_only(
        money: tuple[GatewayUnderTest, StripeSim, PayPalSim]) -> None:
    gw, _, _ = money
    mine = _data(gw.query(CREATE, {"input": _invoice_input("stripe", "whmcs:st-5")}),
                 "createInvoice")["invoice"]
    theirs = _data(gw.query(CREATE, {"input": _invoice_input("stripe", "whmcs:st-6")}),
                   "createInvoice")["invoice"]
    key = gw.create_key(["billing.read", "billing.write"], name="portal-5",
                        customer_ref="whmcs:st-5")
    own = gw.query(CHECKOUT, {"id": mine["id"]}, **{"x-api-key": key})
    assert _data(own, "checkout")["paymentLink"]["url"]
    assert _code(gw.query(CHECKOUT, {"id": theirs["id"]}, **{"x-api-key": key})) == "NOT_FOUND"
    assert _code(gw.query(REFUND, {"id": mine["id"]}, **{"x-api-key": key})) == "FORBIDDEN"
    assert _code(gw.query(CREATE, {"input": _invoice_input("stripe", "whmcs:st-5")},
                          **{"x-api-key": key})) == "FORBIDDEN"


async def test_failed_payments_reach_subscribers_as_payment_failed(
        money: tuple[GatewayUnderTest, StripeSim, PayPalSim]) -> None:
    gw, stripe_sim, _ = money
    paypal_invoice = _data(gw.query(CREATE, {"input": _invoice_input("paypal", "whmcs:pp-9")}),
                           "createInvoice")["invoice"]
    declined = stripe_sim.add_customer("Declined card", "declined@ex.test", method="declined")
    stripe_invoice = stripe_sim.add_invoice(declined, [("Game server", 1, 900)])
    stripe_sim.invoices[stripe_invoice.id].status = "open"
    stripe_id = encode(Ref("stripe", ResourceType.INVOICE, stripe_invoice.id))
    async with ws_client(gw.url) as client:
        assert (await client.init({"x-api-key": gw.admin_key}))["type"] == "connection_ack"
        await client.subscribe(
            "subscription($ids: [ID!]) { invoiceStatusChanged(filter: {ids: $ids}) "
            "{ id status eventType payment source } }",
            {"ids": [paypal_invoice["id"], stripe_id]})
        await wait_for_subscribers(gw, "invoice", 1)
        # Stripe: charging a saved card that is declined (402 → CONFLICT), then
        # invoice.payment_failed arrives signed.
        refused = gw.query("mutation($id: ID!) { payInvoice(id: $id) { collection } }",
                           {"id": stripe_id})
        assert _code(refused) == "CONFLICT"
        # PayPal: the buyer approves with a card whose capture is declined.
        link = _data(gw.query(CHECKOUT, {"id": paypal_invoice["id"]}),
                     "checkout")["paymentLink"]
        assert _post_form(link["url"], {"funding": "declined"}).status_code == 303
        assert _code(gw.query(CAPTURE, {"id": paypal_invoice["id"], "order": link["id"]})) \
            == "CONFLICT"
        failures: dict[str, dict[str, Any]] = {}
        for _ in range(10):
            message = await client.recv()
            event = message["payload"]["data"]["invoiceStatusChanged"]
            if event["payment"] == "FAILED":
                failures[event["eventType"]] = event
            if len(failures) == 2:
                break
        assert set(failures) == {"invoice.payment_failed", "PAYMENT.CAPTURE.DENIED"}
        assert all(e["status"] == "OPEN" and e["source"] == "WEBHOOK"
                   for e in failures.values())


async def test_a_payment_webhook_while_the_provider_is_down_asks_for_redelivery(
        money: tuple[GatewayUnderTest, StripeSim, PayPalSim]) -> None:
    gw, stripe_sim, _ = money
    invoice = _data(gw.query(CREATE, {"input": _invoice_input("stripe", "whmcs:st-7")}),
                    "createInvoice")["invoice"]
    link = _data(gw.query(CHECKOUT, {"id": invoice["id"]}), "checkout")["paymentLink"]
    stripe_sim.webhook_url = None  # deliver by hand, after the outage starts
    try:
        assert _post_form(link["url"], {"card": "success"}).status_code == 303
    finally:
        stripe_sim.webhook_url = f"{gw.url}/webhooks/stripe/stripe"
    event = next(e for e in reversed(stripe_sim.events)
                 if e["type"] == "checkout.session.completed")
    body, signature = stripe_sim.signed(event)
    headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}
    stripe_sim.knobs.fail_status = 503
    try:
        down = httpx.post(f"{gw.url}/webhooks/stripe/stripe", content=body, headers=headers)
    finally:
        stripe_sim.knobs.fail_status = None
    assert down.status_code == 503  # not recorded as processed: Stripe delivers it again
    assert stripe_sim.invoices[decode(invoice["id"]).id].status == "open"
    again = httpx.post(f"{gw.url}/webhooks/stripe/stripe", content=body, headers=headers)
    assert again.status_code == 200 and again.json()["duplicate"] is False
    assert stripe_sim.invoices[decode(invoice["id"]).id].status == "paid"

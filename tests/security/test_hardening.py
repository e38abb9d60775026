"""Smaller holes from the red-team pass: deep JSON, forged-webhook cost, time checks on keys
and webhooks, line breaks in DNS content, and the overall request deadline."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from panelql.application.errors import BadUserInput
from panelql.application.validation import dns_record
from panelql.settings import ProviderEntry
from panelql_sim.catalyst import CatalystSim
from panelql_sim.paypal import PayPalSim
from panelql_sim.runner import BackgroundServers
from panelql_sim.stripe import StripeSim
from tests.e2e.harness import GatewayUnderTest, serve_sim, start_gateway
from tests.e2e.wsclient import ws_client

DEEP = 100_000
VERIFY = "POST /v1/notifications/verify-webhook-signature"


def deep_json(levels: int = DEEP) -> bytes:
    return b'{"query": "{ viewer { name } }", "variables": {"v": ' + b"[" * levels + \
        b"]" * levels + b"}}"


@pytest.fixture(scope="module")
def world(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[GatewayUnderTest, PayPalSim, StripeSim]]:
    paypal, stripe = PayPalSim(invoices=4), StripeSim(customers=2, invoices=4)
    cat = CatalystSim(servers=2)
    served = background.serve("pp-hard", paypal.app())
    entries = [ProviderEntry(name="pp", kind="paypal", base_url=served.url,
                             credentials={"client_id": paypal.client_id,
                                          "client_secret": paypal.client_secret},
                             options={"webhook_id": paypal.webhook_id}),
               serve_sim(background, "st-hard", stripe, "stripe",
                         {"api_key": stripe.api_key, "webhook_secret": stripe.webhook_secret}),
               serve_sim(background, "cat-hard", cat, "catalyst", {"api_key": cat.api_key})]
    gw = start_gateway(background, "gw-hard", {"pp": paypal, "st-hard": stripe,
                                               "cat-hard": cat}, entries,
                       tmp_path_factory.mktemp("hard") / "h.db")
    yield gw, paypal, stripe


# -- depth-safe JSON -------------------------------------------------------------------------

def test_deep_json_body_is_a_coded_400(world: tuple[GatewayUnderTest, Any, Any]) -> None:
    gw = world[0]
    for levels in (DEEP, 200):  # RecursionError in the parser, and past our own limit
        answer = gw.client.post(f"{gw.url}/graphql", content=deep_json(levels),
                                headers={"content-type": "application/json"})
        assert answer.status_code == 400, answer.text
        error = answer.json()["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "nested more than 64 levels" in error["message"]
    shallow = gw.client.post(f"{gw.url}/graphql", content=deep_json(10),
                             headers={"content-type": "application/json"})
    assert shallow.status_code == 200


def test_deep_json_in_get_variables(world: tuple[GatewayUnderTest, Any, Any]) -> None:
    gw = world[0]
    answer = gw.client.get(f"{gw.url}/graphql", params={
        "query": "query($v: JSON) { viewer { name } }", "variables": "{\"v\":" +
        "[" * 200 + "]" * 200 + "}"}, headers={"accept": "application/json"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_deep_json_websocket_message_closes_as_invalid(
        world: tuple[GatewayUnderTest, Any, Any]) -> None:
    gw = world[0]
    async with ws_client(gw.url) as client:
        await client.init({"x-api-key": gw.admin_key})
        await client.ws.send('{"id": "1", "type": "subscribe", "payload": ' + "[" * DEEP +
                             "]" * DEEP + "}")
        with pytest.raises(ConnectionClosed) as closed:
            await client.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400
    # and the gateway is fine
    assert gw.query("{ viewer { name } }")["data"]["viewer"]["name"]


@pytest.mark.parametrize("path", ["/webhooks/paypal/pp", "/webhooks/stripe/st-hard"])
def test_deep_webhook_body_is_refused_before_any_check(
        world: tuple[GatewayUnderTest, PayPalSim, Any], path: str) -> None:
    gw, paypal, _ = world
    paypal.reset_stats()
    body = b'{"id": "WH-1", "event_type": "INVOICING.INVOICE.PAID", "resource": ' + \
        b"[" * DEEP + b"]" * DEEP + b"}"
    paypal_headers = {h: "x" for h in ("paypal-transmission-id", "paypal-transmission-time",
                                       "paypal-transmission-sig", "paypal-cert-url",
                                       "paypal-auth-algo")}
    answer = httpx.post(f"{gw.url}{path}", content=body, timeout=30, headers={
        "content-type": "application/json", "stripe-signature": "t=1,v1=00", **paypal_headers})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "INVALID_WEBHOOK"
    assert paypal.stats.get(VERIFY, 0) == 0


# -- forged webhooks are throttled per source --------------------------------------------------

def test_forged_paypal_webhooks_stop_costing_verifications(
        world: tuple[GatewayUnderTest, PayPalSim, Any]) -> None:
    gw, paypal, _ = world
    invoice = next(iter(paypal.invoices))
    body, headers = paypal.delivery("INVOICING.INVOICE.PAID", invoice)
    forged = {**headers, "PAYPAL-TRANSMISSION-SIG": "forged"}
    paypal.reset_stats()
    answers = [httpx.post(f"{gw.url}/webhooks/paypal/pp", content=body, headers=forged,
                          timeout=30) for _ in range(25)]
    statuses = [a.status_code for a in answers]
    assert set(statuses[:5]) == {400}  # refused after PayPal said no
    assert statuses[-1] == 429 and int(answers[-1].headers["retry-after"]) >= 1
    assert paypal.stats.get(VERIFY, 0) <= 10  # not one call per forgery


# -- time checks ------------------------------------------------------------------------------

def test_create_api_key_refuses_a_past_expiry(world: tuple[GatewayUnderTest, Any, Any]) -> None:
    gw = world[0]
    mutation = """mutation($at: DateTime) { createApiKey(name: "x", scopes: ["server.view"],
      expiresAt: $at) { key } }"""
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    body = gw.query(mutation, {"at": past})
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "expiresAt"}
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert gw.query(mutation, {"at": future})["data"]["createApiKey"]["key"].startswith("pql_")


def test_stripe_event_dated_in_the_future_is_refused(
        world: tuple[GatewayUnderTest, Any, StripeSim]) -> None:
    gw, _, stripe = world
    invoice = next(iter(stripe.invoices.values()))
    event = stripe.record_event("invoice.finalized", invoice)
    future = int(time.time()) + 3600
    body, signature = stripe.signed(event, timestamp=future)
    answer = httpx.post(f"{gw.url}/webhooks/stripe/st-hard", content=body, headers={
        "stripe-signature": signature, "content-type": "application/json"}, timeout=30)
    assert answer.status_code == 400 and "future" in answer.json()["error"]["message"]
    event = {**stripe.record_event("invoice.finalized", invoice), "created": future}
    body, signature = stripe.signed(event)
    answer = httpx.post(f"{gw.url}/webhooks/stripe/st-hard", content=body, headers={
        "stripe-signature": signature, "content-type": "application/json"}, timeout=30)
    assert answer.status_code == 400 and "future" in answer.json()["error"]["message"]
    body, signature = stripe.signed(stripe.record_event("invoice.finalized", invoice))
    fresh = httpx.post(f"{gw.url}/webhooks/stripe/st-hard", content=body, headers={
        "stripe-signature": signature, "content-type": "application/json"}, timeout=30)
    assert fresh.status_code == 200, fresh.text


# -- DNS content ------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "content"), [
    ("TXT", "v=spf1 -all\nevil 60 IN A 203.0.113.9"), ("TXT", "a\rb"), ("TXT", "nul\x00"),
    ("CAA", '0 issue "letsencrypt.org"\nx IN CAA 0 issue "evil.example"'),
])
def test_line_breaks_in_dns_content_are_refused(kind: str, content: str) -> None:
    with pytest.raises(BadUserInput) as refused:
        dns_record(kind, "@", content, None, None)
    assert refused.value.details == {"field": "content"}
    with pytest.raises(BadUserInput):
        dns_record("TXT", "@", "", None, None, txt_strings=["ok", "bad\nline"])
    assert dns_record(kind, "@", content.split("\n")[0].split("\r")[0].replace("\x00", "x"),
                      None, None) == kind


# -- the overall request deadline ---------------------------------------------------------------

def test_request_deadline_returns_partial_data(background: BackgroundServers,
                                               tmp_path: Path) -> None:
    fast, slow = CatalystSim(servers=3), CatalystSim(servers=2)
    slow.knobs.latency_ms = 3000  # each call; its own timeout (10 s) would wait for them
    entries = [serve_sim(background, "dl-fast", fast, "catalyst", {"api_key": fast.api_key}),
               serve_sim(background, "dl-slow", slow, "catalyst", {"api_key": slow.api_key})]
    entries[1] = entries[1].model_copy(update={"timeout_seconds": 10.0})
    gw = start_gateway(background, "gw-deadline", {"dl-fast": fast, "dl-slow": slow}, entries,
                       tmp_path / "d.db", request_timeout_seconds=1.0)
    body = gw.query("{ servers(first: 50) { totalCount edges { node { name } } } }")
    assert body["data"]["servers"]["totalCount"] == 3, body
    errors = body["errors"]
    assert [(e["extensions"]["code"], e["extensions"]["provider"]) for e in errors] == [
        ("PROVIDER_UNAVAILABLE", "dl-slow")]

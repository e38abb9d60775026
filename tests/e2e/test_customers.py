"""Customer links across kinds: one billing customer's invoices, servers and zones at once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from panelql.application.ids import encode
from panelql.domain.records import Ref, ResourceType
from panelql_sim.catalyst import CatalystSim
from panelql_sim.demo import start_panels
from panelql_sim.paypal import PayPalSim
from panelql_sim.runner import BackgroundServers
from panelql_sim.stripe import StripeSim
from tests.e2e.harness import GatewayUnderTest, start_gateway

LINK = """mutation($c: String!, $r: ID, $p: String, $b: String) {
  linkCustomer(customerRef: $c, resource: $r, provider: $p, billingCustomer: $b) {
    changed link { resourceType resourceId } } }"""
INVOICES = """query($c: String!) {
  invoices(first: 1000, filter: {customerRef: $c, status: [OPEN]}) {
    edges { node { status customerId provider { name } } } } }"""


@pytest.fixture(scope="module")
def gw(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[GatewayUnderTest]:
    sims, entries = start_panels(background, transition_seconds=0.5)
    yield start_gateway(background, "gw-customers", dict(sims), entries,
                        tmp_path_factory.mktemp("customers") / "c.db")


def link(gw: GatewayUnderTest, **variables: str) -> dict[str, object]:
    body = gw.query(LINK, {"c": "whmcs:42", **variables})
    assert "errors" not in body, body
    return body["data"]["linkCustomer"]  # type: ignore[no-any-return]


def test_one_customer_across_every_family(gw: GatewayUnderTest) -> None:
    stripe, paypal = gw.sims["stripe"], gw.sims["paypal"]
    catalyst = gw.sims["catalyst-main"]
    assert isinstance(stripe, StripeSim) and isinstance(paypal, PayPalSim)
    assert isinstance(catalyst, CatalystSim)
    stripe_customer = next(i.customer["id"] for i in stripe.invoices.values()
                           if i.status == "open")
    paypal_customer = next(i.recipient for i in paypal.invoices.values()
                           if i.status in ("SENT", "UNPAID"))
    account = next(iter(catalyst.users))
    link(gw, p="stripe", b=stripe_customer)
    link(gw, p="paypal", b=paypal_customer)
    link(gw, r=encode(Ref("catalyst-main", ResourceType.ACCOUNT, account)))
    again = link(gw, r=encode(Ref("catalyst-main", ResourceType.ACCOUNT, account)))
    assert again["changed"] is False
    zone = gw.query('{ dnsZones(first: 1, filter: {provider: ["powerdns"]}) { edges { node { '
                    "id name } } } }")["data"]["dnsZones"]["edges"][0]["node"]
    link(gw, r=zone["id"])

    body = gw.query(INVOICES, {"c": "whmcs:42"})
    assert "errors" not in body, body
    invoices = [e["node"] for e in body["data"]["invoices"]["edges"]]
    assert {i["provider"]["name"] for i in invoices} == {"stripe", "paypal"}
    assert {i["customerId"] for i in invoices} == {stripe_customer, paypal_customer}
    expected_stripe = sum(1 for i in stripe.invoices.values()
                          if i.customer["id"] == stripe_customer and i.status == "open")
    assert sum(i["provider"]["name"] == "stripe" for i in invoices) == expected_stripe

    servers = gw.query('{ servers(filter: {customerRef: "whmcs:42"}) { edges { node { '
                       "owner { upstreamId } } } } }")["data"]["servers"]["edges"]
    assert servers and {s["node"]["owner"]["upstreamId"] for s in servers} == {account}
    zones = gw.query('{ dnsZones(filter: {customerRef: "whmcs:42"}) { edges { node { name } } } }')
    assert [z["node"]["name"] for z in zones["data"]["dnsZones"]["edges"]] == [zone["name"]]

    paypal.knobs.fail_status = 503
    try:
        partial = gw.query(INVOICES, {"c": "whmcs:42"})
    finally:
        paypal.knobs.fail_status = None
    assert [e["extensions"]["provider"] for e in partial["errors"]] == ["paypal"]
    kept = {e["node"]["provider"]["name"] for e in partial["data"]["invoices"]["edges"]}
    assert kept == {"stripe"}


def test_linking_twice_to_different_customers_conflicts(gw: GatewayUnderTest) -> None:
    catalyst = gw.sims["catalyst-main"]
    assert isinstance(catalyst, CatalystSim)
    account = encode(Ref("catalyst-main", ResourceType.ACCOUNT, list(catalyst.users)[1]))
    assert "errors" not in gw.query(LINK, {"c": "whmcs:1", "r": account})
    other = gw.query(LINK, {"c": "whmcs:2", "r": account})
    assert other["errors"][0]["extensions"]["code"] == "CONFLICT"
    missing = gw.query(LINK, {"c": "whmcs:2", "r": encode(Ref("catalyst-main",
                                                               ResourceType.ACCOUNT, "nope"))})
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    bad = gw.query(LINK, {"c": "no spaces allowed", "r": account})
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"



"""Seed 004's DNS extension through GraphQL over real HTTP: the PROXYSRV alias, the nameserver
check before a zone is created (with its admin override), and the default NS and A records.

The nameserver check asks a DNS-over-HTTPS resolver; here that is the simulator's own
``/dns-query`` (``resolver_url``), so nothing leaves the machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from panelql.settings import ProviderEntry
from panelql_sim.ispconfig import PLATFORM_NS, ISPConfigSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, start_gateway

PROXY_IP = "203.0.113.10"
CREATE = """mutation($n: String!, $skip: Boolean! = false) {
  createDnsZone(provider: "isp", name: $n, skipNameserverCheck: $skip) {
    zone { id name nameservers records { type name content } } } }"""
UPSERT = """mutation($z: ID!, $t: String!, $c: String!) {
  upsertDnsRecord(zone: $z, record: {type: $t, name: "shop", content: $c}) {
    recordId zone { records { id type name content } } } }"""


@pytest.fixture(scope="module")
def gw(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[GatewayUnderTest]:
    sim = ISPConfigSim()
    url = background.serve("isp", sim.app()).url
    entry = ProviderEntry(name="isp", kind="ispconfig", base_url=url,
                          credentials={"username": sim.username, "password": sim.password},
                          options={"resolver_url": f"{url}/dns-query", "proxy_ip": PROXY_IP})
    yield start_gateway(background, "gw-isp", {"isp": sim}, [entry],
                        tmp_path_factory.mktemp("isp") / "isp.db")


def sim_of(gw: GatewayUnderTest) -> ISPConfigSim:
    sim = gw.sims["isp"]
    assert isinstance(sim, ISPConfigSim)
    return sim


def created(gw: GatewayUnderTest, name: str, **headers: str) -> dict[str, Any]:
    body = gw.query(CREATE, {"n": name}, **headers)
    assert "errors" not in body, body
    zone: dict[str, Any] = body["data"]["createDnsZone"]["zone"]
    return zone


def test_a_zone_gets_the_default_ns_and_a_records(gw: GatewayUnderTest) -> None:
    sim = sim_of(gw)
    sim.delegations["shop-one.example"] = list(PLATFORM_NS)
    zone = created(gw, "shop-one.example")
    assert sorted(zone["nameservers"]) == sorted(PLATFORM_NS)
    records = {(r["type"], r["name"], r["content"]) for r in zone["records"]}
    assert records == {("NS", "shop-one.example", "ns1.nodepoint.eu"),
                       ("NS", "shop-one.example", "ns2.nodepoint.eu"),
                       ("A", "shop-one.example", PROXY_IP)}
    # and they are in ISPConfig, not only in the answer
    read = gw.query("query($z: ID!) { dnsZone(id: $z) { records { type name content } } }",
                    {"z": zone["id"]})["data"]["dnsZone"]["records"]
    assert {(r["type"], r["name"], r["content"]) for r in read} == records


def test_proxysrv_stands_for_the_proxy_address(gw: GatewayUnderTest) -> None:
    """Issue #14: validation rejected PROXYSRV as an IPv4 address before the adapter saw it."""
    sim_of(gw).delegations["shop-two.example"] = list(PLATFORM_NS)
    zone = created(gw, "shop-two.example")
    body = gw.query(UPSERT, {"z": zone["id"], "t": "A", "c": "PROXYSRV"})
    assert "errors" not in body, body
    shop = [r for r in body["data"]["upsertDnsRecord"]["zone"]["records"]
            if r["name"] == "shop.shop-two.example"]
    assert [(r["type"], r["content"]) for r in shop] == [("A", PROXY_IP)]
    again = gw.query(UPSERT, {"z": zone["id"], "t": "A", "c": "proxysrv"})  # any case
    assert again["data"]["upsertDnsRecord"]["recordId"] == shop[0]["id"]  # same record
    no_v6 = gw.query(UPSERT, {"z": zone["id"], "t": "AAAA", "c": "PROXYSRV"})
    assert no_v6["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "not configured for AAAA" in no_v6["errors"][0]["message"]
    wrong = gw.query(UPSERT, {"z": zone["id"], "t": "A", "c": "PROXYSRV2"})
    assert wrong["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "content"}


@pytest.mark.parametrize(("domain", "delegated"), [
    ("elsewhere.example", ["ns1.otherhost.net", "ns2.otherhost.net"]),
    ("half.example", ["ns1.nodepoint.eu", "ns9.otherhost.net"]),
    ("unregistered.example", None),  # NXDOMAIN
])
def test_a_zone_is_refused_when_the_domain_uses_other_nameservers(
        gw: GatewayUnderTest, domain: str, delegated: list[str] | None) -> None:
    sim = sim_of(gw)
    if delegated is not None:
        sim.delegations[domain] = delegated
    zones_before = len(sim.zones)
    refused = gw.query(CREATE, {"n": domain})
    assert refused["data"] is None
    (error,) = refused["errors"]
    assert error["extensions"] == {
        "code": "CONFLICT", "reason": "NAMESERVERS_MISMATCH", "field": "name",
        "expected": list(PLATFORM_NS), "found": delegated or [],
        "missing": [ns for ns in PLATFORM_NS if ns not in (delegated or [])]}
    assert domain in error["message"]
    assert len(sim.zones) == zones_before  # nothing created


def test_an_admin_can_skip_the_check_and_nobody_else(gw: GatewayUnderTest) -> None:
    sim = sim_of(gw)
    sim.delegations["moving.example"] = ["ns1.otherhost.net"]
    writer = gw.create_key(["dns.write", "dns.read"], name="dns-writer")
    denied = gw.query(CREATE, {"n": "moving.example", "skip": True}, **{"x-api-key": writer})
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    customer = gw.create_key(["admin"], name="cust", customer_ref="whmcs:7")
    bound = gw.query(CREATE, {"n": "moving.example", "skip": True}, **{"x-api-key": customer})
    assert bound["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "moving.example." not in {z["origin"] for z in sim.zones.values()}
    zone = gw.query(CREATE, {"n": "moving.example", "skip": True})
    assert "errors" not in zone, zone
    assert zone["data"]["createDnsZone"]["zone"]["name"] == "moving.example"


def test_a_resolver_that_cannot_answer_blocks_nothing_silently(gw: GatewayUnderTest) -> None:
    sim = sim_of(gw)
    sim.delegations["flaky.example"] = list(PLATFORM_NS)
    sim.resolver_status = 2  # SERVFAIL
    try:
        body = gw.query(CREATE, {"n": "flaky.example"})
    finally:
        sim.resolver_status = None
    assert body["errors"][0]["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
    assert "flaky.example." not in {z["origin"] for z in sim.zones.values()}
    assert created(gw, "flaky.example")["name"] == "flaky.example"  # once it answers

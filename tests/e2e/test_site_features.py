"""ProxmoxWP site features through real HTTP: domains with their quota, the proxy, backups
"2/3", plan changes, and a customer-bound key kept to its own site."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from panelql.application.ids import encode
from panelql.domain.records import Ref, ResourceType
from panelql_sim.catalyst import CatalystSim
from panelql_sim.proxmoxwp import ProxmoxWPSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, serve_sim, start_gateway

WP, CAT = "wp-sites", "cat-sites"
SITE = """query($id: ID!) { server(id: $id) { name site { plan domains proxyEnabled
  domainQuota { used allowed remaining display } backupQuota { used allowed display } } } }"""
ADD = """mutation($s: ID!, $d: String!, $k: String) { addSiteDomain(server: $s, domain: $d,
  idempotencyKey: $k) { changed replayed server { site { domains domainQuota { display } } } } }"""
REMOVE = """mutation($s: ID!, $d: String!) { removeSiteDomain(server: $s, domain: $d) {
  changed server { site { domains } } } }"""
PROXY = """mutation($s: ID!, $on: Boolean!) { setSiteProxy(server: $s, enabled: $on) {
  changed server { site { proxyEnabled } } } }"""
PLAN = """mutation($id: ID!, $p: String!) { changeServerPlan(id: $id, plan: $p) {
  changed server { resources { memoryMb } site { plan domainQuota { display } } } } }"""
BACKUP = """mutation($s: ID!) { createBackup(server: $s) { server { site { backupQuota {
  display } } } } }"""


@pytest.fixture(scope="module")
def env(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[tuple[GatewayUnderTest, ProxmoxWPSim, str]]:
    wp, cat = ProxmoxWPSim(), CatalystSim()
    wp.knobs.transition_seconds = cat.knobs.transition_seconds = 0.2
    entries = [serve_sim(background, WP, wp, "proxmoxwp", {"api_key": wp.api_key},
                         options={"public_ip": wp.public_ip}),
               serve_sim(background, CAT, cat, "catalyst", {"api_key": cat.api_key})]
    gw = start_gateway(background, "gw-sites", {WP: wp, CAT: cat}, entries,
                       tmp_path_factory.mktemp("sites") / "s.db")
    link = gw.query('mutation($r: ID!) { linkCustomer(customerRef: "whmcs:7", resource: $r) '
                    "{ changed } }", {"r": site_id("10002")})
    assert "errors" not in link, link
    key = gw.create_key(["server.view", "dns.write", "server.update", "backup.create"],
                        name="customer-7", customer_ref="whmcs:7")
    yield gw, wp, key


def site_id(service_id: str) -> str:
    return encode(Ref(WP, ResourceType.SERVER, service_id))


def as_customer(env: tuple[GatewayUnderTest, ProxmoxWPSim, str], query: str,
                variables: dict[str, Any]) -> dict[str, Any]:
    gw, _, key = env
    return gw.query(query, variables, **{"x-api-key": key})


def code(body: dict[str, Any]) -> str:
    assert body.get("errors"), body
    return str(body["errors"][0]["extensions"]["code"])


def test_site_fields_show_domains_proxy_and_quotas(env: Any) -> None:
    gw, wp, _ = env
    body = gw.query(SITE, {"id": site_id("10002")})
    assert "errors" not in body, body
    site = body["data"]["server"]["site"]
    raw = wp.sites["10002"]
    assert site["plan"] == raw.plan == "standard"
    assert site["domains"] == raw.domains
    assert site["domainQuota"] == {"used": len(raw.domains), "allowed": 5,
                                   "remaining": 5 - len(raw.domains),
                                   "display": f"{len(raw.domains)}/5"}
    assert site["backupQuota"]["display"] == raw.backup_quota()
    assert site["proxyEnabled"] is raw.proxy_enabled
    # Other kinds have no site; the listing stays one call for every site.
    gw.reset_counts()
    listed = gw.query("{ servers(first: 100) { edges { node { provider { name } "
                      "site { backupQuota { display } } } } } }")
    assert "errors" not in listed, listed
    nodes = [e["node"] for e in listed["data"]["servers"]["edges"]]
    assert all((n["site"] is None) == (n["provider"]["name"] == CAT) for n in nodes)
    assert wp.stats["GET /sites"] == 1 and wp.total_requests == 1


def test_customer_adds_domains_until_the_quota_says_no(env: Any) -> None:
    _, wp, _ = env
    site = wp.sites["10002"]
    sid = site_id("10002")
    # The backend's DNS check fails: its own message, on the domain field, nothing added.
    refused = as_customer(env, ADD, {"s": sid, "d": "shop.invalid"})
    assert code(refused) == "BAD_USER_INPUT"
    assert refused["errors"][0]["message"] == f"Domain does not point to {site.public_ip}"
    assert refused["errors"][0]["extensions"]["field"] == "domain"
    assert "shop.invalid" not in site.domains
    assert code(as_customer(env, ADD, {"s": sid, "d": "not a domain"})) == "BAD_USER_INPUT"

    first = as_customer(env, ADD, {"s": sid, "d": "Shop-1.example", "k": "add-1"})
    assert "errors" not in first, first
    assert "shop-1.example" in site.domains
    calls = wp.stats["POST /action/setdomain"]
    again = as_customer(env, ADD, {"s": sid, "d": "Shop-1.example", "k": "add-1"})
    assert again["data"]["addSiteDomain"]["replayed"] is True
    assert wp.stats["POST /action/setdomain"] == calls  # the retry never reached the backend
    n = 2
    while len(site.domains) < 5:
        body = as_customer(env, ADD, {"s": sid, "d": f"shop-{n}.example"})
        assert "errors" not in body, body
        n += 1
    assert body["data"]["addSiteDomain"]["server"]["site"]["domainQuota"]["display"] == "5/5"
    calls = wp.stats["POST /action/setdomain"]
    full = as_customer(env, ADD, {"s": sid, "d": "one-more.example"})
    assert code(full) == "CONFLICT"
    assert full["errors"][0]["extensions"]["reason"] == "QUOTA_EXCEEDED"
    assert full["errors"][0]["extensions"]["quota"] == "5/5"
    assert wp.stats["POST /action/setdomain"] == calls  # refused before the backend

    removed = as_customer(env, REMOVE, {"s": sid, "d": "shop-2.example"})
    assert removed["data"]["removeSiteDomain"]["changed"] is True
    assert "shop-2.example" not in site.domains
    gone = as_customer(env, REMOVE, {"s": sid, "d": "shop-2.example"})
    assert gone["data"]["removeSiteDomain"]["changed"] is False


def test_customer_toggles_the_proxy_and_takes_a_backup_within_quota(env: Any) -> None:
    _, wp, _ = env
    site = wp.sites["10002"]
    sid = site_id("10002")
    off = as_customer(env, PROXY, {"s": sid, "on": False})
    assert off["data"]["setSiteProxy"] == {"changed": True,
                                           "server": {"site": {"proxyEnabled": False}}}
    assert site.proxy_enabled is False
    toggles = wp.stats["POST /action/toggle"]
    still = as_customer(env, PROXY, {"s": sid, "on": False})
    assert still["data"]["setSiteProxy"]["changed"] is False
    assert wp.stats["POST /action/toggle"] == toggles
    assert as_customer(env, PROXY, {"s": sid, "on": True})["data"]["setSiteProxy"]["server"] \
        == {"site": {"proxyEnabled": True}}

    del site.backups[2:]
    body = as_customer(env, SITE, {"id": sid})
    assert body["data"]["server"]["site"]["backupQuota"]["display"] == "2/3"
    taken = as_customer(env, BACKUP, {"s": sid})
    assert "errors" not in taken, taken
    assert taken["data"]["createBackup"]["server"]["site"]["backupQuota"]["display"] == "3/3"
    over = as_customer(env, BACKUP, {"s": sid})
    assert code(over) == "CONFLICT" and over["errors"][0]["message"] == "Backup limit exceeded"


def test_customer_key_reaches_only_its_own_site(env: Any) -> None:
    _, wp, _ = env
    other = wp.sites["10001"]
    before = (list(other.domains), other.proxy_enabled, other.plan)
    writes = sum(c for r, c in wp.stats.items() if r.startswith("POST"))
    for query, variables in ((SITE, {"id": site_id("10001")}),
                             (ADD, {"s": site_id("10001"), "d": "stolen.example"}),
                             (REMOVE, {"s": site_id("10001"), "d": "x.example"}),
                             (PROXY, {"s": site_id("10001"), "on": not other.proxy_enabled})):
        assert code(as_customer(env, query, variables)) == "NOT_FOUND"
    listed = as_customer(env, "{ servers { edges { node { upstreamId } } } }", {})
    assert [e["node"]["upstreamId"] for e in listed["data"]["servers"]["edges"]] == ["10002"]
    gw, _, _ = env
    weak = gw.create_key(["server.view"], name="customer-7-read", customer_ref="whmcs:7")
    for query, variables in ((ADD, {"s": site_id("10002"), "d": "weak.example"}),
                             (PROXY, {"s": site_id("10002"), "on": False}),
                             (PLAN, {"id": site_id("10002"), "p": "premium"})):
        assert code(gw.query(query, variables, **{"x-api-key": weak})) == "FORBIDDEN"
    # Plans are the billing system's to sell: not even the customer's own site.
    assert code(as_customer(env, PLAN, {"id": site_id("10002"), "p": "premium"})) == "FORBIDDEN"
    assert (list(other.domains), other.proxy_enabled, other.plan) == before
    assert sum(c for r, c in wp.stats.items() if r.startswith("POST")) == writes


def test_admin_changes_plan_by_name(env: Any) -> None:
    gw, wp, _ = env
    sid = site_id("10004")  # running, basic
    assert wp.sites["10004"].plan == "basic"
    body = gw.query(PLAN, {"id": sid, "p": "Premium"})
    assert "errors" not in body, body
    result = body["data"]["changeServerPlan"]
    assert result["changed"] is True and wp.sites["10004"].plan == "premium"
    assert result["server"]["resources"]["memoryMb"] == 8192
    assert result["server"]["site"]["plan"] == "premium"
    assert result["server"]["site"]["domainQuota"]["display"].endswith("/10")
    same = gw.query(PLAN, {"id": sid, "p": "premium"})
    assert same["data"]["changeServerPlan"]["changed"] is False
    unknown = gw.query(PLAN, {"id": sid, "p": "gold"})
    assert code(unknown) == "BAD_USER_INPUT"
    assert unknown["errors"][0]["extensions"]["field"] == "plan"
    cat = gw.query('{ servers(first: 1, filter: {provider: ["cat-sites"]}) '
                   "{ edges { node { id } } } }")["data"]["servers"]["edges"][0]["node"]["id"]
    assert code(gw.query(PLAN, {"id": cat, "p": "premium"})) == "NOT_SUPPORTED"
    assert code(gw.query(ADD, {"s": cat, "d": "a.example"})) == "NOT_SUPPORTED"

"""DNS writes and invoice actions through GraphQL, against every DNS and billing simulator."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from panelql_sim.demo import start_panels
from panelql_sim.ispconfig import PLATFORM_NS, ISPConfigSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, start_gateway


@pytest.fixture(scope="module")
def gw(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[GatewayUnderTest]:
    sims, entries = start_panels(background, transition_seconds=0.2)
    yield start_gateway(background, "gw-actions", dict(sims), entries,
                        tmp_path_factory.mktemp("actions") / "a.db")


def ok(body: dict[str, object]) -> dict[str, object]:
    assert "errors" not in body, body
    data = body["data"]
    assert isinstance(data, dict)
    (payload,) = data.values()
    return payload  # type: ignore[no-any-return]


@pytest.mark.parametrize("provider", ["powerdns", "cloudflare", "ispconfig-dns"])
def test_zone_and_record_lifecycle(gw: GatewayUnderTest, provider: str) -> None:
    name = f"shop-{provider.split('-')[0]}.example"
    if provider == "ispconfig-dns":  # ISPConfig checks the delegation first (seed 004)
        sim = gw.sims[provider]
        assert isinstance(sim, ISPConfigSim)
        sim.delegations[name] = list(PLATFORM_NS)
    zone = ok(gw.query("mutation($p: String!, $n: String!) { createDnsZone(provider: $p, "
                       "name: $n) { zone { id name } } }", {"p": provider, "n": name}))["zone"]
    assert isinstance(zone, dict) and zone["name"] == name
    bad = gw.query('mutation($z: ID!) { upsertDnsRecord(zone: $z, record: {type: "A", '
                   'name: "www", content: "999.1.1.1"}) { recordId } }', {"z": zone["id"]})
    assert bad["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "content"}
    no_priority = gw.query('mutation($z: ID!) { upsertDnsRecord(zone: $z, record: {type: "MX", '
                           'name: "@", content: "mail.example.net"}) { recordId } }',
                           {"z": zone["id"]})
    assert no_priority["errors"][0]["extensions"]["field"] == "priority"
    written = ok(gw.query('mutation($z: ID!) { upsertDnsRecord(zone: $z, record: {type: "A", '
                          'name: "www", content: "192.0.2.10", ttl: 300}) { recordId zone { '
                          "records { id type name content } } } }", {"z": zone["id"]}))
    records = written["zone"]["records"]  # type: ignore[index]
    www = [r for r in records if r["type"] == "A" and r["content"] == "192.0.2.10"]
    assert len(www) == 1 and www[0]["name"].startswith("www")
    ok(gw.query("mutation($z: ID!, $r: String!) { deleteDnsRecord(zone: $z, recordId: $r) { "
                "recordId } }", {"z": zone["id"], "r": written["recordId"]}))
    ok(gw.query("mutation($z: ID!) { deleteDnsZone(id: $z) { deletedId } }", {"z": zone["id"]}))
    gone = gw.query("query($z: ID!) { dnsZone(id: $z) { name } }", {"z": zone["id"]})
    assert gone["errors"][0]["extensions"]["code"] == "NOT_FOUND"


UPSERT = ("mutation($z: ID!, $r: DnsRecordWriteInput!) { upsertDnsRecord(zone: $z, record: $r) "
          "{ recordId zone { records { id type name content ttl disabled txtStrings } } } }")


def _zone(gw: GatewayUnderTest, provider: str, name: str) -> str:
    if provider == "ispconfig-dns":  # ISPConfig checks the delegation first (seed 004)
        sim = gw.sims[provider]
        assert isinstance(sim, ISPConfigSim)
        sim.delegations[name] = list(PLATFORM_NS)
    zone = ok(gw.query("mutation($p: String!, $n: String!) { createDnsZone(provider: $p, "
                       "name: $n) { zone { id } } }", {"p": provider, "n": name}))["zone"]
    assert isinstance(zone, dict)
    return str(zone["id"])


def test_txt_strings_and_disabled_through_graphql(gw: GatewayUnderTest) -> None:
    zone = _zone(gw, "powerdns", "dkim-graphql.example")
    written = ok(gw.query(UPSERT, {"z": zone, "r": {
        "type": "TXT", "name": "sel._domainkey", "txtStrings": ["v=DKIM1; p=abc", "def"],
        "ttl": 300}}))
    [dkim] = [r for r in written["zone"]["records"]  # type: ignore[index]
              if r["id"] == written["recordId"]]
    assert dkim == {"id": written["recordId"], "type": "TXT",
                    "name": "sel._domainkey.dkim-graphql.example", "content": "v=DKIM1; p=abcdef",
                    "ttl": 300, "disabled": False, "txtStrings": ["v=DKIM1; p=abc", "def"]}
    # Writing back what was read, with a new TTL, keeps the two strings.
    again = ok(gw.query(UPSERT, {"z": zone, "r": {
        "id": dkim["id"], "type": "TXT", "name": "sel._domainkey", "content": dkim["content"],
        "ttl": 900}}))
    [after] = [r for r in again["zone"]["records"]  # type: ignore[index]
               if r["type"] == "TXT" and r["name"].startswith("sel.")]
    assert (after["ttl"], after["txtStrings"]) == (900, ["v=DKIM1; p=abc", "def"])
    bad = gw.query(UPSERT, {"z": zone, "r": {"type": "TXT", "name": "x", "content": "other",
                                             "txtStrings": ["a", "b"]}})
    assert bad["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "content"}
    too_long = gw.query(UPSERT, {"z": zone, "r": {"type": "TXT", "name": "x",
                                                  "txtStrings": ["a" * 256]}})
    assert too_long["errors"][0]["extensions"]["field"] == "txtStrings"
    missing = gw.query(UPSERT, {"z": zone, "r": {"type": "A", "name": "x"}})
    assert missing["errors"][0]["extensions"]["field"] == "content"


def test_a_name_outside_the_zone_is_bad_user_input(gw: GatewayUnderTest) -> None:
    zone = _zone(gw, "powerdns", "inside.example")
    body = gw.query(UPSERT, {"z": zone, "r": {"type": "A", "name": "host.other.example.",
                                              "content": "192.0.2.1"}})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "not inside the zone" in body["errors"][0]["message"]


@pytest.mark.parametrize(("provider", "ttl", "accepted"), [
    ("cloudflare", 604800, False), ("cloudflare", 30, False), ("cloudflare", 1, True),
    ("cloudflare", 86400, True), ("powerdns", 604800, True), ("powerdns", 0, True),
    ("ispconfig-dns", 30, False),
])
def test_ttl_limits_are_the_providers_own(gw: GatewayUnderTest, provider: str, ttl: int,
                                           accepted: bool) -> None:
    zone = _zone(gw, provider, f"ttl{ttl}-{provider.split('-')[0]}.example")
    body = gw.query(UPSERT, {"z": zone, "r": {"type": "A", "name": "www",
                                              "content": "192.0.2.1", "ttl": ttl}})
    if accepted:
        ok(body)
    else:
        assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "ttl"}


def test_ten_concurrent_upserts_through_graphql_all_remain(gw: GatewayUnderTest) -> None:
    zone = _zone(gw, "powerdns", "busy-graphql.example")
    wanted = {f"198.51.100.{i}" for i in range(10)}
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda ip: gw.query(UPSERT, {"z": zone, "r": {
            "type": "A", "name": "www", "content": ip}}), sorted(wanted)))
    assert all("errors" not in a for a in answers), answers
    body = gw.query("query($z: ID!) { dnsZone(id: $z) { records { type name content } } }",
                    {"z": zone})
    assert {r["content"] for r in body["data"]["dnsZone"]["records"]
            if r["type"] == "A" and r["name"].startswith("www.")} == wanted


@pytest.mark.parametrize("provider", ["stripe", "paypal"])
def test_invoice_lifecycle(gw: GatewayUnderTest, provider: str) -> None:
    drafts = gw.query('query($p: [String!]) { invoices(first: 1000, filter: {provider: $p, '
                      "status: [DRAFT]}) { edges { node { id rawStatus } } } }", {"p": [provider]})
    invoice = next(e["node"]["id"] for e in drafts["data"]["invoices"]["edges"]
                   if e["node"]["rawStatus"].lower() == "draft")  # not PayPal's SCHEDULED
    finalized = ok(gw.query("mutation($i: ID!) { finalizeInvoice(id: $i) { invoice { status } "
                            "} }", {"i": invoice}))
    assert finalized["invoice"] == {"status": "OPEN"}
    again = gw.query("mutation($i: ID!) { finalizeInvoice(id: $i) { replayed } }", {"i": invoice})
    assert again["errors"][0]["extensions"] == {"code": "CONFLICT", "currentStatus": "OPEN"}
    voided = ok(gw.query("mutation($i: ID!) { voidInvoice(id: $i) { invoice { status } } }",
                         {"i": invoice}))
    assert voided["invoice"] == {"status": "VOID"}
    pay_void = gw.query("mutation($i: ID!) { payInvoice(id: $i) { replayed } }", {"i": invoice})
    assert pay_void["errors"][0]["extensions"]["code"] == "CONFLICT"


def test_nameserver_check_on_ispconfig_zones(gw: GatewayUnderTest) -> None:
    body = gw.query('{ dnsZones(filter: {provider: ["ispconfig-dns"]}) { edges { node { name '
                    "nameserverCheck { expected found missing ok } } } } }")
    assert "errors" not in body, body
    checks = [e["node"]["nameserverCheck"] for e in body["data"]["dnsZones"]["edges"]]
    assert checks and all(c["expected"] for c in checks)
    assert {c["ok"] for c in checks} == {True, False}  # the demo delegates some zones elsewhere
    for check in checks:
        assert check["ok"] == (not check["missing"])
        assert set(check["missing"]) == set(check["expected"]) - set(check["found"])
    other = gw.query('{ dnsZones(first: 1, filter: {provider: ["powerdns"]}) { edges { node { '
                     "nameserverCheck { ok } } } } }")
    assert other["errors"][0]["extensions"]["code"] == "NOT_SUPPORTED"


@pytest.mark.parametrize(("provider", "sends_ids"), [
    ("stripe", True), ("paypal", True), ("cloudflare", True), ("powerdns", False)])
def test_audit_keeps_the_upstreams_request_id(gw: GatewayUnderTest, provider: str,
                                              sends_ids: bool) -> None:
    """Stripe, PayPal and Cloudflare answer with their own request ids (Request-Id,
    Paypal-Debug-Id, CF-Ray); the audit entry keeps the last one, for the panel's support.
    PowerDNS sends none: null, not an invented id."""
    if provider in ("stripe", "paypal"):
        drafts = gw.query('query($p: [String!]) { invoices(first: 1000, filter: {provider: $p, '
                          "status: [DRAFT]}) { edges { node { id rawStatus } } } }",
                          {"p": [provider]})
        target = next(e["node"]["id"] for e in drafts["data"]["invoices"]["edges"]
                      if e["node"]["rawStatus"].lower() == "draft")
        ok(gw.query("mutation($i: ID!) { finalizeInvoice(id: $i) { replayed } }",
                    {"i": target}))
        action = "finalizeInvoice"
    else:
        name = f"audit-{provider}.example"
        zone = ok(gw.query("mutation($p: String!, $n: String!) { createDnsZone(provider: $p, "
                           "name: $n) { zone { id } } }", {"p": provider, "n": name}))
        target = zone["zone"]["id"]  # type: ignore[index]
        action = "createDnsZone"
    entries = gw.query("{ auditLog(first: 200) { action target upstreamRequestId } }")
    entry = next(e for e in entries["data"]["auditLog"]
                 if e["action"] == action and e["target"] == target)
    upstream = entry["upstreamRequestId"]
    assert (upstream is not None) is sends_ids, entry
    if sends_ids:
        assert len(upstream) >= 8 and " " not in upstream.split(" (+")[0], upstream

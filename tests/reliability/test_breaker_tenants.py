"""One customer's own mistakes cannot open a panel's circuit breaker for everyone.

DirectAdmin answers a request that was wrong (a domain that does not exist) with HTTP 500 and
its JSON error envelope. Counted as outages (and retried), five concurrent lookups of a missing
zone under the customer's own user opened the DirectAdmin breaker for every tenant for the
whole cool-down. Now those answers are classified by their body: not retried, not counted.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator

import pytest

from panelql.application.ids import encode
from panelql.domain.records import Ref, ResourceType
from panelql_sim.directadmin import DirectAdminSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, gateway_of, serve_sim, start_gateway

CONN = "da-tenants"
ZONE = "query($id: ID!) { dnsZone(id: $id) { id name } }"
ACCOUNTS = "{ accounts(first: 5) { totalCount } }"


@pytest.fixture(scope="module")
def setup(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[GatewayUnderTest, DirectAdminSim, str]]:
    sim = DirectAdminSim(users=3, json_error_status=500)
    entry = serve_sim(background, CONN, sim, "directadmin",
                      {"username": sim.username, "password": sim.password})
    gw = start_gateway(background, "gw-da-tenants", {CONN: sim}, [entry],
                       tmp_path_factory.mktemp("dat") / "d.db",
                       resilience={"retries": 2, "backoff_base_seconds": 0.01,
                                   "breaker_threshold": 2, "breaker_cooldown_seconds": 30,
                                   "max_concurrency": 16})
    user = sorted(sim.users)[0]
    body = gw.query("mutation($r: ID!) { linkCustomer(customerRef: \"whmcs:7\", resource: $r)"
                    " { changed } }", {"r": encode(Ref(CONN, ResourceType.ACCOUNT, user))})
    assert body["data"]["linkCustomer"]["changed"] is True, body
    yield gw, sim, encode(Ref(CONN, ResourceType.DNS_ZONE, f"{user}/no-such-domain.test"))


def test_missing_zone_sweep_leaves_the_breaker_closed(
        setup: tuple[GatewayUnderTest, DirectAdminSim, str]) -> None:
    gw, sim, missing = setup
    key = gw.create_key(["server.view"], name="da-sweeper", customer_ref="whmcs:7")
    sim.reset_stats()
    with concurrent.futures.ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(lambda _: gw.query(ZONE, {"id": missing}, **{"x-api-key": key}),
                                range(5)))
    for body in answers:
        assert body["data"] is None, body  # dnsZone is non-null: the error nulls the root
        assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"], body
    # Each lookup asked once: a DirectAdmin application error is not retried.
    assert sim.total_requests == 5, sim.stats
    assert gateway_of(gw).breaker_states()[CONN] == "closed"
    other_tenant = gw.query(ACCOUNTS)  # the admin, i.e. everyone else, still gets through
    assert "errors" not in other_tenant, other_tenant


def test_a_real_outage_still_opens_it(
        setup: tuple[GatewayUnderTest, DirectAdminSim, str]) -> None:
    """A 502 from the proxy in front of the panel is an outage: two open the breaker."""
    gw, sim, _ = setup
    sim.knobs.fail_status = 502
    try:
        for _ in range(2):
            gw.query(ACCOUNTS)
        assert gateway_of(gw).breaker_states()[CONN] == "open"
        failing_fast = gw.query(ACCOUNTS)
        assert "circuit open" in failing_fast["errors"][0]["message"]
    finally:
        sim.knobs.fail_status = None


@pytest.mark.parametrize(("status", "body", "outage"), [
    (500, b'{"error": "Cannot Execute Your Request", "result": "domain does not exist"}', False),
    (500, b"<html><body><h1>500 Internal Server Error</h1></body></html>", True),
    (500, b"", True),
    (503, b'{"error": "busy"}', True),
    (404, b'{"error": "x"}', False),
])
def test_directadmin_outage_is_read_from_the_body(status: int, body: bytes,
                                                  outage: bool) -> None:
    import httpx

    from panelql.providers.directadmin.client import is_outage

    response = httpx.Response(status, content=body,
                              request=httpx.Request("GET", "http://da/CMD_API_DNS_CONTROL"))
    assert is_outage(response) is outage

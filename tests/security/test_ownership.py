"""Ownership and scope on every ID argument, not only the target.

- ``resource(id:)`` checks the scope of the type it resolves to (a ``server.view`` key read an
  invoice's number, total, customer and hosted URL through it);
- grant/revoke server access check who owns the ``account`` argument (customer A granted B's
  user console access to A's server, and "User not found" enumerated accounts);
- ``operation(id:)`` is checked against the customer like the server it acts on;
- one owner per resource: ``linkCustomer`` refuses a resource already owned by another
  customer, directly or through an account.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from panelql.application.ids import encode
from panelql.domain.records import Ref, ResourceType
from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers
from panelql_sim.stripe import StripeSim
from tests.e2e.harness import GatewayUnderTest, serve_sim, start_gateway

CAT, STRIPE = "cat-own", "stripe-own"
LINK = """mutation($c: String!, $r: ID) { linkCustomer(customerRef: $c, resource: $r) {
  changed } }"""
GRANT = """mutation($s: ID!, $a: ID!) { grantServerAccess(server: $s, account: $a,
  permissions: ["console.read"]) { replayed } }"""
REVOKE = """mutation($s: ID!, $a: ID!) { revokeServerAccess(server: $s, account: $a) {
  replayed } }"""

ANY_ID = """query($id: ID!) { resource(id: $id) { __typename ... on Invoice { id }
  ... on Server { id } } }"""


@dataclass
class World:
    gw: GatewayUnderTest
    sim: CatalystSim
    accounts: list[str]  # global ids of the Catalyst users, in order
    servers: dict[str, list[str]]  # account global id -> its servers' global ids
    invoice: str
    a_key: str  # whmcs:1 (owns accounts[0]), every server scope
    b_key: str  # whmcs:2 (owns accounts[1])

    def as_(self, key: str, query: str, variables: dict[str, Any] | None = None
            ) -> dict[str, Any]:
        return self.gw.query(query, variables, **{"x-api-key": key})


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors") or []]


@pytest.fixture(scope="module")
def world(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    sim = CatalystSim(servers=8, users=4, nodes=2)
    sim.knobs.transition_seconds = 0.05
    stripe = StripeSim(customers=2, invoices=4)
    entries = [serve_sim(background, CAT, sim, "catalyst", {"api_key": sim.api_key}),
               serve_sim(background, STRIPE, stripe, "stripe",
                         {"api_key": stripe.api_key, "webhook_secret": stripe.webhook_secret})]
    gw = start_gateway(background, "gw-own", {CAT: sim, STRIPE: stripe}, entries,
                       tmp_path_factory.mktemp("own") / "o.db", operation_poll_seconds=0.05)
    users = list(sim.users)
    accounts = [encode(Ref(CAT, ResourceType.ACCOUNT, u)) for u in users]
    servers = {encode(Ref(CAT, ResourceType.ACCOUNT, u)): [
        encode(Ref(CAT, ResourceType.SERVER, s.id)) for s in sim.servers.values()
        if s.owner_id == u] for u in users}
    for customer, account in (("whmcs:1", accounts[0]), ("whmcs:2", accounts[1])):
        assert "errors" not in gw.query(LINK, {"c": customer, "r": account})
    invoice = encode(Ref(STRIPE, ResourceType.INVOICE, next(iter(stripe.invoices))))
    scopes = ["server.view", "server.restart", "server.access"]
    a_key = gw.create_key(scopes, name="own-a", customer_ref="whmcs:1")
    b_key = gw.create_key(scopes, name="own-b", customer_ref="whmcs:2")
    yield World(gw, sim, accounts, servers, invoice, a_key, b_key)


def test_resource_needs_the_scope_of_the_type_it_names(world: World) -> None:
    viewer = world.gw.create_key(["server.view"], name="own-viewer")
    body = world.as_(viewer, "query($id: ID!) { resource(id: $id) { ... on Invoice { number "
                             "total { amount } hostedUrl customerId } } }",
                     {"id": world.invoice})
    assert codes(body) == ["FORBIDDEN"] and body["data"] is None
    assert body["errors"][0]["extensions"]["scope"] == "billing.read"
    billing = world.gw.create_key(["billing.read"], name="own-billing")
    read = world.as_(billing, ANY_ID, {"id": world.invoice})
    assert read["data"]["resource"]["id"] == world.invoice, read
    server = world.servers[world.accounts[0]][0]
    denied = world.as_(billing, ANY_ID, {"id": server})
    assert codes(denied) == ["FORBIDDEN"]
    allowed = world.as_(viewer, ANY_ID, {"id": server})
    assert allowed["data"]["resource"]["id"] == server


@pytest.mark.parametrize("mutation", [GRANT, REVOKE], ids=["grant", "revoke"])
def test_access_mutations_check_who_owns_the_account(world: World, mutation: str) -> None:
    my_server = world.servers[world.accounts[0]][0]
    their_account = world.accounts[1]
    nobody = encode(Ref(CAT, ResourceType.ACCOUNT, "no-such-user"))
    world.sim.reset_stats()
    crossing = world.as_(world.a_key, mutation, {"s": my_server, "a": their_account})
    missing = world.as_(world.a_key, mutation, {"s": my_server, "a": nobody})
    # The same answer for another customer's account and for one that does not exist.
    assert codes(crossing) == codes(missing) == ["NOT_FOUND"]
    assert crossing["errors"][0]["message"] == missing["errors"][0]["message"]
    assert [k for k in world.sim.stats if not k.startswith("GET")] == []  # nothing was sent
    own = world.as_(world.a_key, mutation, {"s": my_server, "a": world.accounts[0]})
    assert "NOT_FOUND" not in codes(own), own  # the own account passes the check


def test_operation_is_checked_against_the_customer(world: World) -> None:
    mine = world.servers[world.accounts[0]]
    started = None
    for server in mine:
        body = world.as_(world.a_key, "mutation($id: ID!) { restartServer(id: $id) { "
                                      "operation { id } } }", {"id": server})
        if not body.get("errors"):
            started = body["data"]["restartServer"]["operation"]["id"]
            break
    assert started is not None, "no server of customer A could restart"
    query = "query($id: ID!) { operation(id: $id) { id action } }"
    assert world.as_(world.a_key, query, {"id": started})["data"]["operation"]["id"] == started
    other = world.as_(world.b_key, query, {"id": started})
    assert codes(other) == ["NOT_FOUND"]
    assert world.gw.query(query, {"id": started})["data"]["operation"]["id"] == started


def test_one_owner_per_resource(world: World) -> None:
    b_server = world.servers[world.accounts[1]][0]
    through_account = world.gw.query(LINK, {"c": "whmcs:1", "r": b_server})
    assert codes(through_account) == ["CONFLICT"]
    assert "whmcs:2" in through_account["errors"][0]["message"]
    assert world.gw.query(LINK, {"c": "whmcs:2", "r": b_server})["data"]["linkCustomer"][
        "changed"] is True  # the owner itself may link it directly
    # An account with a server linked directly to another customer cannot be linked.
    free_account = world.accounts[3]
    server_of_free = world.servers[free_account][0]
    assert "errors" not in world.gw.query(LINK, {"c": "whmcs:9", "r": server_of_free})
    clash = world.gw.query(LINK, {"c": "whmcs:1", "r": free_account})
    assert codes(clash) == ["CONFLICT"] and "whmcs:9" in clash["errors"][0]["message"]
    # Nobody sees the resource as theirs twice: customer A's lists hold no server of B.
    listed = world.as_(world.a_key, "{ servers { edges { node { id } } } }")
    ids = {e["node"]["id"] for e in listed["data"]["servers"]["edges"]}
    assert ids.isdisjoint(world.servers[world.accounts[1]])

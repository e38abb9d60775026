"""Customer-bound keys cannot see or touch another customer's resources, through any root
field. Every root field of the schema must appear in one of the tables below."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from panelql.application.auth import REQUIRED
from panelql.application.ids import encode
from panelql.domain.records import Ref, ResourceType
from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, serve_sim, start_gateway, wait_for_subscribers
from tests.e2e.wsclient import ws_client

CONN = "cat-tenancy"
ALL_BUT_ADMIN = sorted(s for s in {v for table in REQUIRED.values() for v in table.values()}
                       if s and s != "admin")


@dataclass
class World:
    gw: GatewayUnderTest
    sim: CatalystSim
    mine: list[str]  # global ids of servers of customer whmcs:1
    theirs: list[str]  # servers of whmcs:2
    my_account: str
    their_account: str
    key: str  # bound to whmcs:1, every scope but admin

    def as_customer(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.gw.query(query, variables, **{"x-api-key": self.key})


def sid(server_id: str) -> str:
    return encode(Ref(CONN, ResourceType.SERVER, server_id))


def aid(account_id: str) -> str:
    return encode(Ref(CONN, ResourceType.ACCOUNT, account_id))


@pytest.fixture(scope="module")
def world(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    sim = CatalystSim(servers=8, users=4, nodes=2)
    sim.knobs.transition_seconds = 0.1
    entry = serve_sim(background, CONN, sim, "catalyst", {"api_key": sim.api_key})
    gw = start_gateway(background, "gw-tenancy", {CONN: sim}, [entry],
                       tmp_path_factory.mktemp("tenancy") / "t.db", operation_poll_seconds=0.05)
    users = list(sim.users)
    for ref, user in (("whmcs:1", users[0]), ("whmcs:2", users[1])):
        body = gw.query("mutation($c: String!, $r: ID!) { linkCustomer(customerRef: $c, "
                        "resource: $r) { changed } }", {"c": ref, "r": aid(user)})
        assert body["data"]["linkCustomer"]["changed"] is True, body
    mine = [sid(s.id) for s in sim.servers.values() if s.owner_id == users[0]]
    theirs = [sid(s.id) for s in sim.servers.values() if s.owner_id == users[1]]
    key = gw.create_key(ALL_BUT_ADMIN, name="whmcs-1", customer_ref="whmcs:1")
    yield World(gw, sim, mine, theirs, aid(users[0]), aid(users[1]), key)


LISTS = {
    "servers": "{ servers { edges { node { id } } } }",
    "accounts": "{ accounts { edges { node { id } } } }",
    "backups": "{ backups { edges { node { id server { id } } } } }",
    "nodes": "{ nodes { edges { node { id } } } }",
    "invoices": "{ invoices { edges { node { id } } } }",
    "dnsZones": "{ dnsZones { edges { node { id } } } }",
}


@pytest.mark.parametrize("field", sorted(LISTS))
def test_lists_hold_only_own_resources(world: World, field: str) -> None:
    body = world.as_customer(LISTS[field])
    assert "errors" not in body, body
    ids = [e["node"]["id"] for e in body["data"][field]["edges"]]
    if field == "servers":
        assert sorted(ids) == sorted(world.mine)
    elif field == "accounts":
        assert ids == [world.my_account]
    elif field == "backups":
        owners = {e["node"]["server"]["id"] for e in body["data"][field]["edges"]}
        assert owners <= set(world.mine)
    else:
        assert ids == []  # nodes are infrastructure; no billing/DNS links for this customer


def test_filter_for_another_customer_yields_nothing(world: World) -> None:
    body = world.as_customer('{ servers(filter: {customerRef: "whmcs:2"}) { totalCount } }')
    assert body["data"]["servers"]["totalCount"] == 0
    admin = world.gw.query('{ servers(filter: {customerRef: "whmcs:2"}) { totalCount } }')
    assert admin["data"]["servers"]["totalCount"] == len(world.theirs)


LOOKUPS = {
    "server": ("server", "theirs"), "resource": ("resource", "theirs"),
    "account": ("account", "their_account"), "node": ("node", "node"),
    "backup": ("backup", "backup"), "invoice": ("invoice", "invoice"),
    "dnsZone": ("dnsZone", "zone"),
}


def _foreign_id(world: World, what: str) -> str:
    if what == "theirs":
        return world.theirs[0]
    if what == "their_account":
        return world.their_account
    if what == "node":
        return encode(Ref(CONN, ResourceType.NODE, next(iter(world.sim.nodes))))
    if what == "backup":
        server = next(b for b in world.sim.backups.values()
                      if sid(b["serverId"]) in world.theirs)
        return encode(Ref(CONN, ResourceType.BACKUP, f"{server['serverId']}/{server['id']}"))
    if what == "invoice":
        return encode(Ref("stripe-x", ResourceType.INVOICE, "in_1"))
    return encode(Ref("dns-x", ResourceType.DNS_ZONE, "example.com"))


@pytest.mark.parametrize("field", sorted(LOOKUPS))
def test_foreign_ids_are_not_found(world: World, field: str) -> None:
    name, what = LOOKUPS[field]
    body = world.as_customer(f"query($id: ID!) {{ {name}(id: $id) {{ __typename }} }}",
                             {"id": _foreign_id(world, what)})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body
    own = world.as_customer("query($id: ID!) { server(id: $id) { id } }", {"id": world.mine[0]})
    assert own["data"]["server"]["id"] == world.mine[0]


MUTATIONS_ON_SERVER = ["startServer", "stopServer", "restartServer", "killServer",
                       "suspendServer", "unsuspendServer", "reinstallServer", "deleteServer"]


@pytest.mark.parametrize("field", MUTATIONS_ON_SERVER)
def test_mutations_on_foreign_servers_are_not_found(world: World, field: str) -> None:
    calls_before = world.sim.total_requests
    body = world.as_customer(f"mutation($id: ID!) {{ {field}(id: $id) {{ replayed }} }}",
                             {"id": world.theirs[0]})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body
    writes = [k for k in world.sim.stats if k.startswith(("POST", "PUT", "DELETE"))]
    assert world.sim.total_requests - calls_before <= 3 and all(
        world.sim.stats[k] == 0 or "backups" in k for k in writes if field.lower() in k)


OTHER_MUTATIONS = {
    "updateServerResources": 'updateServerResources(id: "{s}", resources: {{memoryMb: 4096}})',
    "createBackup": 'createBackup(server: "{s}")',
    "restoreBackup": 'restoreBackup(id: "{b}")',
    "deleteBackup": 'deleteBackup(id: "{b}")',
    "grantServerAccess": 'grantServerAccess(server: "{s}", account: "{a}", '
                         'permissions: ["server.view"])',
    "revokeServerAccess": 'revokeServerAccess(server: "{s}", account: "{a}")',
    "suspendAccount": 'suspendAccount(id: "{a}")',
    "unsuspendAccount": 'unsuspendAccount(id: "{a}")',
    "changeAccountPackage": 'changeAccountPackage(id: "{a}", package: "gold")',
    "changeAccountPassword": 'changeAccountPassword(id: "{a}", password: "longenough1")',
    "deleteAccount": 'deleteAccount(id: "{a}")',
    "deleteDnsZone": 'deleteDnsZone(id: "{z}")',
    "upsertDnsRecord": 'upsertDnsRecord(zone: "{z}", record: {{type: "A", name: "www", '
                       'content: "192.0.2.1"}})',
    "deleteDnsRecord": 'deleteDnsRecord(zone: "{z}", recordId: "1")',
    "finalizeInvoice": 'finalizeInvoice(id: "{i}")', "payInvoice": 'payInvoice(id: "{i}")',
    "voidInvoice": 'voidInvoice(id: "{i}")', "sendInvoice": 'sendInvoice(id: "{i}")',
}
FORBIDDEN_FOR_CUSTOMERS = {
    "createServer": 'createServer(input: {{provider: "cat-tenancy", name: "x", resources: '
                    '{{memoryMb: 1024}}}})',
    "createAccount": 'createAccount(input: {{provider: "cat-tenancy", username: "abc"}})',
    "createDnsZone": 'createDnsZone(provider: "dns-x", name: "example.org")',
    "linkCustomer": 'linkCustomer(customerRef: "whmcs:1", resource: "{a}")',
    "unlinkCustomer": 'unlinkCustomer(customerRef: "whmcs:2", resource: "{a}")',
    "createApiKey": 'createApiKey(name: "mine", scopes: ["admin"]) {{ key }}',
    "revokeApiKey": 'revokeApiKey(id: "1") {{ id }}',
}


def _fill(world: World, template: str) -> str:
    return template.format(s=world.theirs[0], a=world.their_account,
                           b=_foreign_id(world, "backup"), z=_foreign_id(world, "zone"),
                           i=_foreign_id(world, "invoice"))


@pytest.mark.parametrize("field", sorted(OTHER_MUTATIONS))
def test_other_mutations_on_foreign_targets_fail(world: World, field: str) -> None:
    body = world.as_customer("mutation { " + _fill(world, OTHER_MUTATIONS[field])
                             + " { replayed } }")
    assert body["errors"][0]["extensions"]["code"] in ("NOT_FOUND", "NOT_SUPPORTED"), body


@pytest.mark.parametrize("field", sorted(k for k, v in FORBIDDEN_FOR_CUSTOMERS.items() if v))
def test_installation_wide_mutations_are_forbidden(world: World, field: str) -> None:
    template = FORBIDDEN_FOR_CUSTOMERS[field]
    assert template is not None
    selection = "" if template.endswith("}}") else " { replayed }"
    body = world.as_customer("mutation { " + _fill(world, template) + selection + " }")
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body


def test_installation_wide_queries_are_forbidden(world: World) -> None:
    for query in ("{ auditLog { id } }", "{ placementCandidates { load } }",
                  "{ apiKeys { id } }"):
        body = world.as_customer(query)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body


def test_customer_links_of_others_are_hidden(world: World) -> None:
    body = world.as_customer('{ customerLinks(customerRef: "whmcs:2") { resourceId } }')
    assert body["data"]["customerLinks"] == []
    own = world.as_customer('{ customerLinks(customerRef: "whmcs:1") { resourceId } }')
    assert len(own["data"]["customerLinks"]) == 1


async def test_subscriptions_carry_only_own_events(world: World) -> None:
    gw = world.gw
    mine = next(s for s in world.sim.servers.values()
                if sid(s.id) in world.mine and s.status == "running")
    theirs = next(s for s in world.sim.servers.values()
                  if sid(s.id) in world.theirs and s.status == "running")
    async with ws_client(gw.url) as client:
        assert (await client.init({"x-api-key": world.key}))["type"] == "connection_ack"
        await client.subscribe("subscription { serverStatusChanged { id status } }")
        await wait_for_subscribers(gw, "server", 1)
        for server in (theirs, mine):  # the foreign change first: it must not arrive
            body = await asyncio.to_thread(
                gw.query, "mutation($id: ID!) { stopServer(id: $id) { replayed } }",
                {"id": sid(server.id)})
            assert "errors" not in body, body
        seen = [await client.recv(), await client.recv()]
        assert {m["payload"]["data"]["serverStatusChanged"]["id"] for m in seen} == {sid(mine.id)}


def test_every_root_field_is_covered() -> None:
    covered = (set(LISTS) | set(LOOKUPS) | set(MUTATIONS_ON_SERVER) | set(OTHER_MUTATIONS)
               | set(FORBIDDEN_FOR_CUSTOMERS)
               | {"auditLog", "placementCandidates", "customerLinks", "viewer", "providers",
                  "operation", "apiKeys"}
               | set(REQUIRED["Subscription"]))
    from graphql import GraphQLObjectType

    from panelql.schema.root import build_schema
    graphql_schema = build_schema()._schema
    roots = {t: graphql_schema.get_type(t) for t in ("Query", "Mutation", "Subscription")}
    fields = {(t, f) for t, d in roots.items() if isinstance(d, GraphQLObjectType)
              for f in d.fields}
    assert {f for _, f in fields} - covered == set(), "add the new root field to the matrix"
    assert {(t, f) for t, f in fields if f not in REQUIRED[t]} == set()

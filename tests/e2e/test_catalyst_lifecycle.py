"""The seeds' billing flow for a game server, end to end over real HTTP (seed 000)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from panelql_sim.catalyst import DEFAULT_TEMPLATE, CatalystSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, serve_sim, start_gateway

OPERATION = "query($id: ID!) { operation(id: $id) { status step error { code message } } }"


@pytest.fixture(scope="module")
def gw(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[GatewayUnderTest]:
    sim = CatalystSim(servers=6, nodes=3)
    sim.knobs.transition_seconds = 0.2
    entry = serve_sim(background, "cat-life", sim, "catalyst", {"api_key": sim.api_key},
                      options={"default_template": DEFAULT_TEMPLATE})
    yield start_gateway(background, "gw-life", {"cat-life": sim}, [entry],
                        tmp_path_factory.mktemp("life") / "life.db",
                        operation_poll_seconds=0.05)


def wait_operation(gw: GatewayUnderTest, op_id: str, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        op = gw.query(OPERATION, {"id": op_id})["data"]["operation"]
        if op["status"] in ("SUCCEEDED", "FAILED"):
            return op  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"operation {op_id} did not finish")


def mutate(gw: GatewayUnderTest, text: str, variables: dict[str, Any], **headers: str
           ) -> dict[str, Any]:
    body = gw.query(text, variables, **headers)
    assert "errors" not in body, body
    (payload,) = body["data"].values()
    return payload  # type: ignore[no-any-return]


def status_of(gw: GatewayUnderTest, server_id: str) -> str:
    body = gw.query("query($id: ID!) { server(id: $id) { status } }", {"id": server_id})
    return body["data"]["server"]["status"]  # type: ignore[no-any-return]


CREATE = """mutation($input: CreateServerInput!, $key: String) {
  createServer(input: $input, idempotencyKey: $key) {
    replayed server { id name status node { name } } operation { id status } } }"""


def test_billing_flow_provision_to_termination(gw: GatewayUnderTest) -> None:
    sim = gw.sims["cat-life"]
    assert isinstance(sim, CatalystSim)
    created = mutate(gw, CREATE, {"input": {
        "provider": "cat-life", "name": "Customer Server 12345",
        "resources": {"memoryMb": 4096, "cpuCores": 2, "diskMb": 10240},
        "placement": {"region": "us-east"}, "ports": [25565]}})
    server = created["server"]
    # Installing takes the sim 0.2 s; on a loaded machine the payload may already see it done.
    assert server["status"] in ("INSTALLING", "STOPPED")
    assert server["node"]["name"] == "game-node-1"
    assert sim.stats["POST /api/servers/*/install"] >= 1  # installed after create
    assert wait_operation(gw, created["operation"]["id"])["status"] == "SUCCEEDED"
    assert status_of(gw, server["id"]) == "STOPPED"

    started = mutate(gw, "mutation($id: ID!) { startServer(id: $id) { operation { id } "
                         "server { status } } }", {"id": server["id"]})
    assert started["server"]["status"] in ("STARTING", "RUNNING")
    assert wait_operation(gw, started["operation"]["id"])["status"] == "SUCCEEDED"
    assert status_of(gw, server["id"]) == "RUNNING"

    suspended = mutate(gw, 'mutation($id: ID!) { suspendServer(id: $id, reason: "Payment '
                           'overdue - Invoice #12345") { server { status suspended '
                           'suspensionReason } } }', {"id": server["id"]})
    assert suspended["server"] == {"status": "SUSPENDED", "suspended": True,
                                   "suspensionReason": "Payment overdue - Invoice #12345"}
    refused = gw.query("mutation($id: ID!) { startServer(id: $id) { replayed } }",
                       {"id": server["id"]})
    assert refused["errors"][0]["extensions"] == {"code": "CONFLICT",
                                                  "currentStatus": "SUSPENDED"}

    mutate(gw, "mutation($id: ID!) { unsuspendServer(id: $id) { replayed } }",
           {"id": server["id"]})
    assert status_of(gw, server["id"]) == "STOPPED"
    restarted = mutate(gw, "mutation($id: ID!) { startServer(id: $id) { operation { id } } }",
                       {"id": server["id"]})
    wait_operation(gw, restarted["operation"]["id"])

    upgraded = mutate(gw, "mutation($id: ID!) { updateServerResources(id: $id, resources: "
                          "{memoryMb: 8192, cpuCores: 4, diskMb: 20480}) { operation { id } } }",
                      {"id": server["id"]})
    op = wait_operation(gw, upgraded["operation"]["id"])
    assert op["status"] == "SUCCEEDED" and op["step"] == "start"
    after = gw.query("query($id: ID!) { server(id: $id) { status resources { memoryMb "
                     "cpuCores diskMb } } }", {"id": server["id"]})["data"]["server"]
    assert after == {"status": "RUNNING",
                     "resources": {"memoryMb": 8192, "cpuCores": 4.0, "diskMb": 20480}}

    backups_before = len(sim.backups)
    terminated = mutate(gw, "mutation($id: ID!) { deleteServer(id: $id, finalBackup: true) { "
                            "deletedId operation { id } } }", {"id": server["id"]})
    op = wait_operation(gw, terminated["operation"]["id"])
    assert op["status"] == "SUCCEEDED" and op["step"] == "delete"
    assert len(sim.backups) == backups_before + 1
    gone = gw.query("query($id: ID!) { server(id: $id) { id } }", {"id": server["id"]})
    assert gone["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    audit = gw.query('{ auditLog(first: 50) { action outcome errorCode input } }')["data"]
    actions = [e["action"] for e in audit["auditLog"]]
    for expected in ("createServer", "startServer", "suspendServer", "unsuspendServer",
                     "updateServerResources", "deleteServer"):
        assert expected in actions
    failures = [e for e in audit["auditLog"] if e["outcome"] == "error"]
    assert failures and failures[0]["errorCode"] == "CONFLICT"


def test_concurrent_identical_creates_make_one_server(gw: GatewayUnderTest) -> None:
    sim = gw.sims["cat-life"]
    assert isinstance(sim, CatalystSim)
    before = len(sim.servers)
    variables = {"key": "order-777", "input": {
        "provider": "cat-life", "name": "Order 777",
        "resources": {"memoryMb": 2048, "cpuCores": 1, "diskMb": 10240}}}
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda _: gw.query(CREATE, variables), range(50)))
    assert all("errors" not in r for r in results), [r for r in results if "errors" in r][:1]
    ids = {r["data"]["createServer"]["server"]["id"] for r in results}
    assert len(ids) == 1
    assert len(sim.servers) == before + 1
    assert sum(not r["data"]["createServer"]["replayed"] for r in results) == 1
    creates = sim.stats["POST /api/servers"]
    assert creates >= 1

    reused = gw.query(CREATE, {**variables, "input": {**variables["input"], "name": "Other"}})
    assert reused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    header = gw.query(CREATE, {"input": variables["input"]}, **{"Idempotency-Key": "order-777"})
    assert header["data"]["createServer"]["replayed"] is True


def test_input_validation_is_field_level(gw: GatewayUnderTest) -> None:
    body = gw.query(CREATE, {"input": {"provider": "cat-life", "name": "x",
                                       "resources": {"memoryMb": 1, "cpuCores": 1}}})
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "memoryMb"}
    body = gw.query("mutation($id: ID!) { suspendServer(id: $id, reason: $r) { replayed } }"
                    .replace("$r", '"' + "x" * 600 + '"'),
                    {"id": _any_server(gw)})
    assert body["errors"][0]["extensions"]["field"] == "reason"


def test_not_supported_is_visible_in_capabilities(gw: GatewayUnderTest) -> None:
    caps = gw.query("{ providers { capabilities } }")["data"]["providers"][0]["capabilities"]
    assert "SERVER_POWER" in caps and "INVOICE_PAY" not in caps
    assert "ACCOUNT_CREATE" in caps and "ACCOUNT_SUSPEND" not in caps
    body = gw.query('mutation($id: ID!) { suspendAccount(id: $id) { replayed } }',
                    {"id": _any_account(gw)})
    assert body["errors"][0]["extensions"]["code"] == "NOT_SUPPORTED"


def _any_account(gw: GatewayUnderTest) -> str:
    body = gw.query("{ accounts(first: 1) { edges { node { id } } } }")
    return body["data"]["accounts"]["edges"][0]["node"]["id"]  # type: ignore[no-any-return]


ORDER_USER = """mutation($input: CreateAccountInput!) {
  createAccount(input: $input) { account { id username email } } }"""
GRANT = """mutation($server: ID!, $account: ID!, $permissions: [String!]!) {
  grantServerAccess(server: $server, account: $account, permissions: $permissions) {
    changed warnings server { access { account username permissions } } } }"""
REVOKE = """mutation($server: ID!, $account: ID!) {
  revokeServerAccess(server: $server, account: $account) { changed } }"""


def test_order_user_server_with_owner_region_and_grants(gw: GatewayUnderTest) -> None:
    """Seed 000's order flow through PanelQL: a panel user, then a server owned by that user
    in a region, then access for a second user; every upstream rule as Catalyst has it."""
    sim = gw.sims["cat-life"]
    assert isinstance(sim, CatalystSim)
    buyer = mutate(gw, ORDER_USER, {"input": {
        "provider": "cat-life", "username": "buyer777", "email": "buyer777@example.com",
        "password": "s3cure-Passw0rd!"}})["account"]
    assert buyer["username"] == "buyer777"
    created = mutate(gw, CREATE.replace("node { name }", "node { name region regionId } "
                                        "owner { id username } addresses"), {"input": {
        "provider": "cat-life", "name": "Order 777 server", "owner": buyer["id"],
        "resources": {"memoryMb": 2048, "cpuCores": 1, "diskMb": 10240},
        "placement": {"region": "eu-west"}}})
    server = created["server"]
    assert server["owner"] == {"id": buyer["id"], "username": "buyer777"}
    assert server["node"]["region"] == "eu-west"
    assert server["node"]["regionId"] == sim.nodes[
        next(n for n in sim.nodes if sim.region_of(n) == "eu-west")]["locationId"]
    assert server["addresses"] and server["addresses"][0].endswith(":25565")
    upstream = next(s for s in sim.servers.values() if s.name == "Order 777 server")
    assert upstream.owner_id != sim.key_user and sim.region_of(upstream.node_id) == "eu-west"

    # Only the owner may grant on Catalyst: the gateway's key is not this server's owner.
    friend = _any_account(gw)
    refused = gw.query(GRANT, {"server": server["id"], "account": friend,
                               "permissions": ["server.view"]})
    ext = refused["errors"][0]["extensions"]
    assert ext["code"] == "FORBIDDEN" and not ext["retryable"]
    assert "owner" in refused["errors"][0]["message"]

    # On a server the key's user owns, the seed's "Full Access" set is granted and read back.
    own = next(s for s in sim.servers.values() if s.owner_id == sim.key_user)
    own_id = gw.query("{ servers(first: 100) { edges { node { id upstreamId } } } }")
    own_gid = next(e["node"]["id"] for e in own_id["data"]["servers"]["edges"]
                   if e["node"]["upstreamId"] == own.id)
    full = ["server.start", "server.stop", "server.restart", "console.read", "console.write",
            "file.read", "file.write", "file.delete", "backup.create", "backup.restore"]
    granted = mutate(gw, GRANT, {"server": own_gid, "account": buyer["id"],
                                 "permissions": full})
    assert granted["changed"] and granted["warnings"] == []
    (entry,) = [a for a in granted["server"]["access"] if a["account"] == buyer["id"]]
    assert entry["username"] == "buyer777"
    assert set(entry["permissions"]) == {"server.start", "server.stop", "console.read",
                                         "console.write", "file.read", "file.write",
                                         "backup.create", "backup.restore"}
    assert mutate(gw, REVOKE, {"server": own_gid, "account": buyer["id"]})["changed"] is True
    again = mutate(gw, REVOKE, {"server": own_gid, "account": buyer["id"]})
    assert again["changed"] is False  # nothing to revoke: a no-op, not a retryable 500


def test_fractional_cpu_is_refused_before_the_panel_is_asked(gw: GatewayUnderTest) -> None:
    sim = gw.sims["cat-life"]
    assert isinstance(sim, CatalystSim)
    creates = sim.stats.get("POST /api/servers", 0)
    body = gw.query(CREATE, {"input": {
        "provider": "cat-life", "name": "half core",
        "resources": {"memoryMb": 2048, "cpuCores": 1.5, "diskMb": 10240}}})
    ext = body["errors"][0]["extensions"]
    assert ext["code"] == "BAD_USER_INPUT" and ext["field"] == "resources.cpuCores"
    assert sim.stats.get("POST /api/servers", 0) == creates
    resize = gw.query("mutation($id: ID!) { updateServerResources(id: $id, resources: "
                      "{cpuCores: 2.5}) { operation { id } } }", {"id": _any_server(gw)})
    assert resize["errors"][0]["extensions"]["field"] == "resources.cpuCores"


def test_goals_that_already_hold_are_no_ops(gw: GatewayUnderTest) -> None:
    sim = gw.sims["cat-life"]
    assert isinstance(sim, CatalystSim)
    listing = gw.query("{ servers(first: 100) { edges { node { id status } } } }")
    active = next(e["node"]["id"] for e in listing["data"]["servers"]["edges"]
                  if e["node"]["status"] in ("RUNNING", "STOPPED"))
    unsuspended = mutate(gw, "mutation($id: ID!) { unsuspendServer(id: $id) { changed "
                             "server { status } } }", {"id": active})
    assert unsuspended["changed"] is False


def _any_server(gw: GatewayUnderTest) -> str:
    body = gw.query("{ servers(first: 1) { edges { node { id } } } }")
    return body["data"]["servers"]["edges"][0]["node"]["id"]  # type: ignore[no-any-return]

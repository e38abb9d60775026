"""The access sweep: every root field x every key kind x every transport, against a rule table.

Each cell runs one operation and classifies the answer as UNAUTHENTICATED, FORBIDDEN,
TRANSPORT (the transport cannot carry that operation type), HIDDEN (NOT_FOUND: another
customer's resource, or one customers never see) or PASSED (anything past authorization:
data, CONFLICT, a panel's own error…). :func:`expected` derives the allowed outcomes of a cell
from ``panelql.application.auth`` (REQUIRED, NOT_FOR_CUSTOMERS) and the sample's target owner,
so a new root field without a sample here, or without a scope rule, fails this test.

Key kinds: admin, read-only (server.view + billing.read + audit.read), single-scope
(server.start), customer A and customer B (every scope but admin, bound to whmcs:A / whmcs:B),
revoked, expired. Transports: HTTP POST, graphql-transport-ws, legacy graphql-ws, SSE. A key
refused at WebSocket connect cannot run any operation there: that refusal is the outcome of all
its cells on that transport. Subscriptions count as PASSED once the gateway's bus holds them
(event-based, no sleeps), else by their error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import graphql
import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from panelql.application.auth import NOT_FOR_CUSTOMERS, REQUIRED
from panelql.application.ids import encode
from panelql.domain.records import Ref, ResourceType
from panelql.events.model import Topic
from panelql.schema.root import build_schema
from panelql_sim.catalyst import CatalystSim
from panelql_sim.directadmin import DirectAdminSim
from panelql_sim.runner import BackgroundServers
from panelql_sim.stripe import StripeSim
from tests.e2e.harness import GatewayUnderTest, gateway_of, serve_sim, start_gateway
from tests.e2e.wsclient import LegacyWS, TransportWS, ws_client

CAT, DA, ST = "cat-sweep", "da-sweep", "st-sweep"
UNAUTH, FORBIDDEN, TRANSPORT, HIDDEN, PASSED = (
    "UNAUTHENTICATED", "FORBIDDEN", "TRANSPORT", "HIDDEN", "PASSED")
KEYS = ("admin", "read-only", "single-scope", "customer-a", "customer-b", "revoked", "expired")
TRANSPORTS = ("http", "graphql-transport-ws", "graphql-ws", "sse")
ALL_BUT_ADMIN = sorted({s for t in REQUIRED.values() for s in t.values() if s and s != "admin"})
SCOPES = {"admin": ["admin"], "read-only": ["server.view", "billing.read", "audit.read"],
          "single-scope": ["server.start"], "customer-a": ALL_BUT_ADMIN,
          "customer-b": ALL_BUT_ADMIN, "revoked": ["admin"], "expired": ["admin"]}
TOPICS = {"serverStatusChanged": Topic.SERVER, "nodeStatusChanged": Topic.NODE,
          "backupStatusChanged": Topic.BACKUP, "accountStatusChanged": Topic.ACCOUNT,
          "invoiceStatusChanged": Topic.INVOICE, "operationUpdated": Topic.OPERATION,
          "automationRunUpdated": Topic.AUTOMATION}


@dataclass
class Sample:
    """One operation exercising a root field. ``target``: whose resource its ID argument names
    ("A": customer A's, "nobody": one no customer sees, None: no ID argument). ``destructive``:
    the first allowed cell may remove the target, later ones then find it gone (HIDDEN)."""

    document: str
    variables: Callable[[World], dict[str, Any]] = lambda w: {}
    target: str | None = None
    destructive: bool = False
    read_scope: str | None = None  # resource(id:): the scope of the type it names


@dataclass
class World:
    gw: GatewayUnderTest
    keys: dict[str, str]
    ids: dict[str, str] = field(default_factory=dict)


def q(body: str) -> str:
    return f"query Sweep{body}"


def m(body: str) -> str:
    return f"mutation Sweep{body}"


ID = "($id: ID!)"
SAMPLES: dict[tuple[str, str], Sample] = {
    # -- Query -------------------------------------------------------------------------------
    ("Query", "servers"): Sample(q(" { servers { __typename } }")),
    ("Query", "nodes"): Sample(q(" { nodes { __typename } }")),
    ("Query", "backups"): Sample(q(" { backups { __typename } }")),
    ("Query", "accounts"): Sample(q(" { accounts { __typename } }")),
    ("Query", "dnsZones"): Sample(q(" { dnsZones { __typename } }")),
    ("Query", "invoices"): Sample(q(" { invoices { __typename } }")),
    ("Query", "providers"): Sample(q(" { providers { __typename } }")),
    ("Query", "viewer"): Sample(q(" { viewer { __typename } }")),
    ("Query", "auditLog"): Sample(q(" { auditLog { __typename } }")),
    ("Query", "apiKeys"): Sample(q(" { apiKeys { __typename } }")),
    ("Query", "placementCandidates"): Sample(q(" { placementCandidates { __typename } }")),
    ("Query", "catalogue"): Sample(q(' { catalogue(provider: "cat-sweep") { __typename } }')),
    ("Query", "customerLinks"): Sample(q(' { customerLinks(customerRef: "whmcs:A") '
                                         "{ __typename } }")),
    ("Query", "server"): Sample(q(f"{ID} {{ server(id: $id) {{ __typename }} }}"),
                                lambda w: {"id": w.ids["server"]}, "A"),
    ("Query", "node"): Sample(q(f"{ID} {{ node(id: $id) {{ __typename }} }}"),
                              lambda w: {"id": w.ids["node"]}, "nobody"),
    ("Query", "backup"): Sample(q(f"{ID} {{ backup(id: $id) {{ __typename }} }}"),
                                lambda w: {"id": w.ids["backup"]}, "A"),
    ("Query", "account"): Sample(q(f"{ID} {{ account(id: $id) {{ __typename }} }}"),
                                 lambda w: {"id": w.ids["account"]}, "A"),
    ("Query", "invoice"): Sample(q(f"{ID} {{ invoice(id: $id) {{ __typename }} }}"),
                                 lambda w: {"id": w.ids["invoice"]}, "A"),
    ("Query", "dnsZone"): Sample(q(f"{ID} {{ dnsZone(id: $id) {{ __typename }} }}"),
                                 lambda w: {"id": w.ids["zone"]}, "A"),
    ("Query", "resource"): Sample(q(f"{ID} {{ resource(id: $id) {{ __typename }} }}"),
                                  lambda w: {"id": w.ids["invoice"]}, "A",
                                  read_scope="billing.read"),
    ("Query", "operation"): Sample(q(f"{ID} {{ operation(id: $id) {{ __typename }} }}"),
                                   lambda w: {"id": w.ids["operation"]}, "A"),
    # -- Mutation ----------------------------------------------------------------------------
    **{("Mutation", name): Sample(m(f"{ID} {{ {name}(id: $id) {{ __typename }} }}"),
                                  lambda w: {"id": w.ids["server"]}, "A")
       for name in ("startServer", "stopServer", "killServer", "restartServer",
                    "unsuspendServer", "reinstallServer")},
    ("Mutation", "suspendServer"): Sample(
        m(f"{ID} {{ suspendServer(id: $id, stopServer: false) {{ __typename }} }}"),
        lambda w: {"id": w.ids["server"]}, "A"),
    ("Mutation", "updateServerResources"): Sample(
        m(f"{ID} {{ updateServerResources(id: $id, resources: {{memoryMb: 2048}}, "
          "restart: false) { __typename } }"), lambda w: {"id": w.ids["server"]}, "A"),
    ("Mutation", "deleteServer"): Sample(
        m(f"{ID} {{ deleteServer(id: $id) {{ __typename }} }}"),
        lambda w: {"id": w.ids["doomed_server"]}, "A", destructive=True),
    ("Mutation", "createServer"): Sample(
        m("($node: ID!) { createServer(input: {provider: \"cat-sweep\", name: \"sweep\", "
          "node: $node, resources: {memoryMb: 1024, cpuCores: 1, diskMb: 4096}}) "
          "{ __typename } }"), lambda w: {"node": w.ids["node"]}),
    ("Mutation", "grantServerAccess"): Sample(
        m("($s: ID!, $a: ID!) { grantServerAccess(server: $s, account: $a, "
          'permissions: ["console.read"]) { __typename } }'),
        lambda w: {"s": w.ids["server"], "a": w.ids["account"]}, "A"),
    ("Mutation", "revokeServerAccess"): Sample(
        m("($s: ID!, $a: ID!) { revokeServerAccess(server: $s, account: $a) { __typename } }"),
        lambda w: {"s": w.ids["server"], "a": w.ids["account"]}, "A",
        destructive=True),  # cells run concurrently: the grant it removes may not be there
    ("Mutation", "createBackup"): Sample(
        m(f"{ID} {{ createBackup(server: $id) {{ __typename }} }}"),
        lambda w: {"id": w.ids["server"]}, "A"),
    ("Mutation", "restoreBackup"): Sample(
        m(f"{ID} {{ restoreBackup(id: $id) {{ __typename }} }}"),
        lambda w: {"id": w.ids["backup"]}, "A"),
    ("Mutation", "deleteBackup"): Sample(
        m(f"{ID} {{ deleteBackup(id: $id) {{ __typename }} }}"),
        lambda w: {"id": w.ids["doomed_backup"]}, "A", destructive=True),
    ("Mutation", "createAccount"): Sample(
        m(' { createAccount(input: {provider: "da-sweep", username: "sweepuser", '
          'email: "s@example.com", password: "Sw33p-pass!", domain: "sweep.example"}) '
          "{ __typename } }")),
    **{("Mutation", name): Sample(m(f"{ID} {{ {name}(id: $id) {{ __typename }} }}"),
                                  lambda w: {"id": w.ids["da_account"]}, "A")
       for name in ("suspendAccount", "unsuspendAccount")},
    ("Mutation", "changeAccountPackage"): Sample(
        m(f'{ID} {{ changeAccountPackage(id: $id, package: "default") {{ __typename }} }}'),
        lambda w: {"id": w.ids["da_account"]}, "A"),
    ("Mutation", "changeAccountPassword"): Sample(
        m(f'{ID} {{ changeAccountPassword(id: $id, password: "N3w-pass-sweep!") '
          "{ __typename } }"), lambda w: {"id": w.ids["da_account"]}, "A"),
    ("Mutation", "deleteAccount"): Sample(
        m(f"{ID} {{ deleteAccount(id: $id) {{ __typename }} }}"),
        lambda w: {"id": w.ids["doomed_account"]}, "A", destructive=True),
    ("Mutation", "createDnsZone"): Sample(
        m(' { createDnsZone(provider: "da-sweep", name: "sweep-zone.example") '
          "{ __typename } }")),
    ("Mutation", "deleteDnsZone"): Sample(
        m(f"{ID} {{ deleteDnsZone(id: $id) {{ __typename }} }}"),
        lambda w: {"id": w.ids["doomed_zone"]}, "A", destructive=True),
    ("Mutation", "upsertDnsRecord"): Sample(
        m(f'{ID} {{ upsertDnsRecord(zone: $id, record: {{type: "TXT", name: "sweep", '
          'content: "v=sweep"}) { __typename } }'), lambda w: {"id": w.ids["zone"]}, "A"),
    ("Mutation", "deleteDnsRecord"): Sample(
        m(f'{ID} {{ deleteDnsRecord(zone: $id, recordId: "TXT|sweep|v=none") '
          "{ __typename } }"), lambda w: {"id": w.ids["zone"]}, "A"),
    **{("Mutation", name): Sample(m(f"{ID} {{ {name}(id: $id) {{ __typename }} }}"),
                                  lambda w: {"id": w.ids["invoice"]}, "A")
       for name in ("finalizeInvoice", "payInvoice", "voidInvoice", "sendInvoice")},
    ("Mutation", "createInvoice"): Sample(
        m(' { createInvoice(input: {provider: "st-sweep", customerRef: "whmcs:A", '
          'email: "a@example.com", currency: "USD", lines: [{description: "Sweep", '
          'unitAmount: "1.00"}]}) { __typename } }')),
    ("Mutation", "checkout"): Sample(
        m(f'{ID} {{ checkout(id: $id, returnUrl: "https://shop.test/") {{ __typename }} }}'),
        lambda w: {"id": w.ids["invoice"]}, "A"),
    ("Mutation", "capturePayment"): Sample(
        m(f'{ID} {{ capturePayment(id: $id, orderId: "5O190127TN364715T") '
          "{ __typename } }"), lambda w: {"id": w.ids["invoice"]}, "A"),
    ("Mutation", "refundInvoice"): Sample(
        m(f'{ID} {{ refundInvoice(id: $id, amount: "0.01") {{ __typename }} }}'),
        lambda w: {"id": w.ids["invoice"]}, "A"),
    ("Mutation", "createLoginUrl"): Sample(
        m(f"{ID} {{ createLoginUrl(resource: $id) {{ __typename }} }}"),
        lambda w: {"id": w.ids["da_account"]}, "A"),
    ("Mutation", "resetServerPassword"): Sample(
        m(f"{ID} {{ resetServerPassword(id: $id) {{ __typename }} }}"),
        lambda w: {"id": w.ids["server"]}, "A"),
    ("Mutation", "provisionService"): Sample(
        m("($node: ID!) { provisionService(input: {customerRef: \"whmcs:S\", "
          "provider: \"cat-sweep\", account: {username: \"sweeporder\", "
          "email: \"sweeporder@example.com\"}, server: {name: \"sweep order\", node: $node, "
          "resources: {memoryMb: 1024, cpuCores: 1, diskMb: 4096}}}) { __typename } }"),
        lambda w: {"node": w.ids["node"]}),
    ("Mutation", "linkCustomer"): Sample(
        m(f'{ID} {{ linkCustomer(customerRef: "whmcs:A", resource: $id) {{ __typename }} }}'),
        lambda w: {"id": w.ids["server"]}),
    ("Mutation", "unlinkCustomer"): Sample(
        m(f'{ID} {{ unlinkCustomer(customerRef: "whmcs:Z", resource: $id) '
          "{ __typename } }"), lambda w: {"id": w.ids["server"]}),
    ("Mutation", "createApiKey"): Sample(
        m(' { createApiKey(name: "sweep", scopes: ["server.view"]) { __typename } }')),
    ("Mutation", "revokeApiKey"): Sample(
        m(f"{ID} {{ revokeApiKey(id: $id) {{ __typename }} }}"),
        lambda w: {"id": w.ids["spare_key"]}),
    # Billing automation: invalid ids and input get past authorization as BAD_USER_INPUT
    # (PASSED) without changing anything.
    ("Query", "automationPolicies"): Sample(q(" { automationPolicies { __typename } }")),
    ("Query", "automationPaused"): Sample(q(" { automationPaused }")),
    ("Query", "automationRuns"): Sample(q(" { automationRuns { __typename } }")),
    ("Query", "automationRun"): Sample(q(' { automationRun(id: "x") { __typename } }')),
    ("Mutation", "createAutomationPolicy"): Sample(
        m(' { createAutomationPolicy(input: {name: "sweep", trigger: OVERDUE, overdueDays: -1})'
          " { __typename } }")),
    ("Mutation", "updateAutomationPolicy"): Sample(
        m(' { updateAutomationPolicy(id: "x", changes: {}) { __typename } }')),
    ("Mutation", "deleteAutomationPolicy"): Sample(
        m(' { deleteAutomationPolicy(id: "x") }')),
    ("Mutation", "setAutomationPaused"): Sample(m(" { setAutomationPaused(paused: false) }")),
    ("Mutation", "runAutomationPolicy"): Sample(
        m(f'{ID} {{ runAutomationPolicy(policy: "x", invoice: $id) {{ __typename }} }}'),
        lambda w: {"id": w.ids["invoice"]}),
    ("Mutation", "cancelCustomerServices"): Sample(
        m(' { cancelCustomerServices(policy: "x", customerRef: "whmcs:Z") { __typename } }')),
    ("Mutation", "retryAutomationRun"): Sample(
        m(' { retryAutomationRun(id: "x") { __typename } }')),
    ("Mutation", "callOffAutomationRun"): Sample(
        m(' { callOffAutomationRun(id: "x") { __typename } }')),
    # Site mutations on a Catalyst server: past authorization they are NOT_SUPPORTED (PASSED).
    **{("Mutation", name): Sample(
        m(f'($s: ID!) {{ {name}(server: $s, domain: "sweep.example") {{ __typename }} }}'),
        lambda w: {"s": w.ids["server"]}, "A")
       for name in ("addSiteDomain", "removeSiteDomain")},
    ("Mutation", "setSiteProxy"): Sample(
        m("($s: ID!) { setSiteProxy(server: $s, enabled: false) { __typename } }"),
        lambda w: {"s": w.ids["server"]}, "A"),
    ("Mutation", "createDatabase"): Sample(
        m(f'{ID} {{ createDatabase(account: $id, name: "sweep", password: "Sw33p-db-pass") '
          "{ __typename } }"), lambda w: {"id": w.ids["da_account"]}, "A"),
    ("Mutation", "changeServerPlan"): Sample(
        m(f'{ID} {{ changeServerPlan(id: $id, plan: "premium") {{ __typename }} }}'),
        lambda w: {"id": w.ids["server"]}, "A"),
    # -- Subscription ------------------------------------------------------------------------
    **{("Subscription", name): Sample(f"subscription Sweep {{ {name} {{ __typename }} }}")
       for name in TOPICS},
}


def expected(kind: str, name: str, key: str, transport: str) -> set[str]:
    """The rule table: what a cell may answer."""
    sample = SAMPLES[(kind, name)]
    if key in ("revoked", "expired"):
        return {UNAUTH}
    if transport == "http" and kind == "Subscription":
        return {TRANSPORT}  # plain HTTP has no subscriptions
    if transport == "graphql-ws" and kind != "Subscription":
        return {TRANSPORT}  # the legacy protocol carries subscriptions only
    scopes = SCOPES[key]
    customer = key.startswith("customer")
    needed = sample.read_scope or REQUIRED[kind][name]
    if customer and name in NOT_FOR_CUSTOMERS:
        return {FORBIDDEN}
    if needed and needed not in scopes and "admin" not in scopes:
        return {FORBIDDEN}
    if customer and (sample.target == "nobody" or (sample.target == "A" and key != "customer-a")):
        return {HIDDEN}
    return {PASSED, HIDDEN} if sample.destructive else {PASSED}


def classify(errors: list[dict[str, Any]]) -> str:
    codes = [(e.get("extensions") or {}).get("code") for e in errors]
    messages = " ".join(str(e.get("message", "")) for e in errors)
    if UNAUTH in codes:
        return UNAUTH
    if FORBIDDEN in codes:
        return FORBIDDEN
    if "over plain HTTP" in messages or "cannot run over the legacy" in messages:
        return TRANSPORT
    if "NOT_FOUND" in codes:
        return HIDDEN
    return PASSED


# -- the world ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def world(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    cat = CatalystSim(servers=8, users=4, nodes=2)
    cat.knobs.transition_seconds = 0.05
    da, st = DirectAdminSim(users=4), StripeSim(customers=2, invoices=4)
    entries = [serve_sim(background, CAT, cat, "catalyst", {"api_key": cat.api_key}),
               serve_sim(background, DA, da, "directadmin",
                         {"username": da.username, "password": da.password}),
               serve_sim(background, ST, st, "stripe",
                         {"api_key": st.api_key, "webhook_secret": st.webhook_secret})]
    gw = start_gateway(background, "gw-sweep", {CAT: cat, DA: da, ST: st}, entries,
                       tmp_path_factory.mktemp("sweep") / "s.db", operation_poll_seconds=0.05,
                       default_rate_limit_per_minute=100_000)
    users, da_users = list(cat.users), sorted(da.users)

    def enc(conn: str, kind: ResourceType, upstream: str) -> str:
        return encode(Ref(conn, kind, upstream))

    a_servers = [s.id for s in cat.servers.values() if s.owner_id == users[0]]
    stripe_customers = sorted({i.customer["id"] for i in st.invoices.values()})
    a_invoice = next(i.id for i in st.invoices.values()
                     if i.customer["id"] == stripe_customers[0])
    ids = {
        "server": enc(CAT, ResourceType.SERVER, a_servers[0]),
        "doomed_server": enc(CAT, ResourceType.SERVER, a_servers[1]),
        "node": enc(CAT, ResourceType.NODE, next(iter(cat.nodes))),
        "account": enc(CAT, ResourceType.ACCOUNT, users[0]),
        "da_account": enc(DA, ResourceType.ACCOUNT, da_users[0]),
        "doomed_account": enc(DA, ResourceType.ACCOUNT, da_users[2]),
        "invoice": enc(ST, ResourceType.INVOICE, a_invoice),
    }
    backups = gw.query("{ backups(first: 200) { edges { node { id server { id } } } } }")
    a_backups = [e["node"]["id"] for e in backups["data"]["backups"]["edges"]
                 if e["node"]["server"]["id"] == ids["server"]]
    assert len(a_backups) >= 2, backups
    ids["backup"], ids["doomed_backup"] = a_backups[0], a_backups[-1]
    for domain in ("kept-sweep.example", "doomed-sweep.example"):
        made = gw.query(m("($a: ID!, $n: String!) { createDnsZone(provider: \"da-sweep\", "
                          "name: $n, account: $a) { __typename } }"),
                        {"a": ids["da_account"], "n": domain})
        assert "errors" not in made, made
    ids["zone"] = enc(DA, ResourceType.DNS_ZONE, f"{da_users[0]}/kept-sweep.example")
    ids["doomed_zone"] = enc(DA, ResourceType.DNS_ZONE, f"{da_users[0]}/doomed-sweep.example")
    link = ("mutation($c: String!, $r: ID, $p: String, $b: String) { linkCustomer("
            "customerRef: $c, resource: $r, provider: $p, billingCustomer: $b) { changed } }")
    for variables in ({"c": "whmcs:A", "r": ids["account"]},
                      {"c": "whmcs:A", "r": ids["da_account"]},
                      {"c": "whmcs:A", "r": ids["doomed_account"]},
                      {"c": "whmcs:A", "p": ST, "b": stripe_customers[0]},
                      {"c": "whmcs:B", "r": enc(CAT, ResourceType.ACCOUNT, users[1])},
                      {"c": "whmcs:B", "r": enc(DA, ResourceType.ACCOUNT, da_users[1])},
                      {"c": "whmcs:B", "p": ST, "b": stripe_customers[1]}):
        assert "errors" not in gw.query(link, variables), variables
    started = gw.query(m(f"{ID} {{ restartServer(id: $id) {{ operation {{ id }} }} }}"),
                       {"id": ids["server"]})
    ids["operation"] = started["data"]["restartServer"]["operation"]["id"]
    keys = {}
    for key in KEYS:
        options: dict[str, Any] = {}
        if key == "customer-a":
            options["customer_ref"] = "whmcs:A"
        elif key == "customer-b":
            options["customer_ref"] = "whmcs:B"
        elif key == "expired":
            options["expires_at"] = datetime.now(UTC) - timedelta(seconds=1)
        keys[key] = gw.create_key(SCOPES[key], name=f"sweep-{key}", **options)
    spare = gw.create_key(["server.view"], name="sweep-spare")
    listed = gw.background.call(gateway_of(gw).keys.list())  # type: ignore[union-attr]
    by_prefix = {k.prefix: k.id for k in listed}
    ids["spare_key"] = str(by_prefix[spare.split("_")[1]])
    gw.background.call(gateway_of(gw).keys.revoke(  # type: ignore[union-attr]
        by_prefix[keys["revoked"].split("_")[1]]))
    yield World(gw, keys, ids)


# -- running cells -----------------------------------------------------------------------------

Cell = tuple[str, str, str, str]  # kind, field, key, transport


_clients = threading.local()


def http_cell(world: World, sample: Sample, key: str, sse: bool) -> str:
    headers = {"x-api-key": world.keys[key], "accept": "application/json"}
    if sse:
        headers["accept"] = "text/event-stream"
    body = {"query": sample.document, "variables": sample.variables(world)}
    if not hasattr(_clients, "client"):  # one pooled client per worker thread
        _clients.client = httpx.Client(timeout=30)
    client: httpx.Client = _clients.client
    with client.stream(
            "POST", f"{world.gw.url}/graphql", json=body, headers=headers) as response:
        if response.status_code == 401:
            return UNAUTH
        if not sse:
            response.read()
            return classify(response.json().get("errors") or [])
        for line in response.iter_lines():
            if line.startswith("data:") and line[5:].strip():
                payload = json.loads(line[5:])
                return classify(payload.get("errors") or [])
    raise AssertionError("no answer")


async def sse_subscription(world: World, sample: Sample, key: str, topic: Topic) -> str:
    """An SSE subscription: refused with an error event, or held by the bus (PASSED)."""
    bus = gateway_of(world.gw).bus
    before = set(bus.subscribers)
    async with httpx.AsyncClient(timeout=30) as client, client.stream(
            "POST", f"{world.gw.url}/graphql", json={"query": sample.document},
            headers={"x-api-key": world.keys[key], "accept": "text/event-stream"}) as response:
        if response.status_code == 401:
            return UNAUTH
        lines = response.aiter_lines()

        async def first_error() -> str:
            async with asyncio.timeout(CELL_DEADLINE):  # keep-alive lines never end a read
                async for line in lines:
                    if line.startswith("data:") and line[5:].strip():
                        return classify(json.loads(line[5:]).get("errors") or [])
            return PASSED

        async def held() -> str:
            while not any(topic in s.topics for s in set(bus.subscribers) - before):
                await asyncio.sleep(0.01)
            return PASSED

        return await _first_of(first_error(), held(), cell=f"{sample.document} [{key}, sse]")


# Far above any cell's answer time; only a lost cancellation would ever reach it.
CELL_DEADLINE = 60.0


async def _first_of(*waits: Any, cell: str = "") -> str:
    tasks = [asyncio.create_task(w) for w in waits]
    try:
        done, _ = await asyncio.wait(tasks, timeout=20, return_when=asyncio.FIRST_COMPLETED)
        assert done, f"{cell}: neither an answer nor a subscriber"
        return str(next(iter(done)).result())
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def ws_cells(world: World, key: str, cls: type[TransportWS], one_subscriber: asyncio.Lock
                   ) -> dict[tuple[str, str], str]:
    """Every root field on one socket of one key: operations one after another. The keys'
    sockets run side by side, but subscription cells take ``one_subscriber`` in turn: "a new
    subscriber appeared on the bus" must be this cell's, not another key's that subscribed at the
    same moment (which once passed a single-scope key's refused subscription)."""
    outcomes: dict[tuple[str, str], str] = {}
    bus = gateway_of(world.gw).bus
    try:
        async with ws_client(world.gw.url, cls) as client:
            ack = await client.init({"x-api-key": world.keys[key]})
            if ack["type"] != "connection_ack":
                return {name: UNAUTH for name in SAMPLES}
            for name, sample in SAMPLES.items():
                topic = TOPICS.get(name[1]) if name[0] == "Subscription" else None
                async with one_subscriber if topic else contextlib.nullcontext():
                    outcomes[name] = await ws_cell(world, client, bus, name, sample, topic, key)
    except ConnectionClosed as closed:
        if closed.rcvd is not None and closed.rcvd.code in (4403, 4401):
            return {name: UNAUTH for name in SAMPLES}
        raise
    return outcomes


async def ws_cell(world: World, client: TransportWS, bus: Any, name: tuple[str, str],
                  sample: Sample, topic: Topic | None, key: str) -> str:
    before = set(bus.subscribers)
    op = await client.subscribe(sample.document, sample.variables(world))

    async def answer(op: str = op) -> str:
        # A deadline of its own: keep-alive pings arrive every few seconds, so a
        # per-message timeout alone would wait forever if the cancel from
        # _first_of were lost (asyncio.wait_for can swallow it on Python 3.11).
        async with asyncio.timeout(CELL_DEADLINE):
            while True:
                message = await client.recv(timeout=20)
                if message.get("id") != op or message["type"] == "complete":
                    continue
                payload = message["payload"]
                errors = payload if isinstance(payload, list) else (
                    payload.get("errors") or (
                        [payload] if message["type"] == "error" else []))
                return classify(errors)

    async def held(topic: Topic | None = topic, before: set[Any] = before) -> str:
        if topic is None:
            await asyncio.sleep(3600)
        while not any(topic in s.topics for s in set(bus.subscribers) - before):
            await asyncio.sleep(0.01)
        return PASSED

    try:
        return await _first_of(answer(), held(),
                               cell=f"{name} [{key}, {client.protocol}]")
    finally:
        await client.complete(op)


def test_every_root_field_has_a_sample_and_a_rule() -> None:
    schema = graphql.build_schema(build_schema().as_str())  # the SDL clients see
    fields = {(root.name, name) for root in (schema.query_type, schema.mutation_type,
                                             schema.subscription_type) if root is not None
              for name in root.fields}
    assert set(SAMPLES) == fields, (sorted(fields - set(SAMPLES)), sorted(set(SAMPLES) - fields))
    missing = sorted(f"{k}.{n}" for k, n in fields if n not in REQUIRED.get(k, {}))
    assert missing == [], f"root fields without a scope rule: {missing}"


async def test_access_sweep(world: World) -> None:
    outcomes: dict[Cell, str] = {}
    plain = [(name, key, transport) for name in SAMPLES for key in KEYS
             for transport in ("http", "sse")
             if not (transport == "sse" and name[0] == "Subscription")]

    def run_plain(cell: tuple[tuple[str, str], str, str]) -> tuple[Cell, str]:
        (kind, field_name), key, transport = cell
        return (kind, field_name, key, transport), http_cell(
            world, SAMPLES[(kind, field_name)], key, transport == "sse")

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes.update(await asyncio.to_thread(lambda: dict(pool.map(run_plain, plain))))
    print(f"http+sse {len(plain)} cells: {time.monotonic() - started:.1f}s")
    for name in (n for n in SAMPLES if n[0] == "Subscription"):
        for key in KEYS:
            outcomes[(*name, key, "sse")] = await sse_subscription(
                world, SAMPLES[name], key, TOPICS[name[1]])
    print(f"sse subscriptions: {time.monotonic() - started:.1f}s")
    for cls, transport in ((TransportWS, "graphql-transport-ws"), (LegacyWS, "graphql-ws")):
        print(f"{transport}: {time.monotonic() - started:.1f}s")
        one_subscriber = asyncio.Lock()
        results = await asyncio.gather(*(ws_cells(world, key, cls, one_subscriber)
                                         for key in KEYS))
        for key, found in zip(KEYS, results, strict=True):
            for name, outcome in found.items():
                outcomes[(*name, key, transport)] = outcome

    cells = [(k, n, key, t) for (k, n) in SAMPLES for key in KEYS for t in TRANSPORTS]
    wrong = [f"{k}.{n} [{key} over {t}]: {outcomes.get((k, n, key, t))}, expected "
             f"{sorted(expected(k, n, key, t))}"
             for k, n, key, t in cells if outcomes.get((k, n, key, t))
             not in expected(k, n, key, t)]
    tally = Counter(outcomes.values())
    print(f"\naccess sweep: {len(cells)} cells ({len(SAMPLES)} root fields x {len(KEYS)} key "
          f"kinds x {len(TRANSPORTS)} transports): {dict(tally)}; {len(wrong)} wrong")
    assert len(outcomes) == len(cells)
    assert wrong == [], "\n".join(wrong)

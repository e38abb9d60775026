"""End to end: GraphQL over HTTP → gateway → Catalyst simulator over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from panelql.providers.transport import LeanTransport
from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, serve_sim, start_gateway

SERVERS_WITH_NODE_AND_OWNER = """
query($first: Int) { servers(first: $first) { totalCount
  edges { node { id name provider { kind } node { name status } owner { email } } } } }
"""


def _gateway(background: BackgroundServers, tmp: Path, tag: str, servers: int,
             **settings: object) -> GatewayUnderTest:
    # users: players besides the API key's admin, which the panel lists too (100 in one page)
    sim = CatalystSim(servers=servers, users=max(4, servers // 5) - 1, nodes=4)
    entry = serve_sim(background, f"cat-{tag}", sim, "catalyst", {"api_key": sim.api_key})
    return start_gateway(background, f"gw-{tag}", {entry.name: sim}, [entry],
                         tmp / f"{tag}.db", **settings)


@pytest.fixture(scope="module")
def small(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[GatewayUnderTest]:
    yield _gateway(background, tmp_path_factory.mktemp("small"), "n10", 10)


@pytest.fixture(scope="module")
def large(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[GatewayUnderTest]:
    yield _gateway(background, tmp_path_factory.mktemp("large"), "n500", 500)


def _calls_for_full_listing(gw: GatewayUnderTest, n: int) -> int:
    gw.reset_counts()
    body = gw.query(SERVERS_WITH_NODE_AND_OWNER, {"first": 1000})
    assert "errors" not in body, body
    servers = body["data"]["servers"]
    assert servers["totalCount"] == n
    assert all(e["node"]["node"]["name"] and e["node"]["owner"]["email"]
               for e in servers["edges"])
    return sum(gw.upstream_calls().values())


def test_upstream_calls_do_not_grow_with_server_count(
        small: GatewayUnderTest, large: GatewayUnderTest) -> None:
    calls_10 = _calls_for_full_listing(small, 10)
    calls_500 = _calls_for_full_listing(large, 500)
    # servers list + nodes list + users; node allocation needs the server list again, which
    # the query's read memo (providers/read_memo.py) answers without a second call
    assert calls_10 == calls_500 == 3


def test_without_dataloaders_calls_grow(background: BackgroundServers, tmp_path: Path) -> None:
    gw = _gateway(background, tmp_path, "noloader", 30, dataloaders=False)
    assert _calls_for_full_listing(gw, 30) > 30


def test_pagination_walks_every_server_once(small: GatewayUnderTest) -> None:
    seen: list[str] = []
    after = None
    while True:
        body = small.query(
            "query($after: String) { servers(first: 3, after: $after) { "
            "pageInfo { hasNextPage endCursor } edges { node { id } } } }", {"after": after})
        page = body["data"]["servers"]
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 10


def test_lookup_by_id_and_resource(small: GatewayUnderTest) -> None:
    first = small.query("{ servers(first: 1) { edges { node { id name } } } }")
    server = first["data"]["servers"]["edges"][0]["node"]
    by_id = small.query("query($id: ID!) { server(id: $id) { name } "
                        "resource(id: $id) { __typename ... on Server { name } } }",
                        {"id": server["id"]})
    assert by_id["data"]["server"]["name"] == server["name"]
    assert by_id["data"]["resource"] == {"__typename": "Server", "name": server["name"]}


def test_invalid_and_unknown_ids_have_codes(small: GatewayUnderTest) -> None:
    bad = small.query('{ server(id: "not-an-id") { name } }')
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    from panelql.application.ids import encode
    from panelql.domain.records import Ref, ResourceType
    missing = encode(Ref("cat-n10", ResourceType.SERVER, "nope"))
    gone = small.query("query($id: ID!) { server(id: $id) { name } }", {"id": missing})
    assert gone["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    node_id = encode(Ref("cat-n10", ResourceType.NODE, "x"))
    wrong_type = small.query("query($id: ID!) { server(id: $id) { name } }", {"id": node_id})
    assert wrong_type["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_filters_by_status_node_owner_and_text(small: GatewayUnderTest) -> None:
    running = small.query('{ servers(filter: {status: [RUNNING]}) { edges { node { status } } } }')
    statuses = {e["node"]["status"] for e in running["data"]["servers"]["edges"]}
    assert statuses == {"RUNNING"}
    one = small.query("{ servers(first: 1) { edges { node { name node { id } owner { id } } } } }")
    server = one["data"]["servers"]["edges"][0]["node"]
    by_node = small.query("query($n: ID!) { servers(filter: {node: $n}) { edges { node { "
                          "node { id } } } } }", {"n": server["node"]["id"]})
    assert {e["node"]["node"]["id"] for e in by_node["data"]["servers"]["edges"]} == {
        server["node"]["id"]}
    by_owner = small.query("query($o: ID!) { servers(filter: {owner: $o}) { totalCount } }",
                           {"o": server["owner"]["id"]})
    assert by_owner["data"]["servers"]["totalCount"] >= 1
    by_text = small.query("query($q: String) { servers(filter: {search: $q}) { edges { node { "
                          "name } } } }", {"q": server["name"].upper()})
    assert server["name"] in [e["node"]["name"] for e in by_text["data"]["servers"]["edges"]]


def test_nodes_report_capacity_allocation_and_status(small: GatewayUnderTest) -> None:
    body = small.query("{ nodes { edges { node { name status region capacity { memoryMb } "
                       "allocated { memoryMb } available { memoryMb } "
                       "servers { totalCount } } } } }")
    nodes = [e["node"] for e in body["data"]["nodes"]["edges"]]
    assert {n["status"] for n in nodes} == {"ONLINE", "OFFLINE"}
    for node in nodes:
        assert node["available"]["memoryMb"] == max(
            0, node["capacity"]["memoryMb"] - node["allocated"]["memoryMb"])
    assert sum(n["servers"]["totalCount"] for n in nodes) == 10


def test_backups_everywhere(small: GatewayUnderTest) -> None:
    body = small.query("{ backups(first: 100) { totalCount edges { node { id name status "
                       "server { name } } } } }")
    assert body["data"]["backups"]["totalCount"] > 0
    backup = body["data"]["backups"]["edges"][0]["node"]
    assert backup["status"] == "COMPLETED"
    again = small.query("query($id: ID!) { backup(id: $id) { name } }", {"id": backup["id"]})
    assert again["data"]["backup"]["name"] == backup["name"]


def test_malformed_graphql_is_a_coded_error(small: GatewayUnderTest) -> None:
    body = small.query("{ servers(first: ) }")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    unknown = small.query("{ servers { edges { node { nope } } } }")
    assert unknown["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    too_big = small.query("{ servers(first: 100000) { totalCount } }")
    assert too_big["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_health_endpoints(small: GatewayUnderTest) -> None:
    assert small.client.get(f"{small.url}/healthz").json() == {"status": "ok"}
    ready = small.client.get(f"{small.url}/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"


def test_nested_loads_follow_the_page_whatever_the_query_shape(small: GatewayUnderTest) -> None:
    """The servers resolver starts the page's node/owner/backup loads itself (resolvers/
    prefetch.py). Fragments, inline fragments and the `nodes` shortcut must reach the same
    loads, only the page's servers are fetched, and nothing is asked twice."""
    shapes = [
        "{ servers(first: 3) { edges { node { name node { name } owner { email } "
        "backups(first: 1) { totalCount } } } } }",
        "{ servers(first: 3) { nodes { name ...S } } } fragment S on Server { node { name } "
        "... on Server { owner { email } backups(first: 1) { totalCount } } }",
    ]
    answers, totals = [], []
    for text in shapes:
        small.reset_counts()
        body = small.query(text)
        assert "errors" not in body, body
        routes = small.upstream_routes()
        backup_calls = sum(c for r, c in routes.items() if r.endswith("/backups"))
        assert backup_calls == 3, routes
        totals.append(sum(routes.values()))
        page = body["data"]["servers"]
        answers.append(page.get("nodes") or [e["node"] for e in page["edges"]])
    assert answers[0] == answers[1]
    assert totals[0] == totals[1] == 3 + 3


def test_httpx_transport_setting_gives_the_same_answers(
        background: BackgroundServers, tmp_path: Path, small: GatewayUnderTest) -> None:
    """`upstream_transport = "httpx"` (the escape hatch from providers/transport.py) answers the
    same query with the same upstream calls."""
    gw = _gateway(background, tmp_path, "httpx", 10, upstream_transport="httpx")
    for g, lean in ((gw, False), (small, True)):
        adapter = next(iter(g.app.state.gateway.providers.values()))
        assert isinstance(adapter.api.client._transport, LeanTransport) is lean
    assert _calls_for_full_listing(gw, 10) == _calls_for_full_listing(small, 10)

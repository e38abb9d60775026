"""Every authentication and authorization failure path over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, gateway_of, serve_sim, start_gateway

QUERY = {"query": "{ servers(first: 1) { totalCount } }"}


@pytest.fixture(scope="module")
def gw(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[GatewayUnderTest]:
    sim = CatalystSim(servers=3)
    entry = serve_sim(background, "cat-auth", sim, "catalyst", {"api_key": sim.api_key})
    yield start_gateway(background, "gw-auth", {"cat-auth": sim}, [entry],
                        tmp_path_factory.mktemp("auth") / "a.db")


def post(gw: GatewayUnderTest, headers: dict[str, str], body: dict[str, str] = QUERY
         ) -> httpx.Response:
    return httpx.post(f"{gw.url}/graphql", json=body, headers=headers, timeout=10)


def code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["extensions"]["code"])


def test_no_key_is_unauthenticated(gw: GatewayUnderTest) -> None:
    response = post(gw, {})
    assert response.status_code == 401 and code(response) == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["x-api-key", "authorization"])
def test_both_key_headers_work(gw: GatewayUnderTest, header: str) -> None:
    value = gw.admin_key if header == "x-api-key" else f"Bearer {gw.admin_key}"
    assert post(gw, {header: value}).json()["data"]["servers"]["totalCount"] == 3


def test_unknown_revoked_and_expired_keys(gw: GatewayUnderTest) -> None:
    assert code(post(gw, {"x-api-key": "pql_00000000_nope"})) == "UNAUTHENTICATED"
    expired = gw.create_key(["admin"], expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert code(post(gw, {"x-api-key": expired})) == "UNAUTHENTICATED"
    key = gw.create_key(["admin"], name="to-revoke")
    assert post(gw, {"x-api-key": key}).status_code == 200
    keys = gw.background.call(gateway_of(gw).keys.list())  # type: ignore[union-attr]
    target = next(k for k in keys if k.name == "to-revoke")
    gw.background.call(gateway_of(gw).keys.revoke(target.id))  # type: ignore[union-attr]
    assert code(post(gw, {"x-api-key": key})) == "UNAUTHENTICATED"


def test_missing_scope_is_forbidden(gw: GatewayUnderTest) -> None:
    viewer = gw.create_key(["server.view"])
    ok = post(gw, {"x-api-key": viewer})
    assert ok.json()["data"]["servers"]["totalCount"] == 3
    mutation = {"query": 'mutation { startServer(id: "x") { replayed } }'}
    denied = post(gw, {"x-api-key": viewer}, mutation).json()
    assert denied["errors"][0]["extensions"] == {"code": "FORBIDDEN", "scope": "server.start"}
    billing = post(gw, {"x-api-key": viewer}, {"query": "{ invoices { totalCount } }"}).json()
    assert billing["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert billing["data"] is None


def test_rate_limit_answers_429_with_retry_after(gw: GatewayUnderTest) -> None:
    key = gw.create_key(["server.view"], rate_limit_per_minute=3)
    answers = [post(gw, {"x-api-key": key}) for _ in range(5)]
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    limited = answers[3]
    assert limited.status_code == 429 and code(limited) == "RATE_LIMITED"
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["errors"][0]["extensions"]["retryAfter"] >= 1
    other = post(gw, {"x-api-key": gw.admin_key})  # another key's budget is its own
    assert other.status_code == 200


def test_graphiql_page_needs_no_key_but_queries_do(gw: GatewayUnderTest) -> None:
    page = httpx.get(f"{gw.url}/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    query = httpx.get(f"{gw.url}/graphql", params={"query": "{ viewer { name } }"},
                      headers={"accept": "text/html"})
    assert query.status_code == 401


def test_health_endpoints_need_no_key(gw: GatewayUnderTest) -> None:
    assert httpx.get(f"{gw.url}/healthz").status_code == 200
    assert httpx.get(f"{gw.url}/readyz").status_code == 200


def test_secrets_never_reach_clients(gw: GatewayUnderTest) -> None:
    sim = gw.sims["cat-auth"]
    assert isinstance(sim, CatalystSim)
    body = post(gw, {"x-api-key": gw.admin_key},
                {"query": "{ providers { name kind health { ok error } } viewer { name } }"})
    assert sim.api_key not in body.text and gw.admin_key not in body.text


def test_admin_manages_keys_through_graphql(gw: GatewayUnderTest) -> None:
    created = post(gw, {"x-api-key": gw.admin_key}, {"query": """mutation {
        createApiKey(name: "whmcs", scopes: ["server.view", "server.start"],
                     customerRef: "whmcs:9", rateLimitPerMinute: 100) {
          key apiKey { id name scopes customerRef rateLimitPerMinute active } } }"""}).json()
    answer = created["data"]["createApiKey"]
    key, info = answer["key"], answer["apiKey"]
    assert key.startswith("pql_") and info["active"] is True
    assert info["scopes"] == ["server.start", "server.view"]
    listed = post(gw, {"x-api-key": gw.admin_key}, {"query": "{ apiKeys { id prefix } }"})
    assert key not in listed.text and info["id"] in listed.text
    assert post(gw, {"x-api-key": key}, {"query": "{ viewer { customerRef } }"}).json()[
        "data"]["viewer"]["customerRef"] == "whmcs:9"
    audit = post(gw, {"x-api-key": gw.admin_key},
                 {"query": '{ auditLog(action: "createApiKey") { input } }'})
    assert key not in audit.text
    revoked = post(gw, {"x-api-key": gw.admin_key}, {
        "query": "mutation($id: ID!) { revokeApiKey(id: $id) { active } }",
        "variables": {"id": info["id"]}}).json()
    assert revoked["data"]["revokeApiKey"]["active"] is False
    assert code(post(gw, {"x-api-key": key})) == "UNAUTHENTICATED"
    bad = post(gw, {"x-api-key": gw.admin_key}, {
        "query": 'mutation { createApiKey(name: "x", scopes: ["root"]) { key } }'}).json()
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    not_admin = gw.create_key(["server.view"])
    denied = post(gw, {"x-api-key": not_admin}, {"query": "{ apiKeys { id } }"}).json()
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_rate_limit_is_shared_through_redis(background: BackgroundServers,
                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    import os
    redis_url = os.environ.get("PANELQL_TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("PANELQL_TEST_REDIS_URL is not set; shared rate limits need Redis")
    sim = CatalystSim(servers=2)
    entry = serve_sim(background, "cat-shared-rate", sim, "catalyst", {"api_key": sim.api_key})
    db = tmp_path_factory.mktemp("shared-rate") / "shared.db"
    first = start_gateway(background, "gw-rate-1", {"cat-shared-rate": sim}, [entry], db,
                          redis_url=redis_url)
    second = start_gateway(background, "gw-rate-2", {"cat-shared-rate": sim}, [entry], db,
                           redis_url=redis_url)
    key = first.create_key(["server.view"], rate_limit_per_minute=4)
    answers = [post(gw, {"x-api-key": key}) for gw in (first, second, first, second, first)]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]

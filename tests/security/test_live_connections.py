"""Open WebSockets and SSE streams keep no rights they have lost.

Before, the key was checked once at connect: a revoked or expired key kept querying, mutating
and receiving events; rate limits did not apply; the customer scope was cached for the
connection's life. Now every WebSocket operation re-checks (and charges) the key with a fresh
customer scope, running subscriptions re-check every ``connection_recheck_seconds`` (0.2 s
here), and a revoked key's socket is closed with 4403.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from panelql.application.ids import encode
from panelql.domain.records import Ref, ResourceType
from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, gateway_of, serve_sim, start_gateway
from tests.e2e.wsclient import LegacyWS, TransportWS, ws_client

CONN = "cat-live"
SERVER_EVENTS = "subscription { serverStatusChanged { id status } }"
READ = "query($id: ID!) { server(id: $id) { id status } }"
START = "mutation($id: ID!) { startServer(id: $id) { replayed } }"
STOP = "mutation($id: ID!) { stopServer(id: $id) { replayed } }"
CUSTOMER_SCOPES = ["server.view", "server.start", "server.stop"]


@dataclass
class World:
    gw: GatewayUnderTest
    sim: CatalystSim
    moving: str  # a server linked directly to whmcs:1, moved to whmcs:2 by one test
    mine: str  # a server whmcs:1 owns through its account, for the whole module

    def admin(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = self.gw.query(query, variables)
        assert "errors" not in body, body
        return body

    def link(self, mutation: str, customer: str, resource: str) -> None:
        self.admin(f"mutation($c: String!, $r: ID!) {{ {mutation}(customerRef: $c, "
                   "resource: $r) { changed } }", {"c": customer, "r": resource})

    def toggle(self, server: str) -> None:
        """Start a stopped server or stop a running one: either way, status events."""
        status = self.admin(READ, {"id": server})["data"]["server"]["status"]
        self.admin(START if status == "STOPPED" else STOP, {"id": server})

    def revoke(self, key: str) -> None:
        gateway = gateway_of(self.gw)
        keys = self.gw.background.call(gateway.keys.list())  # type: ignore[union-attr]
        target = next(k for k in keys if key.startswith(f"pql_{k.prefix}_"))
        self.admin("mutation($id: ID!) { revokeApiKey(id: $id) { active } }",
                   {"id": str(target.id)})


def sid(server_id: str) -> str:
    return encode(Ref(CONN, ResourceType.SERVER, server_id))


@pytest.fixture(scope="module")
def world(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    sim = CatalystSim(servers=8, users=4, nodes=2)
    sim.knobs.transition_seconds = 0.05
    entry = serve_sim(background, CONN, sim, "catalyst", {"api_key": sim.api_key})
    gw = start_gateway(background, "gw-live", {CONN: sim}, [entry],
                       tmp_path_factory.mktemp("live") / "l.db", operation_poll_seconds=0.05,
                       connection_recheck_seconds=0.2)
    users = list(sim.users)
    by_owner = {u: [s.id for s in sim.servers.values()
                    if s.owner_id == u and s.status in ("running", "stopped")] for u in users}
    world = World(gw, sim, moving=sid(by_owner[users[2]][0]), mine=sid(by_owner[users[0]][0]))
    world.link("linkCustomer", "whmcs:1",
               encode(Ref(CONN, ResourceType.ACCOUNT, users[0])))
    world.link("linkCustomer", "whmcs:1", world.moving)
    yield world


def errors_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    if message["type"] == "error":
        payload = message["payload"]
        return payload if isinstance(payload, list) else [payload]
    return list(message["payload"].get("errors") or [])


async def until_closed(client: TransportWS, timeout: float = 15) -> tuple[int | None, str]:
    """Read until the server closes the socket; its close code and reason."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            await client.recv(timeout=deadline - time.monotonic())
    except ConnectionClosed as closed:
        return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, "")
    raise AssertionError("the socket stayed open")


async def ask(client: TransportWS, query: str, variables: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    op = await client.subscribe(query, variables)
    message = await client.recv()
    assert message["id"] == op, message
    if message["type"] == "next":
        assert (await client.recv())["type"] == "complete"
    return message


async def test_revoked_key_is_refused_on_the_next_operation_and_the_socket_closes(
        world: World) -> None:
    key = await asyncio.to_thread(world.gw.create_key, ["admin"], "ws-revoke")
    async with ws_client(world.gw.url) as client:
        assert (await client.init({"x-api-key": key}))["type"] == "connection_ack"
        assert "errors" not in (await ask(client, "{ viewer { name } }"))["payload"]
        await asyncio.to_thread(world.revoke, key)
        refused = await ask(client, STOP, {"id": world.mine})
        assert [e["extensions"]["code"] for e in errors_of(refused)] == ["UNAUTHENTICATED"]
        code, reason = await until_closed(client)
        assert code == 4403 and "revoked" in reason
    # The refused stopServer never reached the panel.
    status = world.admin(READ, {"id": world.mine})["data"]["server"]["status"]
    assert status != "STOPPING"


@pytest.mark.parametrize("cls", [TransportWS, LegacyWS], ids=["transport-ws", "legacy-ws"])
async def test_revoked_key_ends_a_running_subscription(world: World,
                                                       cls: type[TransportWS]) -> None:
    """No event, no new operation: the subscription's own re-check ends it."""
    key = await asyncio.to_thread(world.gw.create_key, ["server.view"], "sub-revoke")
    async with ws_client(world.gw.url, cls) as client:
        assert (await client.init({"x-api-key": key}))["type"] == "connection_ack"
        await client.subscribe(SERVER_EVENTS)
        await asyncio.to_thread(world.revoke, key)
        message = await client.recv(timeout=15)
        assert [e["extensions"]["code"] for e in errors_of(message)] == ["UNAUTHENTICATED"]
        code, _ = await until_closed(client)
        assert code == 4403


async def test_expired_key_stops_working_on_an_open_socket(world: World) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=1.5)
    key = await asyncio.to_thread(world.gw.create_key, ["server.view"], "ws-expiring",
                                  expires_at=expires)
    async with ws_client(world.gw.url) as client:
        assert (await client.init({"x-api-key": key}))["type"] == "connection_ack"
        assert "errors" not in (await ask(client, "{ viewer { name } }"))["payload"]
        while datetime.now(UTC) < expires + timedelta(seconds=0.1):
            await asyncio.sleep(0.1)
        # The gateway's key cache may hold the key for up to 5 s more: retry until refused.
        deadline = time.monotonic() + 15
        while True:
            answer = await ask(client, "{ viewer { name } }")
            codes = [e["extensions"]["code"] for e in errors_of(answer)]
            if codes:
                break
            assert time.monotonic() < deadline, "an expired key kept querying"
            await asyncio.sleep(0.2)
        assert codes == ["UNAUTHENTICATED"]
        assert (await until_closed(client))[0] == 4403


async def test_rate_limit_applies_per_websocket_operation(world: World) -> None:
    key = await asyncio.to_thread(world.gw.create_key, ["server.view"], "ws-rate",
                                  rate_limit_per_minute=3)
    async with ws_client(world.gw.url) as client:
        await client.init({"x-api-key": key})
        answers = [await ask(client, "{ viewer { name } }") for _ in range(5)]
    codes = [[e["extensions"]["code"] for e in errors_of(a)] for a in answers]
    assert codes[:3] == [[], [], []]
    assert codes[3] == ["RATE_LIMITED"] and codes[4] == ["RATE_LIMITED"]
    limited = errors_of(answers[3])[0]["extensions"]
    assert limited["retryAfter"] >= 1


async def test_moved_server_leaves_reads_actions_and_events_of_an_open_socket(
        world: World) -> None:
    a_key = await asyncio.to_thread(world.gw.create_key, CUSTOMER_SCOPES, "cust-a",
                                    customer_ref="whmcs:1")
    b_key = await asyncio.to_thread(world.gw.create_key, CUSTOMER_SCOPES, "cust-b",
                                    customer_ref="whmcs:2")
    async with ws_client(world.gw.url) as a, ws_client(world.gw.url) as b, \
            ws_client(world.gw.url) as a_events:
        await a.init({"x-api-key": a_key})
        await b.init({"x-api-key": b_key})
        await a_events.init({"x-api-key": a_key})
        before = await ask(a, READ, {"id": world.moving})
        assert before["payload"]["data"]["server"]["id"] == world.moving
        await a_events.subscribe(SERVER_EVENTS)
        await b.subscribe(SERVER_EVENTS)
        # The admin moves the server from whmcs:1 to whmcs:2.
        await asyncio.to_thread(world.link, "unlinkCustomer", "whmcs:1", world.moving)
        await asyncio.to_thread(world.link, "linkCustomer", "whmcs:2", world.moving)
        # Reads and actions on A's already open socket no longer reach it.
        read = await ask(a, READ, {"id": world.moving})
        assert [e["extensions"]["code"] for e in errors_of(read)] == ["NOT_FOUND"]
        acted = await ask(a, STOP, {"id": world.moving})
        assert [e["extensions"]["code"] for e in errors_of(acted)] == ["NOT_FOUND"]
        # Events: the moved server's now go to B only. Then A's own server moves, and that is
        # the first event A sees (had the moved server's leaked, it would have come first).
        await asyncio.sleep(0.5)  # both subscriptions re-check their scope (0.2 s) meanwhile
        await asyncio.to_thread(world.toggle, world.moving)
        seen_by_b = (await b.recv())["payload"]["data"]["serverStatusChanged"]
        assert seen_by_b["id"] == world.moving
        await asyncio.to_thread(world.toggle, world.mine)
        seen_by_a = (await a_events.recv())["payload"]["data"]["serverStatusChanged"]
        assert seen_by_a["id"] == world.mine


async def test_revoked_key_ends_an_sse_subscription(world: World) -> None:
    key = await asyncio.to_thread(world.gw.create_key, ["server.view"], "sse-revoke")
    errors: list[dict[str, Any]] = []
    async with httpx.AsyncClient(timeout=15) as http, http.stream(
            "POST", f"{world.gw.url}/graphql", json={"query": SERVER_EVENTS},
            headers={"accept": "text/event-stream", "x-api-key": key}) as response:
        assert response.status_code == 200
        await asyncio.to_thread(world.revoke, key)
        async for line in response.aiter_lines():
            if line.startswith("data:") and line[5:].strip():
                errors.extend(json.loads(line[5:]).get("errors") or [])
                if errors:
                    break
    assert [e["extensions"]["code"] for e in errors] == ["UNAUTHENTICATED"]

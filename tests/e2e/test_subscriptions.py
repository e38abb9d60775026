"""Subscriptions end to end: real WebSocket clients (both protocols) and SSE over uvicorn."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, serve_sim, start_gateway, wait_for_subscribers
from tests.e2e.wsclient import LegacyWS, TransportWS, ws_client

SERVER_EVENTS = """subscription($f: StatusEventFilter) { serverStatusChanged(filter: $f) {
  id provider status previous source deleted } }"""


@pytest.fixture(scope="module")
def gw(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[GatewayUnderTest]:
    sim = CatalystSim(servers=4, nodes=2)
    sim.knobs.transition_seconds = 0.3
    entry = serve_sim(background, "cat-subs", sim, "catalyst", {"api_key": sim.api_key})
    yield start_gateway(background, "gw-subs", {"cat-subs": sim}, [entry],
                        tmp_path_factory.mktemp("subs") / "subs.db",
                        operation_poll_seconds=0.05)


def stopped_server(gw: GatewayUnderTest) -> str:
    body = gw.query('{ servers(filter: {status: [STOPPED]}) { edges { node { id } } } }')
    return body["data"]["servers"]["edges"][0]["node"]["id"]  # type: ignore[no-any-return]


def start(gw: GatewayUnderTest, server_id: str) -> None:
    body = gw.query("mutation($id: ID!) { startServer(id: $id) { replayed } }", {"id": server_id})
    assert "errors" not in body, body


def stop(gw: GatewayUnderTest, server_id: str) -> None:
    body = gw.query("mutation($id: ID!) { stopServer(id: $id) { operation { id } } }",
                    {"id": server_id})
    assert "errors" not in body, body


@pytest.mark.parametrize("cls", [TransportWS, LegacyWS], ids=["transport-ws", "legacy-ws"])
async def test_start_mutation_yields_starting_then_running(
        gw: GatewayUnderTest, cls: type[TransportWS]) -> None:
    server_id = await asyncio.to_thread(stopped_server, gw)
    async with ws_client(gw.url, cls) as client:
        assert (await client.init({"x-api-key": gw.admin_key}))["type"] == "connection_ack"
        op = await client.subscribe(SERVER_EVENTS, {"f": {"ids": [server_id]}})
        await wait_for_subscribers(gw, "server", 1)
        await asyncio.to_thread(start, gw, server_id)
        first, second = await client.recv(), await client.recv()
        events = [m["payload"]["data"]["serverStatusChanged"] for m in (first, second)]
        assert [(e["previous"], e["status"]) for e in events] == [
            ("STOPPED", "STARTING"), ("STARTING", "RUNNING")]
        assert {e["source"] for e in events} == {"MUTATION"}
        assert all(e["id"] == server_id for e in events)
        await client.complete(op)
    await asyncio.to_thread(stop, gw, server_id)
    await asyncio.sleep(1)


async def test_filters_keep_other_servers_out(gw: GatewayUnderTest) -> None:
    server_id = await asyncio.to_thread(stopped_server, gw)
    async with ws_client(gw.url) as client:
        await client.init({"x-api-key": gw.admin_key})
        await client.subscribe(SERVER_EVENTS, {"f": {"status": ["ERROR"]}})
        await client.subscribe(SERVER_EVENTS, {"f": {"status": ["RUNNING"]}})
        await wait_for_subscribers(gw, "server", 2)
        await asyncio.to_thread(start, gw, server_id)
        message = await client.recv()
        assert message["id"] == "2"
        assert message["payload"]["data"]["serverStatusChanged"]["status"] == "RUNNING"
    await asyncio.to_thread(stop, gw, server_id)
    await asyncio.sleep(1)


async def test_bad_filter_id_is_a_coded_error(gw: GatewayUnderTest) -> None:
    async with ws_client(gw.url) as client:
        await client.init({"x-api-key": gw.admin_key})
        await client.subscribe(SERVER_EVENTS, {"f": {"ids": ["garbage"]}})
        message = await client.recv()
        assert message["type"] in ("error", "next")
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_operation_updates_over_sse(gw: GatewayUnderTest) -> None:
    server_id = await asyncio.to_thread(stopped_server, gw)
    seen: list[str] = []
    async with httpx.AsyncClient(timeout=15) as client, client.stream(
            "POST", f"{gw.url}/graphql",
            json={"query": "subscription { operationUpdated { action status } }"},
            headers={"accept": "text/event-stream", "x-api-key": gw.admin_key}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        await asyncio.sleep(0.2)
        asyncio.get_running_loop().run_in_executor(None, start, gw, server_id)
        async for line in response.aiter_lines():
            if line.startswith("data:") and line[5:].strip():
                data = json.loads(line[5:])
                if "data" in data:
                    seen.append(data["data"]["operationUpdated"]["status"])
            if "SUCCEEDED" in seen:
                break
    assert seen[0] in ("RUNNING", "PENDING") and seen[-1] == "SUCCEEDED"
    await asyncio.to_thread(stop, gw, server_id)
    await asyncio.sleep(1)


async def test_disconnect_cleans_up_subscribers(gw: GatewayUnderTest) -> None:
    async with ws_client(gw.url) as client:
        await client.init({"x-api-key": gw.admin_key})
        await client.subscribe(SERVER_EVENTS)
        await asyncio.sleep(0.2)
        during = await asyncio.to_thread(_subscriber_count, gw)
        assert during >= 1
    for _ in range(50):
        if await asyncio.to_thread(_subscriber_count, gw) == during - 1:
            break
        await asyncio.sleep(0.05)
    assert await asyncio.to_thread(_subscriber_count, gw) == during - 1


def _subscriber_count(gw: GatewayUnderTest) -> int:
    body = gw.query("{ viewer { name } }")
    assert "data" in body
    from tests.e2e.harness import gateway_of
    return len(gateway_of(gw).bus.subscribers)  # type: ignore[attr-defined]


@pytest.mark.parametrize("cls", [TransportWS, LegacyWS], ids=["transport-ws", "legacy-ws"])
async def test_websocket_without_a_key_is_refused(gw: GatewayUnderTest,
                                                  cls: type[TransportWS]) -> None:
    from websockets.exceptions import ConnectionClosed

    async with ws_client(gw.url, cls) as client:
        try:
            reply = await client.init({"x-api-key": "pql_wrong"})
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 4403
            return
        assert reply["type"] == "connection_error"
        assert reply["payload"]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_key_in_websocket_headers_works(gw: GatewayUnderTest) -> None:
    async with ws_client(gw.url, **{"x-api-key": gw.admin_key}) as client:
        assert (await client.init())["type"] == "connection_ack"


async def test_legacy_protocol_refuses_queries_with_a_code_and_no_error_log(
        gw: GatewayUnderTest, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with ws_client(gw.url, LegacyWS) as client:
        assert (await client.init({"x-api-key": gw.admin_key}))["type"] == "connection_ack"
        await client.subscribe("{ servers(first: 1) { totalCount } }")
        message = await client.recv()
    assert message["type"] == "error"
    assert message["payload"]["extensions"] == {"code": "BAD_USER_INPUT"}
    assert "graphql-transport-ws" in message["payload"]["message"]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("cls", [TransportWS, LegacyWS], ids=["transport-ws", "legacy-ws"])
async def test_bad_key_is_refused_as_documented(gw: GatewayUnderTest,
                                                cls: type[TransportWS]) -> None:
    async with ws_client(gw.url, cls) as client:
        if cls is LegacyWS:
            refused = await client.init({"x-api-key": "pql_unknown_key"})
            assert refused["type"] == "connection_error"
            assert refused["payload"]["extensions"]["code"] == "UNAUTHENTICATED"
        else:
            with pytest.raises(ConnectionClosed) as closed:
                await client.init({"x-api-key": "pql_unknown_key"})
                await client.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


@pytest.mark.parametrize("cls", [TransportWS, LegacyWS], ids=["transport-ws", "legacy-ws"])
async def test_messages_are_text_frames(gw: GatewayUnderTest, cls: type[TransportWS]) -> None:
    # Browsers' graphql-ws clients JSON.parse each frame: a binary frame arrives as a Blob and
    # the client gives up (the dashboard once stayed "disconnected" while Python clients, which
    # parse bytes as readily as text, saw nothing wrong).
    async with ws_client(gw.url, cls) as client:
        await client.ws.send(json.dumps({"type": "connection_init",
                                         "payload": {"x-api-key": gw.admin_key}}))
        ack = await asyncio.wait_for(client.ws.recv(), 10)
        assert isinstance(ack, str) and json.loads(ack)["type"] == "connection_ack"
        await client.subscribe("subscription { serverStatusChanged(filter: {ids: [\"x\"]}) "
                               "{ id } }")
        error = await asyncio.wait_for(client.ws.recv(), 10)
        assert isinstance(error, str), error

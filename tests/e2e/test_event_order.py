"""Status events for one resource form a chain: each event's ``previous`` is the status of the
event before it, whichever source (mutation, operation follower, watcher) announced it, and no
observed transition is dropped or repeated. Transitions are fast here on purpose."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, serve_sim, start_gateway, wait_for_subscribers
from tests.e2e.wsclient import ws_client

EVENTS = """subscription($f: StatusEventFilter) { serverStatusChanged(filter: $f) {
  id status previous source } }"""


@pytest.fixture(scope="module")
def gw(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[GatewayUnderTest]:
    sim = CatalystSim(servers=4, nodes=2)
    sim.knobs.transition_seconds = 0.3
    entry = serve_sim(background, "cat-order", sim, "catalyst", {"api_key": sim.api_key})
    yield start_gateway(background, "gw-order", {"cat-order": sim}, [entry],
                        tmp_path_factory.mktemp("order") / "order.db",
                        operation_poll_seconds=0.05,
                        watcher={"enabled": True, "fast_seconds": 0.1, "slow_seconds": 0.5,
                                 "lease_seconds": 1.0})


def _running(gw: GatewayUnderTest) -> str:
    body = gw.query('{ servers(filter: {status: [RUNNING]}) { edges { node { id } } } }')
    return str(body["data"]["servers"]["edges"][0]["node"]["id"])


def _act(gw: GatewayUnderTest, action: str, server_id: str) -> None:
    body = gw.query(f"mutation($id: ID!) {{ {action}(id: $id) {{ operation {{ id }} }} }}",
                    {"id": server_id})
    assert "errors" not in body, body


async def _until(client: Any, status: str, seen: list[dict[str, Any]]) -> None:
    while not seen or seen[-1]["status"] != status:
        message = await asyncio.wait_for(client.recv(), 30)  # a safety net, not a measure
        seen.append(message["payload"]["data"]["serverStatusChanged"])


@pytest.mark.parametrize("pause", [0.0, 0.3], ids=["at-once", "after-a-moment"])
async def test_stop_then_start_is_one_chain(gw: GatewayUnderTest, pause: float) -> None:
    server_id = await asyncio.to_thread(_running, gw)
    seen: list[dict[str, Any]] = []
    async with ws_client(gw.url) as client:
        await client.init({"x-api-key": gw.admin_key})
        await client.subscribe(EVENTS, {"f": {"ids": [server_id]}})
        await wait_for_subscribers(gw, "server", 1)
        await asyncio.to_thread(_act, gw, "stopServer", server_id)
        await _until(client, "STOPPED", seen)
        await asyncio.sleep(pause)
        await asyncio.to_thread(_act, gw, "startServer", server_id)
        await _until(client, "RUNNING", seen)
        await asyncio.sleep(0.5)  # a late duplicate from the watcher would arrive by now
        while True:
            try:
                message = await asyncio.wait_for(client.recv(), 0.5)
            except TimeoutError:
                break
            seen.append(message["payload"]["data"]["serverStatusChanged"])
    pairs = [(e["previous"], e["status"]) for e in seen]
    assert pairs == [("RUNNING", "STOPPING"), ("STOPPING", "STOPPED"),
                     ("STOPPED", "STARTING"), ("STARTING", "RUNNING")], seen

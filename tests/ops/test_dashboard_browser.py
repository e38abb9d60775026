"""examples/dashboard/index.html in headless Chromium against a live gateway: the page connects
over graphql-transport-ws, lists the servers, and a server stopped through the API changes its
row without a reload. Chromium is driven over the DevTools protocol with the websockets library.

Needs Debian's chromium (`.ci/run` installs it); skips with the reason where it is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, serve_sim, start_gateway
from tests.ops.browser import STATUS, browser

PAGE = Path(__file__).resolve().parents[2] / "examples" / "dashboard" / "index.html"
ROWS = ("[...document.querySelectorAll('#rows tr')].map(r => [...r.children]"
        ".map(c => c.textContent))")


@pytest.fixture(scope="module")
def board(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[GatewayUnderTest, CatalystSim]]:
    sim = CatalystSim(servers=5, nodes=2)
    sim.knobs.transition_seconds = 0.2
    entry = serve_sim(background, "cat-board", sim, "catalyst", {"api_key": sim.api_key})
    gw = start_gateway(background, "gw-board", {entry.name: sim}, [entry],
                       tmp_path_factory.mktemp("board") / "board.db",
                       operation_poll_seconds=0.05, ws_allowed_origins=["*"])
    yield gw, sim


async def test_dashboard_lists_servers_and_follows_a_stop(
        board: tuple[GatewayUnderTest, CatalystSim]) -> None:
    gw, sim = board
    key = gw.create_key(["server.view"], name="board")
    ws_url = gw.url.replace("http://", "ws://") + "/graphql"
    async with browser(f"{PAGE.as_uri()}#url={ws_url}&key={key}") as page:
        await page.wait_for(f"{STATUS} === 'live'", explain=STATUS)
        rows = await page.wait_for(f"{ROWS}.length === 5 && {ROWS}")
        names = sorted(r[0] for r in rows)
        assert names == sorted(s.name for s in sim.servers.values())
        running = next(s for s in sim.servers.values() if s.status == "running")
        assert [r[3] for r in rows if r[0] == running.name] == ["RUNNING"]

        listing = gw.query('{ servers { edges { node { id name } } } }')
        server_id = next(e["node"]["id"] for e in listing["data"]["servers"]["edges"]
                         if e["node"]["name"] == running.name)
        stopped = gw.query('mutation($id: ID!) { stopServer(id: $id) { operation { id } } }',
                           {"id": server_id})
        assert "errors" not in stopped, stopped
        # The row follows the events: STOPPING, then STOPPED once the panel has stopped it.
        row_status = f"{ROWS}.find(r => r[0] === {json.dumps(running.name)})[3]"
        await page.wait_for(f"{row_status} === 'STOPPED'")
        assert await page.evaluate(f"{ROWS}.length") == 5

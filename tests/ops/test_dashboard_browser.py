"""examples/dashboard/index.html in headless Chromium against a live gateway: the page connects
over graphql-transport-ws, lists the servers, and a server stopped through the API changes its
row without a reload. Chromium is driven over the DevTools protocol with the websockets library.

Needs Debian's chromium (`.ci/run` installs it); skips with the reason where it is missing.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, serve_sim, start_gateway

STATUS = "document.getElementById('status').textContent"
PAGE = Path(__file__).resolve().parents[2] / "examples" / "dashboard" / "index.html"
ROWS = ("[...document.querySelectorAll('#rows tr')].map(r => [...r.children]"
        ".map(c => c.textContent))")


class Page:
    """One Chromium tab over the DevTools protocol: just Runtime.evaluate."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def evaluate(self, expression: str) -> Any:
        call_id = next(self.ids)
        await self.ws.send(json.dumps({"id": call_id, "method": "Runtime.evaluate", "params": {
            "expression": expression, "returnByValue": True}}))
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
            if message.get("id") == call_id:
                return message["result"]["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 15) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.1)
        status = await self.evaluate(STATUS)
        raise AssertionError(f"never true in the page: {expression}; status: {status}")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium (apt-get install chromium to run the dashboard in a browser)")


@asynccontextmanager
async def browser(url: str) -> AsyncIterator[Page]:
    profile = tempfile.mkdtemp(prefix="panelql-chromium-")
    process = subprocess.Popen(
        [_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
         "--remote-debugging-port=0", f"--user-data-dir={profile}", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or process.poll() is not None:
                raise AssertionError("Chromium did not open its DevTools port")
            await asyncio.sleep(0.1)
        port = port_file.read_text().split()[0]
        async with httpx.AsyncClient() as http:
            targets = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
        tab = next(t for t in targets if t["type"] == "page")
        async with connect(tab["webSocketDebuggerUrl"], max_size=None) as ws:
            yield Page(ws)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(profile, ignore_errors=True)


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
        await page.wait_for(f"{STATUS} === 'live'")
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

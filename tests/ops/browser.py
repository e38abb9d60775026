"""Headless Chromium driven over the DevTools protocol with the websockets library, for the
pages the gateway serves or ships (GraphiQL, the dashboard example). Needs Debian's chromium
(`.ci/run` installs it); tests skip with the reason where it is missing."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

STATUS = "document.getElementById('status').textContent"
PAGE_TEXT = "document.body ? document.body.innerText.slice(0, 400) : ''"


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

    async def wait_for(self, expression: str, timeout: float = 30,
                       explain: str = PAGE_TEXT) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.1)
        seen = await self.evaluate(explain)
        raise AssertionError(f"never true in the page: {expression}; the page shows: {seen}")


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
        # No host but loopback resolves: a page that needs the internet fails here as it would
        # offline. Background networking off, so Chromium itself asks nothing of the network.
        [_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
         "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run",
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

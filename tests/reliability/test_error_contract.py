"""One error contract on every transport: queries over WebSocket and SSE carry the per-panel
errors and the masked, coded INTERNAL errors exactly as over HTTP.

Before, streamed results went out before ErrorShaping ran (it ran when the operation ended):
per-panel errors were dropped, so a partial answer looked complete, and an internal error went
out with its raw message and no code.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import gateway_of
from tests.e2e.wsclient import ws_client
from tests.reliability.conftest import RESILIENCE, Pair, two_panels

SERVERS = "query Servers { servers(first: 100) { totalCount } }"
HEALTH = "query Health { providers { name health { ok } } }"


@pytest.fixture(scope="module")
def pair(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Pair]:
    yield two_panels(background, "contract", tmp_path_factory.mktemp("contract") / "c.db",
                     {**RESILIENCE, "retries": 0})


async def over_http(pair: Pair, query: str) -> dict[str, Any]:
    return await asyncio.to_thread(pair.gw.query, query)


async def over_ws(pair: Pair, query: str) -> dict[str, Any]:
    async with ws_client(pair.gw.url) as client:
        await client.init({"x-api-key": pair.gw.admin_key})
        await client.subscribe(query)
        message = await client.recv()
    assert message["type"] == "next", message
    payload: dict[str, Any] = message["payload"]
    return payload


async def over_sse(pair: Pair, query: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=15) as http, http.stream(
            "POST", f"{pair.gw.url}/graphql", json={"query": query},
            headers={"accept": "text/event-stream", "x-api-key": pair.gw.admin_key}) as response:
        async for line in response.aiter_lines():
            if line.startswith("data:") and line[5:].strip():
                body: dict[str, Any] = json.loads(line[5:])
                return body
    raise AssertionError("no event")


TRANSPORTS = {"http": over_http, "graphql-transport-ws": over_ws, "sse": over_sse}


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
async def test_per_panel_errors_on_every_transport(pair: Pair, transport: str) -> None:
    pair.bad.knobs.fail_status = 503
    body = await TRANSPORTS[transport](pair, SERVERS)
    assert body["data"]["servers"]["totalCount"] == len(pair.ok.servers)
    assert [(e["extensions"]["code"], e["extensions"]["provider"]) for e in body["errors"]] == [
        ("PROVIDER_UNAVAILABLE", "contract-bad")]


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
async def test_internal_errors_are_masked_on_every_transport(
        pair: Pair, transport: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(provider: Any) -> Any:
        raise RuntimeError("db password=hunter2 in a stack trace")

    monkeypatch.setattr(gateway_of(pair.gw), "health", broken)
    body = await TRANSPORTS[transport](pair, HEALTH)
    assert "hunter2" not in json.dumps(body)
    codes = {e["extensions"]["code"] for e in body["errors"]}
    assert codes == {"INTERNAL"}
    assert all(e["message"].startswith("Internal error (id ") and e["extensions"]["errorId"]
               for e in body["errors"])

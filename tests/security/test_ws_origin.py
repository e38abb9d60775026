"""Which browser pages may open subscription WebSockets (settings.ws_allowed_origins).

Browsers apply no CORS to WebSocket handshakes but do send Origin. By default only pages from
the gateway's own origin (and clients that send no Origin: servers, CLIs) get through; a listed
origin, or "*" (file:// pages send "null"), widens that. A key is needed either way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers
from tests.e2e.harness import GatewayUnderTest, serve_sim, start_gateway
from tests.e2e.wsclient import TransportWS


@pytest.fixture(scope="module")
def gateways(background: BackgroundServers, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[dict[str, GatewayUnderTest]]:
    sim = CatalystSim(servers=2, nodes=1)
    entry = serve_sim(background, "cat-origin", sim, "catalyst", {"api_key": sim.api_key})
    tmp: Path = tmp_path_factory.mktemp("origin")
    yield {
        "default": start_gateway(background, "gw-origin-default", {entry.name: sim}, [entry],
                                 tmp / "default.db"),
        "listed": start_gateway(background, "gw-origin-listed", {entry.name: sim}, [entry],
                                tmp / "listed.db",
                                ws_allowed_origins=["https://status.example.com"]),
    }


async def _ack(gw: GatewayUnderTest, origin: str | None) -> str:
    """"ack", or the HTTP status the handshake was refused with."""
    url = gw.url.replace("http://", "ws://") + "/graphql"
    headers = {"Origin": origin} if origin else None
    try:
        async with connect(url, subprotocols=[TransportWS.protocol],  # type: ignore[list-item]
                           additional_headers=headers) as ws:
            reply = await TransportWS(ws).init({"x-api-key": gw.admin_key})
            return "ack" if reply["type"] == "connection_ack" else str(reply)
    except InvalidStatus as exc:
        return str(exc.response.status_code)


@pytest.mark.parametrize(("config", "origin", "expected"), [
    ("default", None, "ack"),                            # a server or CLI: no Origin at all
    ("default", "same", "ack"),                          # a page the gateway itself served
    ("default", "https://evil.example", "403"),
    ("default", "null", "403"),                          # a file:// page
    ("listed", "https://status.example.com", "ack"),
    ("listed", "https://evil.example", "403"),
])
async def test_origin_policy(gateways: dict[str, GatewayUnderTest], config: str,
                             origin: str | None, expected: str) -> None:
    gw = gateways[config]
    assert await _ack(gw, gw.url if origin == "same" else origin) == expected

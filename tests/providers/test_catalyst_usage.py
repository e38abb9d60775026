"""Catalyst usage beyond memory and CPU: players online and the disk the metrics count against.

``playerCount`` is in seed 000's status examples ("Bulk Status Check" reads it from
``GET /api/servers``) but not in the server list of routes/servers/core.ts @747660b5, which the
simulator follows; so the field is checked here against a hand-written payload in the seed's
shape (tests/fixtures/catalyst/servers_seed000_players.json), and against the simulator for
being absent (null, never a made-up 0).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import respx

from panelql.providers.catalyst.adapter import CatalystProvider
from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers
from tests.providers.helpers import builder, fixture

BASE = "http://catalyst.test"


@pytest.fixture(scope="module")
def sim(background: BackgroundServers) -> Iterator[tuple[CatalystSim, str]]:
    panel = CatalystSim(servers=4)
    yield panel, background.serve("catalyst-usage", panel.app()).url


@respx.mock
async def test_player_count_and_limits_from_the_seed_shape() -> None:
    respx.get(f"{BASE}/api/servers").mock(return_value=httpx.Response(
        200, json=fixture("catalyst", "servers_seed000_players.json")))
    provider = builder("catalyst", BASE, api_key="catalyst_k")()
    assert isinstance(provider, CatalystProvider)
    (server,) = await provider.list_servers()
    assert server.usage is not None
    assert server.usage.player_count == 12
    assert server.usage.limits is not None
    assert server.usage.limits.disk_mb == 10240 and server.usage.limits.memory_mb == 4096


async def test_the_upstream_list_has_no_player_count(sim: tuple[CatalystSim, str]) -> None:
    panel, url = sim
    provider = builder("catalyst", url, api_key=panel.api_key)()
    assert isinstance(provider, CatalystProvider)
    servers = await provider.list_servers()
    assert servers and all(s.usage is not None and s.usage.player_count is None
                           for s in servers)
    raw = {s.id: s for s in panel.servers.values()}
    for server in servers:
        assert server.usage is not None and server.usage.limits is not None
        assert server.usage.limits.disk_mb == raw[server.id].disk_mb

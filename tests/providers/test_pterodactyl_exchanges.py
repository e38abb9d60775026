"""Pterodactyl subusers as pterodactyl/panel @706db62c handles them: the recorded exchanges
(tests/providers/exchanges/pterodactyl.py) replayed against the adapter with respx and sent
to the simulator, which must answer alike (unknown names dropped, never a 422)."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from panelql.application.account_actions import SERVER_PERMISSIONS
from panelql.providers.pterodactyl.adapter import PterodactylProvider
from panelql.providers.pterodactyl.mapping import PANEL_PERMISSIONS, subuser_permissions
from panelql_sim.pterodactyl import PterodactylSim
from tests.providers.exchanges import Exchange, fill, shape_matches
from tests.providers.exchanges.pterodactyl import APP_KEY, BASIC, BY_NAME, CLIENT_KEY, EXCHANGES
from tests.providers.helpers import builder, fixture

BASE = "http://ptero.recorded"
SEED_SETS = {
    "view_only": ["server.view", "console.read", "file.read"],
    "basic_management": ["server.start", "server.stop", "server.restart", "console.read",
                         "console.write"],
    "full_access": ["server.start", "server.stop", "server.restart", "console.read",
                    "console.write", "file.read", "file.write", "file.delete",
                    "backup.create", "backup.restore"],
}


def sim_ids(sim: PterodactylSim, name: str) -> dict[str, str]:
    user_id, user = next((i, u) for i, u in sim.users.items() if not u.get("root_admin"))
    server = next(s for s in sim.servers.values() if s.user_id != user_id)
    server.subusers.pop(user["uuid"], None)
    if name in ("update_subuser", "update_subuser_empty", "list_subusers", "delete_subuser"):
        server.subusers[user["uuid"]] = list(BASIC)
    return {"server": server.identifier, "user_uuid": user["uuid"], "email": user["email"]}


@pytest.mark.parametrize("exchange", EXCHANGES, ids=lambda e: e.name)
async def test_simulator_answers_like_the_upstream(exchange: Exchange) -> None:
    sim = PterodactylSim(application_key=APP_KEY, client_key=CLIENT_KEY)
    ids = sim_ids(sim, exchange.name)
    transport = httpx.ASGITransport(app=sim.app())
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
        response = await http.request(
            exchange.method, exchange.path.format(**ids), headers=exchange.headers,
            json=fill(exchange.request, ids) if exchange.request is not None else None)
    assert response.status_code == exchange.status, (exchange.source, response.text)
    if exchange.response is None:
        assert not response.content
        return
    body = response.json()
    if exchange.status >= 400:
        assert body == exchange.response, exchange.source
        return
    assert shape_matches(exchange.response, body), (exchange.source, body)
    if "permissions" in exchange.response.get("attributes", {}):
        assert body["attributes"]["permissions"] == exchange.response["attributes"]["permissions"]


@pytest.mark.parametrize("name", sorted(SEED_SETS))
def test_every_seed_permission_maps_to_panel_names(name: str) -> None:
    sent, unmapped = subuser_permissions(SEED_SETS[name])
    assert unmapped == [] and set(sent) <= PANEL_PERMISSIONS
    if "console.read" in SEED_SETS[name]:
        assert "websocket.connect" in sent
    if "console.write" in SEED_SETS[name]:
        assert "control.console" in sent
    if "file.write" in SEED_SETS[name]:
        assert {"file.create", "file.update"} <= set(sent)


def test_every_gateway_permission_is_mapped_or_reported() -> None:
    for name in sorted(SERVER_PERMISSIONS):
        sent, unmapped = subuser_permissions([name])
        assert set(sent) <= PANEL_PERMISSIONS
        # A subuser can never delete the server; every other name has an equivalent.
        assert unmapped == ([name] if name == "server.delete" else [])


@pytest.fixture
def provider() -> PterodactylProvider:
    built = builder("pterodactyl", BASE, lean=False,  # a respx replay
                    application_key=APP_KEY, client_key=CLIENT_KEY)()
    assert isinstance(built, PterodactylProvider)
    return built


def _app_lookups() -> None:
    server = fixture("pterodactyl", "servers_page1.json")["data"][0]
    respx.get(f"{BASE}/api/application/servers/5").mock(
        return_value=httpx.Response(200, json=server))
    respx.get(f"{BASE}/api/application/users/2").mock(
        return_value=httpx.Response(200, json=fixture("pterodactyl", "users.json")["data"][1]))


@respx.mock
async def test_grant_sends_the_basic_management_set_as_panel_names(
        provider: PterodactylProvider) -> None:
    _app_lookups()
    respx.get(f"{BASE}/api/client/servers/1a7ce997/users").mock(
        return_value=httpx.Response(200, json={"object": "list", "data": []}))
    exchange = BY_NAME["create_subuser"]
    route = respx.post(f"{BASE}{exchange.recorded_path()}").mock(
        return_value=httpx.Response(exchange.status, json=exchange.response))
    grant = await provider.grant_access("5", "2", SEED_SETS["basic_management"])
    assert json.loads(route.calls.last.request.content) == exchange.recorded_request()
    assert grant.permissions == BASIC and grant.unmapped == []


@respx.mock
async def test_names_without_equivalent_are_reported_not_sent(
        provider: PterodactylProvider) -> None:
    _app_lookups()
    listed = BY_NAME["list_subusers"]
    respx.get(f"{BASE}{listed.recorded_path()}").mock(
        return_value=httpx.Response(200, json=listed.response))
    exchange = BY_NAME["update_subuser"]
    route = respx.post(f"{BASE}{exchange.recorded_path()}").mock(
        return_value=httpx.Response(exchange.status, json=exchange.response))
    grant = await provider.grant_access("5", "2", ["console.write", "server.delete"])
    assert json.loads(route.calls.last.request.content) == exchange.recorded_request()
    assert grant.unmapped == ["server.delete"]


@respx.mock
async def test_revoke_of_a_non_subuser_is_a_no_op(provider: PterodactylProvider) -> None:
    _app_lookups()
    respx.get(f"{BASE}/api/client/servers/1a7ce997/users").mock(
        return_value=httpx.Response(200, json={"object": "list", "data": []}))
    delete = BY_NAME["delete_subuser"]
    route = respx.delete(f"{BASE}{delete.recorded_path()}").mock(
        return_value=httpx.Response(204))
    assert await provider.revoke_access("5", "2") is False
    assert not route.called

"""Catalyst as catalystctl/catalyst @747660b5 speaks it: recorded exchanges (read from the
upstream's routes, validation schema and serializers; see tests/providers/exchanges/catalyst.py)
replayed against the adapter with respx, and sent to the simulator, which must answer alike."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from panelql.domain.records import AccountSpec, Resources, ServerSpec
from panelql.providers import errors
from panelql.providers.catalyst.adapter import CatalystProvider
from panelql.providers.catalyst.mapping import access_permissions
from panelql_sim.catalyst import CatalystSim
from tests.providers.exchanges import Exchange, fill, shape_matches
from tests.providers.exchanges.catalyst import BY_NAME, EXCHANGES, IDS, KEY
from tests.providers.helpers import builder

BASE = "http://catalyst.recorded"

# The seed's "Common Permission Sets" (seeds/000, section "Grant Server Access").
SEED_SETS = {
    "view_only": ["server.view", "console.read", "file.read"],
    "basic_management": ["server.start", "server.stop", "server.restart", "console.read",
                         "console.write"],
    "full_access": ["server.start", "server.stop", "server.restart", "console.read",
                    "console.write", "file.read", "file.write", "file.delete",
                    "backup.create", "backup.restore"],
}


@pytest.fixture
def provider() -> CatalystProvider:
    built = builder("catalyst", BASE, lean=False, api_key=KEY)()  # a respx replay
    assert isinstance(built, CatalystProvider)
    return built


def mock(exchange: Exchange) -> respx.Route:
    return respx.request(exchange.method, BASE + exchange.recorded_path()).mock(
        return_value=httpx.Response(exchange.status, json=exchange.response))


def sent(route: respx.Route) -> Any:
    return json.loads(route.calls.last.request.content)


# -- the simulator answers every recorded exchange alike --------------------------------------
def sim_ids(sim: CatalystSim, name: str) -> dict[str, str]:
    """Placeholders filled from the simulator's own data, arranged for the exchange."""
    servers = list(sim.servers.values())
    own = next(s for s in servers if s.owner_id == sim.key_user)
    own.status, own.suspended_at, own.suspension_reason = "stopped", None, None
    other = next(s for s in servers if s.owner_id != sim.key_user)
    nobackup = next(s for s in servers if s.owner_id != sim.key_user and s is not other)
    nobackup.status, nobackup.suspended_at, nobackup.backup_allocation_mb = "stopped", None, 0
    user = next(u for u in sim.users if u != sim.key_user)
    node = own.node_id
    ids = {"node": node, "server": own.id, "other": other.id, "nobackup": nobackup.id,
           "user": user, "owner": sim.key_user, "location": sim.nodes[node]["locationId"]}
    if name in ("revoke_access", "list_access"):
        own.access[user] = sim._access_row(own.id, user, ["server.read", "console.read"])
    return ids


@pytest.mark.parametrize("exchange", EXCHANGES, ids=lambda e: e.name)
async def test_simulator_answers_like_the_upstream(exchange: Exchange) -> None:
    sim = CatalystSim(api_key=KEY, servers=8, nodes=2, users=3)
    ids = sim_ids(sim, exchange.name)
    transport = httpx.ASGITransport(app=sim.app())
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
        response = await http.request(
            exchange.method, exchange.path.format(**ids), headers=exchange.headers,
            json=fill(exchange.request, ids) if exchange.request is not None else None)
    assert response.status_code == exchange.status, (exchange.source, response.text)
    body = response.json()
    if exchange.status >= 400:
        assert body == exchange.response, exchange.source
    else:
        assert shape_matches(exchange.response, body), (exchange.source, body)


# -- the adapter sends what the routes validate and reads what they answer --------------------
@respx.mock
async def test_bearer_key_and_rejected_key(provider: CatalystProvider) -> None:
    bad = BY_NAME["bad_key"]
    route = respx.get(f"{BASE}/api/servers").mock(
        return_value=httpx.Response(bad.status, json=bad.response))
    with pytest.raises(errors.AuthenticationFailed) as info:
        await provider.list_servers()
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert "x-api-key" not in request.headers
    assert info.value.extensions["code"] == "PROVIDER_ERROR"
    assert info.value.extensions["reason"] == "AUTHENTICATION"


@respx.mock
async def test_nodes_carry_the_location_name_as_region(provider: CatalystProvider) -> None:
    mock(BY_NAME["list_nodes"])
    mock(BY_NAME["list_servers"])
    (node,) = await provider.list_nodes()
    assert node.region == "us-east" and node.region_id == "cmloc0001"
    assert node.allocated.memory_mb == 4096 and node.server_ids == ["cmsrv0001"]


@respx.mock
async def test_servers_read_owner_and_connection(provider: CatalystProvider) -> None:
    mock(BY_NAME["list_servers"])
    (server,) = await provider.list_servers()
    assert server.addresses == ["203.0.113.10:25565"]
    assert server.owner_id == "cmuser0001" and server.node_id == "cmnode0001"
    assert server.resources == Resources(memory_mb=4096, cpu_cores=2, disk_mb=10240)
    assert server.usage is not None and server.usage.cpu_percent == 45.2


def spec(cpu: float = 2, **options: object) -> ServerSpec:
    return ServerSpec(name="Customer 12345", node_id=IDS["node"], owner_id=IDS["owner"],
                      resources=Resources(memory_mb=4096, cpu_cores=cpu, disk_mb=10240),
                      template="cmtpl0minecraftpaper", ports=[25565], options=dict(options))


@respx.mock
async def test_create_sends_what_server_create_schema_validates(
        provider: CatalystProvider) -> None:
    mock(BY_NAME["get_node"])
    exchange = BY_NAME["create_server"]
    route = mock(exchange)
    install = mock(BY_NAME["install"])
    created = await provider.create_server(spec())
    assert sent(route) == exchange.recorded_request()
    assert created.id == "cmsrv0001" and created.owner_id == "cmuser0001"
    assert created.addresses == ["203.0.113.10:25565"]
    # The create route stores a stopped server; like the panel's UI, PanelQL installs it.
    assert install.called and created.raw_status == "installing"


@respx.mock
async def test_fractional_cpu_is_refused_before_any_call(provider: CatalystProvider) -> None:
    with pytest.raises(errors.InvalidRequest) as info:
        await provider.create_server(spec(cpu=1.5))
    with pytest.raises(errors.InvalidRequest):
        await provider.resize_server("cmsrv0001", Resources(cpu_cores=2.5))
    assert info.value.extensions["code"] == "BAD_USER_INPUT"
    assert info.value.extensions["field"] == "resources.cpuCores"
    assert not respx.calls  # nothing reached the panel


@respx.mock
async def test_validation_details_reach_the_error(provider: CatalystProvider) -> None:
    mock(BY_NAME["get_node"])
    mock(BY_NAME["create_server_without_location"])
    with pytest.raises(errors.InvalidRequest) as info:
        await provider.create_server(spec())
    ext = info.value.extensions
    assert ext["code"] == "BAD_USER_INPUT" and ext["field"] == "placement.region"
    assert ext["fields"] == {"placement.region":
                             "Invalid input: expected string, received undefined"}
    assert "Invalid request body" in info.value.message


@pytest.mark.parametrize("name", sorted(SEED_SETS))
def test_every_seed_permission_set_maps_to_catalyst_names(name: str) -> None:
    granted, unmapped = access_permissions(SEED_SETS[name])
    assert unmapped == []
    assert "server.view" not in granted and "server.restart" not in granted
    if "server.restart" in SEED_SETS[name]:
        assert {"server.start", "server.stop"} <= set(granted)
    if "file.delete" in SEED_SETS[name]:
        assert "file.write" in granted


@respx.mock
async def test_grant_sends_target_user_id(provider: CatalystProvider) -> None:
    exchange = BY_NAME["grant_access"]
    route = mock(exchange)
    grant = await provider.grant_access("cmsrv0001", IDS["user"],
                                        ["server.view", "console.read", "file.read"])
    assert sent(route) == exchange.recorded_request()
    assert grant.permissions == ["server.read", "console.read", "file.read"]
    assert grant.unmapped == []


@respx.mock
async def test_owner_only_rule_is_forbidden_with_the_panels_word(
        provider: CatalystProvider) -> None:
    exchange = BY_NAME["grant_access_not_owner"]
    mock(exchange)
    with pytest.raises(errors.Forbidden) as info:
        await provider.grant_access("cmsrv0002", IDS["user"], ["server.view"])
    assert info.value.extensions["code"] == "FORBIDDEN"
    assert "owner" in info.value.message and "Forbidden" in info.value.message
    assert not info.value.extensions["retryable"]


@respx.mock
async def test_access_reads_back(provider: CatalystProvider) -> None:
    mock(BY_NAME["list_access"])
    (grant,) = await provider.list_access("cmsrv0001")
    assert grant.account_id == IDS["user"] and grant.username == "player2"
    assert grant.permissions == ["server.read", "console.read", "file.read"]


@respx.mock
async def test_revoking_what_is_not_there_is_a_no_op(provider: CatalystProvider) -> None:
    listed = BY_NAME["list_access"]
    respx.get(f"{BASE}{listed.recorded_path()}").mock(return_value=httpx.Response(
        200, json={**listed.response, "data": []}))
    missing = mock(BY_NAME["revoke_missing_access"])
    assert await provider.revoke_access("cmsrv0001", IDS["user"]) is False
    assert not missing.called  # the 500 the panel would answer is never provoked


@respx.mock
async def test_revoke_deletes_an_existing_grant(provider: CatalystProvider) -> None:
    mock(BY_NAME["list_access"])
    deleted = mock(BY_NAME["revoke_access"])
    assert await provider.revoke_access("cmsrv0001", IDS["user"]) is True
    assert deleted.called


@respx.mock
async def test_unsuspending_an_active_server_is_a_no_op(provider: CatalystProvider) -> None:
    route = mock(BY_NAME["unsuspend_active"])
    await provider.unsuspend_server("cmsrv0001")
    assert route.called


@respx.mock
async def test_backup_disabled_is_a_conflict_not_a_bad_key(provider: CatalystProvider) -> None:
    mock(BY_NAME["backup_disabled"])
    with pytest.raises(errors.Conflict) as info:
        await provider.create_backup("cmsrv0003", None)
    assert info.value.extensions["code"] == "CONFLICT"
    assert "Backup allocation disabled" in info.value.message


@respx.mock
async def test_create_account_makes_a_panel_user(provider: CatalystProvider) -> None:
    exchange = BY_NAME["create_user"]
    route = mock(exchange)
    account = await provider.create_account(AccountSpec(
        username="buyer12345", email="buyer@example.com", password="s3cure-Passw0rd!"))
    assert sent(route) == exchange.recorded_request()
    assert account.id == "cmuser0099" and account.username == "buyer12345"
    with pytest.raises(errors.InvalidRequest) as info:
        await provider.create_account(AccountSpec(username="x1", email="x@example.com"))
    assert info.value.extensions["field"] == "password"

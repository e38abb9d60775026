from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx

from panelql.domain.records import (
    BackupRecord,
    PowerAction,
    Resources,
    ServerRecord,
    ServerSpec,
)
from panelql.domain.status import BackupStatus, NodeStatus, ServerStatus
from panelql.providers import errors
from panelql.providers.pterodactyl.adapter import PterodactylProvider
from panelql.providers.pterodactyl.mapping import (
    BACKUP_STATUS,
    NODE_STATUS,
    POWER_STATE,
    SERVER_STATUS,
    conflict_state,
)
from panelql_sim.framework import Knobs
from panelql_sim.pterodactyl import PterodactylSim
from panelql_sim.runner import BackgroundServers
from tests.providers.contract import ComputeContract, ContractEnv, HostingContract
from tests.providers.helpers import builder, fixture
from tests.waits import SAFETY_SECONDS, held

BASE = "http://ptero.test"
APP = f"{BASE}/api/application"
CLIENT = f"{BASE}/api/client"


def _build(url: str, panel: PterodactylSim, **overrides: Any) -> PterodactylProvider:
    build = builder("pterodactyl", url, application_key=panel.application_key,
                    client_key=panel.client_key)
    provider = build(**overrides)
    assert isinstance(provider, PterodactylProvider)
    return provider


@pytest.fixture(scope="module")
def sim(background: BackgroundServers) -> Iterator[tuple[PterodactylSim, str]]:
    panel = PterodactylSim(servers=24)
    served = background.serve("pterodactyl-contract", panel.app())
    yield panel, served.url


# The contract on the production transport, and on the escape hatch (upstream_transport =
# "httpx") for this kind too: a smaller run of the same suite.
@pytest.fixture(params=[True, False], ids=["lean", "httpx"])
def env(request: pytest.FixtureRequest, sim: tuple[PterodactylSim, str]) -> ContractEnv:
    panel, url = sim
    build = builder("pterodactyl", url, lean=request.param, application_key=panel.application_key,
                    client_key=panel.client_key)
    return ContractEnv(
        provider=build(), knobs=panel.knobs,
        with_bad_credentials=lambda: build(application_key="ptla_wrong"),
        with_timeout=lambda t: build(timeout=t),
    )


class TestPterodactylContract(ComputeContract, HostingContract):
    pass


# -- mapping table ----------------------------------------------------------------------------
def test_mapping_table_covers_every_raw_state() -> None:
    # Server::STATUS_* (null is deliberately absent: it means "ask the Client API").
    assert set(SERVER_STATUS) == {"installing", "install_failed", "reinstall_failed",
                                  "suspended", "restoring_backup"}
    assert SERVER_STATUS["installing"] is ServerStatus.INSTALLING
    assert SERVER_STATUS["install_failed"] is ServerStatus.ERROR
    assert SERVER_STATUS["reinstall_failed"] is ServerStatus.ERROR
    assert SERVER_STATUS["suspended"] is ServerStatus.SUSPENDED
    assert SERVER_STATUS["restoring_backup"] is ServerStatus.RESTORING
    # Wings states plus the transformer's "stopped" fallback.
    assert POWER_STATE == {"offline": ServerStatus.STOPPED, "stopped": ServerStatus.STOPPED,
                           "starting": ServerStatus.STARTING, "running": ServerStatus.RUNNING,
                           "stopping": ServerStatus.STOPPING}
    # is_transferring only shows as a 409 on the Client API.
    assert conflict_state("This server is currently being transferred to a new machine, "
                          "please try again later.") == (ServerStatus.MIGRATING, "transferring")
    assert conflict_state("The node of this server is currently under maintenance and the "
                          "functionality requested is unavailable.")[0] is ServerStatus.UNKNOWN
    assert conflict_state("something new")[0] is ServerStatus.UNKNOWN
    assert NODE_STATUS == {"maintenance": NodeStatus.MAINTENANCE, "available": NodeStatus.ONLINE}
    assert set(BACKUP_STATUS.values()) == {BackupStatus.IN_PROGRESS, BackupStatus.COMPLETED,
                                           BackupStatus.FAILED}


# -- hand-written payloads (tests/fixtures/PROVENANCE.md) via respx --------------------------------
@pytest.fixture
def provider() -> PterodactylProvider:
    built = builder("pterodactyl", BASE, application_key="ptla_k", client_key="ptlc_k")()
    assert isinstance(built, PterodactylProvider)
    return built


def _mock_servers() -> respx.Route:
    return respx.get(f"{APP}/servers").mock(side_effect=[
        httpx.Response(200, json=fixture("pterodactyl", "servers_page1.json")),
        httpx.Response(200, json=fixture("pterodactyl", "servers_page2.json")),
    ])


@respx.mock
async def test_servers_follow_pages_and_keep_lifecycle_status(
        provider: PterodactylProvider) -> None:
    route = _mock_servers()
    servers = {s.id: s for s in await provider.list_servers()}
    assert route.call_count == 2
    first = route.calls[0].request
    assert first.headers["authorization"] == "Bearer ptla_k"
    assert first.url.params["include"] == "allocations"
    assert first.url.params["per_page"] == "1000" and first.url.params["page"] == "1"
    assert route.calls[1].request.url.params["page"] == "2"
    survival = servers["5"]
    assert survival.status is None and survival.raw_status is None  # power state is elsewhere
    assert survival.addresses == ["mc.example.com:25565", "45.1.2.3:25566"]  # default first
    assert survival.resources == Resources(memory_mb=2048, cpu_cores=2.0, disk_mb=10240)
    assert survival.node_id == "1" and survival.owner_id == "1"
    assert survival.external_ref == "whmcs-1201"
    suspended = servers["6"]
    assert suspended.status is ServerStatus.SUSPENDED and suspended.suspended
    assert suspended.resources.cpu_cores is None  # cpu 0 = unlimited
    odd = servers["7"]
    assert odd.status is ServerStatus.UNKNOWN and odd.raw_status == "hibernating"
    assert odd.addresses == []


@respx.mock
async def test_live_state_from_client_resources(provider: PterodactylProvider) -> None:
    _mock_servers()
    await provider.list_servers()
    route = respx.get(f"{CLIENT}/servers/1a7ce997/resources").mock(
        return_value=httpx.Response(200, json=fixture("pterodactyl", "resources_running.json")))
    respx.get(f"{CLIENT}/servers/3c9e0119/resources").mock(
        return_value=httpx.Response(409, json=fixture("pterodactyl", "error_conflict.json")))
    states = await provider.get_live_states(["5", "7", "999x"])
    assert route.calls.last.request.headers["authorization"] == "Bearer ptlc_k"
    assert set(states) == {"5", "7"}
    running = states["5"]
    assert running.status is ServerStatus.RUNNING and running.raw_status == "running"
    assert running.usage is not None
    assert running.usage.memory_mb == 1024 and running.usage.disk_mb == 2048
    assert running.usage.cpu_percent == 37.512 and running.usage.uptime_seconds == 3725
    assert states["7"].status is ServerStatus.MIGRATING


@respx.mock
async def test_unknown_identifier_is_fetched_once(provider: PterodactylProvider) -> None:
    single = respx.get(f"{APP}/servers/5").mock(return_value=httpx.Response(
        200, json=fixture("pterodactyl", "servers_page1.json")["data"][0]))
    respx.get(f"{CLIENT}/servers/1a7ce997/resources").mock(
        return_value=httpx.Response(200, json={"object": "stats", "attributes": {
            "is_suspended": False, "resources": {}}}))
    states = await provider.get_live_states(["5"])
    await provider.get_live_states(["5"])
    assert single.call_count == 1
    assert states["5"].status is ServerStatus.STOPPED  # Wings omitted the state


@respx.mock
async def test_nodes_apply_overallocation_and_location(provider: PterodactylProvider) -> None:
    route = respx.get(f"{APP}/nodes").mock(
        return_value=httpx.Response(200, json=fixture("pterodactyl", "nodes.json")))
    nodes = {n.id: n for n in await provider.list_nodes()}
    assert route.calls.last.request.url.params["include"] == "location"
    nyc = nodes["1"]
    assert nyc.status is NodeStatus.ONLINE and nyc.region == "us.nyc"
    assert nyc.capacity == Resources(memory_mb=40960, disk_mb=500000)  # +25 % memory
    assert nyc.allocated == Resources(memory_mb=10240, disk_mb=51200)
    ams = nodes["2"]
    assert ams.status is NodeStatus.MAINTENANCE and ams.raw_status == "maintenance"
    assert ams.region is None
    assert ams.capacity == Resources(memory_mb=16384, disk_mb=220000)  # -1 = check disabled


@respx.mock
async def test_accounts_and_backups(provider: PterodactylProvider) -> None:
    respx.get(f"{APP}/users").mock(
        return_value=httpx.Response(200, json=fixture("pterodactyl", "users.json")))
    accounts = {a.id: a for a in await provider.list_accounts()}
    assert accounts["2"].email == "player2@example.com"
    assert accounts["2"].external_ref == "billing-77"
    _mock_servers()
    await provider.list_servers()
    respx.get(f"{APP}/servers/404").mock(return_value=httpx.Response(404, json={"errors": [
        {"code": "NotFoundHttpException", "status": "404",
         "detail": "The requested resource could not be found on the server."}]}))
    route = respx.get(f"{CLIENT}/servers/1a7ce997/backups").mock(
        return_value=httpx.Response(200, json=fixture("pterodactyl", "backups.json")))
    backups = (await provider.list_backups(["5", "404"]))
    assert backups["404"] == []
    assert route.calls.last.request.url.params["per_page"] == "50"
    assert [b.status for b in backups["5"]] == [
        BackupStatus.COMPLETED, BackupStatus.FAILED, BackupStatus.IN_PROGRESS]
    done = backups["5"][0]
    assert done.locked and done.size_bytes == 734003200 and done.completed_at is not None


@respx.mock
async def test_error_envelopes_become_provider_errors(provider: PterodactylProvider) -> None:
    respx.get(f"{APP}/users").mock(return_value=httpx.Response(
        429, json=fixture("pterodactyl", "error_throttle.json"),
        headers={"Retry-After": "17", "X-RateLimit-Limit": "240", "X-RateLimit-Remaining": "0"}))
    with pytest.raises(errors.RateLimited) as limited:
        await provider.list_accounts()
    assert limited.value.retry_after == 17
    respx.post(f"{APP}/servers").mock(return_value=httpx.Response(
        422, json=fixture("pterodactyl", "error_validation.json")))
    spec = ServerSpec(name="x", node_id="1", resources=Resources(1024, 1, 1024), owner_id="1",
                      template="5", options={"docker_image": "img", "startup": "run",
                                             "allocation_id": 12})
    with pytest.raises(errors.InvalidRequest) as invalid:
        await provider.create_server(spec)
    assert "The name field is required." in invalid.value.message
    assert "already been taken" in invalid.value.message
    respx.get(f"{APP}/nodes").mock(return_value=httpx.Response(200, json={"data": "nope"}))
    with pytest.raises(errors.UnexpectedResponse):
        await provider.list_nodes()


# -- lifecycle against the simulator ----------------------------------------------------------
@pytest.fixture(scope="module")
def live(background: BackgroundServers) -> Iterator[tuple[PterodactylSim, str]]:
    panel = PterodactylSim(servers=24, knobs=Knobs(transition_seconds=0.15))
    served = background.serve("pterodactyl-lifecycle", panel.app())
    yield panel, served.url


@pytest.fixture
def lp(live: tuple[PterodactylSim, str]) -> PterodactylProvider:
    panel, url = live
    return _build(url, panel)


async def _eventually(check: Callable[[], Any], timeout: float = SAFETY_SECONDS) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition never became true")
        await asyncio.sleep(0.05)


async def _server_where(p: PterodactylProvider, sim: PterodactylSim,
                        pred: Callable[[Any], bool]) -> str:
    await p.list_servers()
    healthy = {n for n, node in sim.nodes.items() if not node["maintenance_mode"]}
    for s in sim.servers.values():
        if s.node_id in healthy and not s.transferring and pred(s):
            return str(s.id)
    raise AssertionError("no such server in the simulator")


async def _status(p: PterodactylProvider, sid: str) -> ServerStatus | None:
    record = (await p.get_servers([sid]))[sid]
    if record.status is not None:
        return record.status
    return (await p.get_live_states([sid]))[sid].status


async def test_calls_per_list_are_constant(live: tuple[PterodactylSim, str],
                                           lp: PterodactylProvider) -> None:
    panel, url = live
    panel.reset_stats()
    servers = await lp.list_servers()
    assert len(servers) == len(panel.servers)
    assert panel.stats["GET /api/application/servers"] == 1
    small = _build(url, panel)
    small.api.page_size = 5
    panel.reset_stats()
    await small.list_servers()
    assert panel.stats["GET /api/application/servers"] == -(-len(panel.servers) // 5)
    panel.reset_stats()
    await lp.list_nodes()
    await lp.list_accounts()
    assert panel.total_requests == 2


async def test_a_panel_that_bounds_per_page_is_read_in_pages_of_100(
        background: BackgroundServers) -> None:
    """The develop branch (@64c78971) answers 400 QueryValueOutOfRange to per_page > 100 on
    every Application list; 1.x (@706db62c) takes 1000. The first refusal costs one call."""
    panel = PterodactylSim(servers=230, users=120)
    panel.app_per_page_bound = 100
    served = background.serve("pterodactyl-bounded", panel.app())
    provider = _build(served.url, panel)
    servers = await provider.list_servers()
    assert len(servers) == 230
    refused_then_pages = 1 + 3
    assert panel.stats["GET /api/application/servers"] == refused_then_pages
    panel.reset_stats()
    assert len(await provider.list_accounts()) == 120
    assert panel.stats["GET /api/application/users"] == 2  # 100 from the start now
    # A bound tighter than 100 is not guessed at: the panel's message reaches the caller.
    panel.app_per_page_bound = 50
    with pytest.raises(errors.InvalidRequest, match="per_page"):
        await provider.list_servers()


async def test_power_cycle(live: tuple[PterodactylSim, str], lp: PterodactylProvider) -> None:
    panel, _ = live
    sid = await _server_where(lp, panel, lambda s: s.status is None and s.power == "offline")
    assert await _status(lp, sid) is ServerStatus.STOPPED
    with held(panel):
        await lp.power(sid, PowerAction.START)
        assert await _status(lp, sid) is ServerStatus.STARTING

    async def running() -> bool:
        return await _status(lp, sid) is ServerStatus.RUNNING
    await _eventually(running)
    usage = (await lp.get_live_states([sid]))[sid].usage
    assert usage is not None and (usage.memory_mb or 0) > 0
    await lp.power(sid, PowerAction.KILL)
    assert await _status(lp, sid) is ServerStatus.STOPPED


async def test_suspend_blocks_client_actions(live: tuple[PterodactylSim, str],
                                             lp: PterodactylProvider) -> None:
    panel, _ = live
    sid = await _server_where(lp, panel, lambda s: s.status is None)
    await lp.suspend_server(sid, "Payment overdue")
    await lp.suspend_server(sid, None)  # a no-op upstream, not an error
    assert await _status(lp, sid) is ServerStatus.SUSPENDED
    with pytest.raises(errors.Conflict) as conflict:
        await lp.power(sid, PowerAction.START)
    assert "suspended" in conflict.value.message
    with pytest.raises(errors.Conflict):
        await lp.create_backup(sid, "blocked")
    await lp.unsuspend_server(sid)
    assert (await lp.get_servers([sid]))[sid].status is None


async def test_reinstall_and_resize(live: tuple[PterodactylSim, str],
                                    lp: PterodactylProvider) -> None:
    panel, _ = live
    sid = await _server_where(lp, panel, lambda s: s.status is None)
    await lp.resize_server(sid, Resources(memory_mb=6144, cpu_cores=1.5))
    record = (await lp.get_servers([sid]))[sid]
    assert record.resources.memory_mb == 6144 and record.resources.cpu_cores == 1.5
    assert panel.servers[int(sid)].limits["disk"] == 10240  # untouched
    with held(panel):
        await lp.reinstall_server(sid)
        assert (await lp.get_servers([sid]))[sid].status is ServerStatus.INSTALLING
        with pytest.raises(errors.Conflict):
            await lp.power(sid, PowerAction.START)

    async def installed() -> bool:
        return (await lp.get_servers([sid]))[sid].status is None
    await _eventually(installed)


async def test_create_and_delete_server(live: tuple[PterodactylSim, str],
                                        lp: PterodactylProvider) -> None:
    panel, _ = live
    spec = ServerSpec(name="gw-created", node_id="1",
                      resources=Resources(memory_mb=2048, cpu_cores=2, disk_mb=8192),
                      owner_id="3", template="1/1", external_ref="gw-555", ports=[])
    created = await lp.create_server(spec)
    assert isinstance(created, ServerRecord)
    assert created.status is ServerStatus.INSTALLING
    sid = created.id
    assert created.node_id == "1" and created.external_ref == "gw-555"
    server = panel.servers[int(sid)]
    assert server.environment["SERVER_JARFILE"] == "server.jar"  # the egg's defaults
    assert server.limits["cpu"] == 200

    async def installed() -> bool:
        return (await lp.get_servers([sid]))[sid].status is None
    await _eventually(installed)
    await lp.delete_server(sid)
    assert sid not in await lp.get_servers([sid])
    with pytest.raises(errors.NotFound):
        await lp.delete_server(sid)


async def test_create_validation(live: tuple[PterodactylSim, str],
                                 lp: PterodactylProvider) -> None:
    with pytest.raises(errors.InvalidRequest):
        await lp.create_server(ServerSpec(name="x", node_id="1", resources=Resources(1, 1, 1),
                                          template="1/1"))  # no owner
    with pytest.raises(errors.InvalidRequest) as info:
        await lp.create_server(ServerSpec(name="x", node_id="1", resources=Resources(1, 1, 1),
                                          owner_id="999", template="1/1"))
    assert info.value.upstream_status == 422
    assert "The selected user is invalid." in info.value.message
    with pytest.raises(errors.Conflict):
        await lp.create_server(ServerSpec(name="x", node_id="1", resources=Resources(1, 1, 1),
                                          owner_id="2", template="1/1", ports=[1]))


async def test_backup_create_restore_delete(live: tuple[PterodactylSim, str],
                                            lp: PterodactylProvider) -> None:
    panel, _ = live
    sid = await _server_where(lp, panel, lambda s: s.status is None)
    with held(panel):
        backup = await lp.create_backup(sid, "before-update")
        assert isinstance(backup, BackupRecord)
        assert backup.status is BackupStatus.IN_PROGRESS
        bid = backup.id
        with pytest.raises(errors.Conflict):  # 400 "not completed" → wrong state
            await lp.restore_backup(sid, bid)

    async def completed() -> bool:
        items = (await lp.list_backups([sid]))[sid]
        return any(b.id == bid and b.status is BackupStatus.COMPLETED for b in items)
    await _eventually(completed)
    with held(panel):
        await lp.restore_backup(sid, bid)
        assert (await lp.get_servers([sid]))[sid].status is ServerStatus.RESTORING
        with pytest.raises(errors.Conflict):
            await lp.delete_backup(sid, bid)  # the whole Client API refuses while restoring

    async def restored() -> bool:
        return (await lp.get_servers([sid]))[sid].status is None
    await _eventually(restored)
    await lp.delete_backup(sid, bid)
    assert all(b.id != bid for b in (await lp.list_backups([sid]))[sid])
    with pytest.raises(errors.NotFound):
        await lp.delete_backup(sid, "../../account")


async def test_grant_and_revoke_access(live: tuple[PterodactylSim, str],
                                       lp: PterodactylProvider) -> None:
    panel, _ = live
    sid = await _server_where(lp, panel, lambda s: s.status is None and s.user_id != 4)
    user_uuid = panel.users[4]["uuid"]
    await lp.grant_access(sid, "4", ["server.start", "backup.create"])
    assert panel.servers[int(sid)].subusers[user_uuid] == [
        "websocket.connect", "control.start", "backup.create", "backup.read"]
    await lp.grant_access(sid, "4", ["server.stop"])  # updates, does not fail as a duplicate
    assert panel.servers[int(sid)].subusers[user_uuid] == ["websocket.connect", "control.stop"]
    # A name without a Pterodactyl equivalent is not sent, and reported; the rest is granted.
    grant = await lp.grant_access(sid, "4", ["server.delete", "console.write"])
    assert grant.unmapped == ["server.delete"]
    assert grant.permissions == ["websocket.connect", "control.console"]
    (listed,) = [g for g in await lp.list_access(sid) if g.account_id == "4"]
    assert listed.permissions == ["websocket.connect", "control.console"]
    assert await lp.revoke_access(sid, "4") is True
    assert user_uuid not in panel.servers[int(sid)].subusers
    assert await lp.revoke_access(sid, "4") is False  # nothing to revoke: a no-op


async def test_keys_are_separated_and_errors_use_the_panel_envelope(
        live: tuple[PterodactylSim, str]) -> None:
    panel, url = live
    async with httpx.AsyncClient(base_url=url, headers={"Accept": "application/json"}) as http:
        app_key = {"Authorization": f"Bearer {panel.application_key}"}
        client_key = {"Authorization": f"Bearer {panel.client_key}"}
        ok = await http.get("/api/application/nodes", headers=app_key)
        assert ok.status_code == 200 and ok.headers["X-RateLimit-Limit"] == "240"
        assert (await http.get("/api/client/account", headers=app_key)).status_code == 403
        assert (await http.get("/api/application/nodes", headers=client_key)).status_code == 403
        bad = await http.get("/api/application/nodes", headers={"Authorization": "Bearer x"})
        assert bad.status_code == 401
        assert bad.json() == {"errors": [{"code": "AuthenticationException", "status": "401",
                                          "detail": "Unauthenticated."}]}
        missing = await http.get("/api/application/servers/99999", headers=app_key)
        assert missing.json()["errors"][0]["status"] == "404"


async def test_rate_limit_carries_retry_after(live: tuple[PterodactylSim, str]) -> None:
    panel, url = live
    p = _build(url, panel)
    panel.knobs.rate_limit_per_minute = 1
    try:
        with pytest.raises(errors.RateLimited) as info:
            for _ in range(3):
                await p.list_nodes()
        assert info.value.retry_after is not None and info.value.retry_after > 0
    finally:
        panel.knobs.rate_limit_per_minute = None
        panel._window.clear()


async def test_without_client_key_live_state_is_unknown(
        live: tuple[PterodactylSim, str]) -> None:
    panel, url = live
    build = builder("pterodactyl", url, application_key=panel.application_key)
    p = build()
    assert isinstance(p, PterodactylProvider)
    await p.check_health()
    sid = await _server_where(p, panel, lambda s: s.status is None)
    assert (await p.get_live_states([sid]))[sid].status is ServerStatus.UNKNOWN
    with pytest.raises(errors.CapabilityNotSupported):
        await p.power(sid, PowerAction.START)

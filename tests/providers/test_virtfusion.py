from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import respx

from panelql.domain.records import PowerAction, Resources, ServerRecord, ServerSpec
from panelql.domain.status import BackupStatus, NodeStatus, ServerStatus
from panelql.providers import errors
from panelql.providers.contract import Capability, Family
from panelql.providers.virtfusion.adapter import VirtFusionProvider
from panelql.providers.virtfusion.mapping import SERVER_STATUS, lifecycle_key
from panelql.providers.virtfusion.parse import live_state, read_error
from panelql_sim.runner import BackgroundServers
from panelql_sim.virtfusion import VirtFusionSim
from tests.providers.contract import ComputeContract, ContractEnv
from tests.providers.helpers import builder, clients, config, fixture
from tests.waits import SAFETY_SECONDS, held

BASE = "http://vf.test/api/v1"


def _build(url: str, token: str, **options: object) -> VirtFusionProvider:
    from panelql.providers.registry import build_provider

    cfg = config("virtfusion", url, api_token=token)
    cfg.options.update(options)
    built = build_provider(cfg, clients(url))
    assert isinstance(built, VirtFusionProvider)
    return built


# -- contract suite over real HTTP ------------------------------------------------------------
@pytest.fixture(scope="module")
def sim(background: BackgroundServers) -> Iterator[tuple[VirtFusionSim, str]]:
    panel = VirtFusionSim(servers=30)
    served = background.serve("virtfusion-contract", panel.app())
    yield panel, served.url + "/api/v1"


@pytest.fixture
def env(sim: tuple[VirtFusionSim, str]) -> ContractEnv:
    panel, url = sim
    build = builder("virtfusion", url, api_token=panel.api_token)
    return ContractEnv(
        provider=build(), knobs=panel.knobs,
        with_bad_credentials=lambda: build(api_token="vf_wrong"),
        with_timeout=lambda t: build(timeout=t),
    )


class TestVirtFusionContract(ComputeContract):
    pass


def test_is_compute_and_its_users_are_accounts() -> None:
    assert VirtFusionProvider.families == {Family.COMPUTE, Family.HOSTING}
    assert Capability.SERVER_LIVE_STATE in VirtFusionProvider.capabilities
    # Users can be created and are read from the server list's owners (no user list);
    # they cannot be suspended, repackaged or deleted through the gateway.
    assert {Capability.ACCOUNT_READ, Capability.ACCOUNT_CREATE, Capability.LOGIN_URL,
            Capability.SERVER_PASSWORD} <= VirtFusionProvider.capabilities
    assert Capability.ACCOUNT_SUSPEND not in VirtFusionProvider.capabilities


# -- mapping table ----------------------------------------------------------------------------
BUILT = {"state": "complete", "built": "2022-06-25T22:00:39+00:00", "deleteLevel": 0,
         "migrateLevel": 0, "suspended": False, "buildFailed": False, "rebuild": False}


@pytest.mark.parametrize(("changes", "remote", "expected"), [
    # every VirtFusion column of upstream-apis.md §0.1
    ({}, {"state": "running"}, ServerStatus.RUNNING),
    ({}, {"state": "shutoff"}, ServerStatus.STOPPED),
    ({}, {"state": "off"}, ServerStatus.STOPPED),
    ({}, {"state": "paused"}, ServerStatus.PAUSED),
    ({"suspended": True}, {"state": "shutoff"}, ServerStatus.SUSPENDED),
    ({"state": "queued", "built": None}, None, ServerStatus.INSTALLING),
    ({"built": None}, None, ServerStatus.INSTALLING),
    ({"migrateLevel": 1}, {"state": "running"}, ServerStatus.MIGRATING),
    ({"buildFailed": True, "built": None}, None, ServerStatus.ERROR),
    ({"deleteLevel": 1}, {"state": "running"}, ServerStatus.DELETING),
    ({}, None, ServerStatus.UNKNOWN),  # remoteState missing
    # precedence: lifecycle > suspended > power
    ({"deleteLevel": 2, "suspended": True}, None, ServerStatus.DELETING),
    ({"migrateLevel": 1, "suspended": True}, None, ServerStatus.MIGRATING),
    ({"rebuild": True}, {"state": "shutoff"}, ServerStatus.INSTALLING),
    ({}, {"state": "crashed"}, ServerStatus.ERROR),
    ({}, {"state": "hibernating-weirdly"}, ServerStatus.UNKNOWN),
])
def test_mapping_covers_every_virtfusion_state(
    changes: dict[str, object], remote: dict[str, object] | None, expected: ServerStatus,
) -> None:
    raw: dict[str, object] = {**BUILT, **changes}
    if remote is not None:
        raw["remoteState"] = remote
    assert live_state(raw, "virtfusion").status is expected


def test_mapping_table_keys() -> None:
    lifecycle = {"deleteLevel", "buildFailed", "notBuilt", "rebuild", "migrateLevel", "suspended"}
    assert lifecycle <= set(SERVER_STATUS)
    assert lifecycle_key(BUILT) is None
    assert SERVER_STATUS["shutoff"] is ServerStatus.STOPPED
    assert SERVER_STATUS["running"] is ServerStatus.RUNNING


def test_read_error_understands_every_envelope() -> None:
    assert read_error({"msg": "server not found"}) == "server not found"
    assert read_error({"errors": ["locked", {"message": "busy"}]}) == "locked; busy"
    assert read_error({"message": "The given data was invalid.",
                       "errors": {"packageId": ["The selected package id is invalid."]}}) \
        == "The selected package id is invalid."
    assert read_error({"message": "Server Error"}) == "Server Error"
    assert read_error(None) is None and read_error(["x"]) is None


# -- hand-written payloads (tests/fixtures/PROVENANCE.md) via respx --------------------------------
@pytest.fixture
def provider() -> VirtFusionProvider:
    return _build(BASE, "vf_token_k")


@respx.mock
async def test_servers_follow_the_paginator(provider: VirtFusionProvider) -> None:
    page1 = respx.get(f"{BASE}/servers", params={"page": "1", "results": "200"}).mock(
        return_value=httpx.Response(200, json=fixture("virtfusion", "servers_page1.json")))
    page2 = respx.get(f"{BASE}/servers", params={"page": "2", "results": "200"}).mock(
        return_value=httpx.Response(200, json=fixture("virtfusion", "servers_page2.json")))
    servers = {s.id: s for s in await provider.list_servers()}
    assert page1.call_count == 1 and page2.call_count == 1
    assert page1.calls.last.request.headers["authorization"] == "Bearer vf_token_k"
    assert list(servers) == ["499", "500", "501", "502", "503", "504"]
    first = servers["499"]
    assert first.status is None and first.raw_status is None  # live state needed
    assert first.resources == Resources(memory_mb=2048, cpu_cores=2, disk_mb=40 * 1024)
    assert first.addresses == ["198.51.100.23", "2001:db8:499::/64"]
    assert first.node_id == "26" and first.owner_id == "7"
    assert first.external_ref == "a8e2c3c4-5b5e-4a5e-9e4c-2f1d9b0c7a11"
    assert first.created_at is not None and first.created_at.year == 2022
    assert servers["500"].status is ServerStatus.SUSPENDED and servers["500"].suspended
    assert servers["501"].status is ServerStatus.INSTALLING
    assert servers["502"].status is ServerStatus.DELETING and servers["502"].suspended
    assert servers["503"].status is ServerStatus.ERROR
    assert servers["504"].status is ServerStatus.MIGRATING
    assert servers["504"].raw_status == "migrateLevel"


@respx.mock
async def test_live_state_comes_from_remote_state(provider: VirtFusionProvider) -> None:
    route = respx.get(f"{BASE}/servers/499").mock(
        return_value=httpx.Response(200, json=fixture("virtfusion", "server_remote_state.json")))
    respx.get(f"{BASE}/servers/404").mock(
        return_value=httpx.Response(404, json={"errors": ["server not found"]}))
    states = await provider.get_live_states(["499", "404"])
    assert set(states) == {"499"}  # a vanished server is left out, not an error
    assert route.calls.last.request.url.params["remoteState"] == "true"
    state = states["499"]
    assert state.status is ServerStatus.RUNNING and state.raw_status == "running"
    assert state.usage is not None
    assert state.usage.memory_mb == 1024.0 and state.usage.cpu_percent == 12.5


@respx.mock
async def test_hypervisors_become_nodes(provider: VirtFusionProvider) -> None:
    respx.get(f"{BASE}/compute/hypervisors").mock(
        return_value=httpx.Response(200, json=fixture("virtfusion", "hypervisors.json")))
    respx.get(f"{BASE}/servers", params={"page": "1"}).mock(
        return_value=httpx.Response(200, json=fixture("virtfusion", "servers_page1.json")))
    respx.get(f"{BASE}/servers", params={"page": "2"}).mock(
        return_value=httpx.Response(200, json=fixture("virtfusion", "servers_page2.json")))
    nodes = {n.id: n for n in await provider.list_nodes()}
    ams, nyc = nodes["26"], nodes["27"]
    assert ams.status is NodeStatus.ONLINE and ams.region == "Amsterdam"
    assert ams.capacity == Resources(memory_mb=131072, cpu_cores=32, disk_mb=2000 * 1024)
    assert ams.allocated.memory_mb == 2048 + 1024 + 8192
    assert ams.allocated.cpu_cores == 2 + 1 + 4
    assert sorted(ams.server_ids or []) == ["499", "500", "504"]
    assert nyc.status is NodeStatus.MAINTENANCE and nyc.raw_status == "maintenance"
    assert nyc.capacity == Resources()  # 0 means unlimited: no capacity figure


@respx.mock
async def test_packages_and_the_resize_choice(provider: VirtFusionProvider) -> None:
    respx.get(f"{BASE}/packages").mock(
        return_value=httpx.Response(200, json=fixture("virtfusion", "packages.json")))
    packages = await provider.list_packages()
    assert [p.id for p in packages] == ["1", "2", "3", "4"]
    assert packages[1].resources.disk_mb == 50 * 1024
    # the disabled 512 MB package is never chosen; the smallest that fits wins
    assert (await provider.find_package(Resources(memory_mb=256))).id == "2"  # type: ignore[union-attr]
    assert (await provider.find_package(Resources(memory_mb=3000))).id == "3"  # type: ignore[union-attr]
    assert (await provider.find_package(Resources(cpu_cores=3))).id == "4"  # type: ignore[union-attr]
    assert await provider.find_package(Resources(memory_mb=65536)) is None


@respx.mock
async def test_backups_are_mapped(provider: VirtFusionProvider) -> None:
    respx.get(f"{BASE}/backups/server/499").mock(
        return_value=httpx.Response(200, json=fixture("virtfusion", "backups.json")))
    respx.get(f"{BASE}/backups/server/7").mock(
        return_value=httpx.Response(404, json={"errors": ["server not found"]}))
    backups = await provider.list_backups(["499", "7"])
    assert backups["7"] == []
    done, running, odd = backups["499"]
    assert done.status is BackupStatus.COMPLETED and done.size_bytes == 5368709121
    assert done.completed_at is not None
    assert running.status is BackupStatus.IN_PROGRESS and running.locked
    assert odd.status is BackupStatus.UNKNOWN and odd.raw_status == "archived"
    assert odd.name == "backup-49903"


@respx.mock
async def test_error_bodies_become_provider_errors(provider: VirtFusionProvider) -> None:
    respx.post(f"{BASE}/servers/499/suspend").mock(
        return_value=httpx.Response(423, json={"errors": ["server is locked"]}))
    with pytest.raises(errors.Conflict) as locked:
        await provider.suspend_server("499", None)
    assert locked.value.retryable and locked.value.message == "server is locked"
    respx.post(f"{BASE}/servers/9/unsuspend").mock(
        return_value=httpx.Response(404, json={"msg": "server not found"}))
    with pytest.raises(errors.NotFound, match="server not found"):
        await provider.unsuspend_server("9")
    respx.get(f"{BASE}/connect").mock(return_value=httpx.Response(401))
    with pytest.raises(errors.AuthenticationFailed) as auth:
        await provider.check_health()
    assert "vf_token_k" not in auth.value.message
    respx.put(f"{BASE}/servers/499/package/3").mock(return_value=httpx.Response(
        422, json={"message": "The given data was invalid.",
                   "errors": {"package": ["The package is not available."]}}))
    respx.get(f"{BASE}/packages").mock(
        return_value=httpx.Response(200, json=fixture("virtfusion", "packages.json")))
    with pytest.raises(errors.InvalidRequest, match="not available"):
        await provider.resize_server("499", Resources(memory_mb=4096, cpu_cores=2))
    respx.get(f"{BASE}/servers", params={"page": "1"}).mock(
        return_value=httpx.Response(200, json={"data": []}))  # no paginator fields
    with pytest.raises(errors.UnexpectedResponse):
        await provider.list_servers()


# -- batching, against the simulator ----------------------------------------------------------
@pytest.fixture(scope="module")
def big(background: BackgroundServers) -> Iterator[tuple[VirtFusionSim, str]]:
    panel = VirtFusionSim(servers=450, hypervisors=5)
    served = background.serve("virtfusion-big", panel.app())
    yield panel, served.url + "/api/v1"


async def test_list_costs_one_call_per_200_servers(big: tuple[VirtFusionSim, str]) -> None:
    panel, url = big
    provider = _build(url, panel.api_token)
    panel.reset_stats()
    servers = await provider.list_servers()
    assert len(servers) == 450 and len({s.id for s in servers}) == 450
    assert panel.stats["GET /api/*/servers"] == 3
    panel.reset_stats()
    nodes = await provider.list_nodes()
    assert sum(len(n.server_ids or []) for n in nodes) == 450
    assert panel.total_requests == 3 + 1
    await provider.aclose()


async def test_live_states_are_bounded_concurrent(big: tuple[VirtFusionSim, str]) -> None:
    panel, url = big
    provider = _build(url, panel.api_token)
    pending = [s.id for s in await provider.list_servers() if s.status is None][:16]
    assert len(pending) == 16
    panel.reset_stats()
    panel.knobs.latency_ms = 100
    try:
        states = await provider.get_live_states(pending)
    finally:
        panel.knobs.latency_ms = 0
    assert set(states) == set(pending)
    assert panel.stats["GET /api/*/servers/*"] == 16
    # 16 calls, at most 8 at a time: concurrent (not one by one) yet bounded, read from the
    # simulator's own count of requests in flight rather than from the clock.
    assert 2 <= panel.concurrency.peak <= 8, panel.concurrency.peak
    assert panel.concurrency.rounds >= 2  # never all sixteen at once


# -- lifecycle, against the simulator ---------------------------------------------------------
TRANSITION = 0.2


@pytest.fixture(scope="module")
def life(background: BackgroundServers) -> Iterator[tuple[VirtFusionSim, str]]:
    panel = VirtFusionSim(servers=24)
    panel.knobs.transition_seconds = TRANSITION
    served = background.serve("virtfusion-life", panel.app())
    yield panel, served.url + "/api/v1"


@pytest.fixture
def vf(life: tuple[VirtFusionSim, str]) -> VirtFusionProvider:
    panel, url = life
    return _build(url, panel.api_token, delete_delay_minutes=0)


def _pick(panel: VirtFusionSim, **wanted: object) -> str:
    for server in panel.servers.values():
        if server.busy is None and all(getattr(server, k) == v for k, v in wanted.items()):
            return str(server.id)
    raise AssertionError(f"the simulator has no idle server with {wanted}")


async def _status(vf: VirtFusionProvider, sid: str) -> ServerStatus:
    server = await vf.get_server(sid)
    if server.status is not None:
        return server.status
    return (await vf.get_live_states([sid]))[sid].status


async def _settled(vf: VirtFusionProvider, sid: str, want: ServerStatus) -> None:
    for _ in range(int(SAFETY_SECONDS / (TRANSITION / 2))):
        if await _status(vf, sid) is want:
            return
        await asyncio.sleep(TRANSITION / 2)
    raise AssertionError(f"server {sid} never became {want}")


async def test_boot_goes_running_and_locks_meanwhile(
    vf: VirtFusionProvider, life: tuple[VirtFusionSim, str],
) -> None:
    panel, _ = life
    sid = _pick(panel, power="shutoff", suspended=False, delete_level=0, build_failed=False)
    assert await _status(vf, sid) is ServerStatus.STOPPED
    with held(panel), pytest.raises(errors.Conflict) as locked:
        assert await vf.power(sid, PowerAction.START) is None
        await vf.power(sid, PowerAction.STOP)  # the boot is still queued: 423
    assert locked.value.retryable and locked.value.upstream_status == 423
    await _settled(vf, sid, ServerStatus.RUNNING)
    with pytest.raises(errors.Conflict) as wrong:  # already running: 409, not retryable
        await vf.power(sid, PowerAction.START)
    assert not wrong.value.retryable and "already running" in wrong.value.message


async def test_shutdown_passes_through_stopping_and_kill_is_immediate(
    vf: VirtFusionProvider, life: tuple[VirtFusionSim, str],
) -> None:
    panel, _ = life
    first = _pick(panel, power="running", suspended=False, migrate_level=0, delete_level=0)
    with held(panel):
        await vf.power(first, PowerAction.STOP)
        assert await _status(vf, first) is ServerStatus.STOPPING
    await _settled(vf, first, ServerStatus.STOPPED)
    second = _pick(panel, power="running", suspended=False, migrate_level=0, delete_level=0)
    await vf.power(second, PowerAction.KILL)
    assert await _status(vf, second) is ServerStatus.STOPPED


async def test_suspend_and_unsuspend(vf: VirtFusionProvider,
                                     life: tuple[VirtFusionSim, str]) -> None:
    panel, _ = life
    sid = _pick(panel, power="running", suspended=False, migrate_level=0, delete_level=0)
    await vf.suspend_server(sid, "Invoice #1001 overdue")
    listed = {s.id: s for s in await vf.list_servers()}[sid]
    assert listed.status is ServerStatus.SUSPENDED and listed.suspended
    with pytest.raises(errors.Conflict, match="already suspended"):
        await vf.suspend_server(sid, None)
    with pytest.raises(errors.Conflict, match="suspended"):
        await vf.power(sid, PowerAction.START)
    await vf.unsuspend_server(sid)
    await _settled(vf, sid, ServerStatus.RUNNING)
    with pytest.raises(errors.NotFound):
        await vf.suspend_server("999999", None)


async def test_resize_moves_to_the_fitting_package(
    vf: VirtFusionProvider, life: tuple[VirtFusionSim, str],
) -> None:
    panel, _ = life
    sid = _pick(panel, power="running", suspended=False, migrate_level=0, delete_level=0)
    with held(panel):  # the package change stays queued until the block ends
        handle = await vf.resize_server(sid, Resources(memory_mb=6000, cpu_cores=3))
        assert handle is not None  # followed by the server's configLevel
        assert (await vf.poll_task(handle)).done is False
        with pytest.raises(errors.Conflict):  # the package change is queued
            await vf.resize_server(sid, Resources(memory_mb=1024))
    for _ in range(int(SAFETY_SECONDS / 0.05)):
        if (await vf.poll_task(handle)).done:
            break
        await asyncio.sleep(0.05)
    assert (await vf.poll_task(handle)).done is True
    server = await vf.get_server(sid)
    assert server.resources == Resources(memory_mb=8192, cpu_cores=4, disk_mb=160 * 1024)
    with pytest.raises(errors.InvalidRequest):
        await vf.resize_server(sid, Resources(memory_mb=10**6))


async def test_reinstall_rebuilds_with_the_same_template(
    vf: VirtFusionProvider, life: tuple[VirtFusionSim, str],
) -> None:
    panel, _ = life
    sid = _pick(panel, power="running", suspended=False, migrate_level=0, delete_level=0)
    template = panel.servers[int(sid)].os_template_id
    with held(panel):
        await vf.reinstall_server(sid)
        assert (await vf.get_server(sid)).status is ServerStatus.INSTALLING
    await _settled(vf, sid, ServerStatus.RUNNING)
    assert panel.servers[int(sid)].os_template_id == template


async def test_delete_is_delayed_then_gone(vf: VirtFusionProvider,
                                           life: tuple[VirtFusionSim, str]) -> None:
    panel, url = life
    sid = _pick(panel, power="shutoff", suspended=False, delete_level=0, build_failed=False)
    with held(panel):
        await vf.delete_server(sid)  # delete_delay_minutes=0: gone after the transition
        assert (await vf.get_server(sid)).status is ServerStatus.DELETING
    for _ in range(int(SAFETY_SECONDS / 0.05)):
        if int(sid) not in panel.servers:
            break
        await asyncio.sleep(0.05)
    with pytest.raises(errors.NotFound):
        await vf.get_server(sid)
    graceful = _build(url, panel.api_token)  # upstream default: a 5-minute grace period
    other = _pick(panel, power="running", suspended=False, delete_level=0, migrate_level=0)
    await graceful.delete_server(other)
    await asyncio.sleep(TRANSITION * 2)
    assert (await graceful.get_server(other)).status is ServerStatus.DELETING


async def test_create_builds_then_runs(vf: VirtFusionProvider,
                                       life: tuple[VirtFusionSim, str]) -> None:
    panel, _ = life
    spec = ServerSpec(name="order-77", node_id="2", resources=Resources(memory_mb=2048),
                      owner_id="3", template="1")
    created = await vf.create_server(spec)
    assert isinstance(created, ServerRecord)
    assert created.status is ServerStatus.INSTALLING
    sid = created.id
    raw = panel.servers[int(sid)]
    assert raw.package_id == 3 and raw.owner_id == 3  # smallest package with 2 GB
    assert panel.hypervisors[raw.hypervisor_id]["group"]["id"] == \
        panel.hypervisors[2]["group"]["id"]
    await _settled(vf, sid, ServerStatus.RUNNING)
    assert (await vf.get_server(sid)).name == "order-77"
    with pytest.raises(errors.InvalidRequest):
        await vf.create_server(ServerSpec(name="x", node_id="2", resources=Resources(),
                                          owner_id=None, template="1"))
    with pytest.raises(errors.InvalidRequest, match="package"):
        await vf.create_server(ServerSpec(name="x", node_id="2", resources=Resources(),
                                          owner_id="3", template="1",
                                          options={"packageId": 1}))


async def test_failed_build_shows_error(vf: VirtFusionProvider,
                                        life: tuple[VirtFusionSim, str]) -> None:
    spec = ServerSpec(name="doomed", node_id="1", resources=Resources(memory_mb=1024),
                      owner_id="2", template="13")
    created = await vf.create_server(spec)
    assert isinstance(created, ServerRecord)
    await _settled(vf, created.id, ServerStatus.ERROR)


async def test_seeded_busy_server_is_locked(vf: VirtFusionProvider,
                                            life: tuple[VirtFusionSim, str]) -> None:
    panel, _ = life
    busy = next(s for s in panel.servers.values() if s.busy == "backup")
    with pytest.raises(errors.Conflict) as info:
        await vf.power(str(busy.id), PowerAction.RESTART)
    assert info.value.retryable and "backup" in info.value.message


@respx.mock
async def test_delete_delay_and_action_paths(provider: VirtFusionProvider) -> None:
    route = respx.delete(f"{BASE}/servers/499").mock(return_value=httpx.Response(204))
    await provider.delete_server("499")
    assert "delay" not in route.calls.last.request.url.params  # upstream's 5-minute grace
    now = _build(BASE, "vf_token_k", delete_delay_minutes=0)
    await now.delete_server("499")
    assert route.calls.last.request.url.params["delay"] == "0"
    verbs = {PowerAction.START: "boot", PowerAction.STOP: "shutdown",
             PowerAction.RESTART: "restart", PowerAction.KILL: "poweroff"}
    for action, verb in verbs.items():
        power = respx.post(f"{BASE}/servers/499/power/{verb}").mock(
            return_value=httpx.Response(204))
        assert await provider.power("499", action) is None
        assert power.called


# -- users, login tokens, root password (issue 19) ---------------------------------------------
@respx.mock
async def test_login_token_answers_are_checked_not_trusted() -> None:
    provider = _build(BASE, "t")
    respx.get(f"{BASE}/servers/7").mock(return_value=httpx.Response(200, json={"data": {
        "id": 7, "ownerId": 3, "owner": {"id": 3, "email": "a@example.com",
                                         "extRelationId": 42}}}))
    tokens = respx.post(f"{BASE}/users/42/serverAuthenticationTokens/7")
    tokens.mock(return_value=httpx.Response(200, json={"data": {"authentication": {
        "endpoint_complete": "/sso/login/abc?server=7"}}}))
    link = await provider.login_url("Server", "7")
    assert link.url == "http://vf.test/sso/login/abc?server=7"  # the panel's origin, not /api
    assert link.username == "a@example.com"
    tokens.mock(return_value=httpx.Response(200, json={"data": {"authentication": {
        "endpoint_complete": "https://evil.example/phish"}}}))
    with pytest.raises(errors.UnexpectedResponse):
        await provider.login_url("Server", "7")  # only a path on the panel itself
    with pytest.raises(errors.InvalidRequest):
        await provider.login_url("Account", "3")  # tokens are per server
    with pytest.raises(errors.NotFound):
        await provider.login_url("Server", "../users")


@respx.mock
async def test_an_owner_without_relation_id_cannot_get_a_token() -> None:
    provider = _build(BASE, "t")
    respx.get(f"{BASE}/servers/8").mock(return_value=httpx.Response(200, json={"data": {
        "id": 8, "ownerId": 3, "owner": {"id": 3, "email": "a@example.com"}}}))
    with pytest.raises(errors.Conflict) as conflict:
        await provider.login_url("Server", "8")
    assert conflict.value.current_status == "NO_RELATION_ID"


@respx.mock
async def test_reset_password_and_taken_email() -> None:
    provider = _build(BASE, "t")
    reset = respx.post(f"{BASE}/servers/9/resetPassword")
    reset.mock(return_value=httpx.Response(200, json={"data": {"expectedPassword": "n3w"}}))
    assert await provider.reset_server_password("9", "root") == "n3w"
    assert reset.calls.last.request.content == b'{"user":"root","sendMail":false}'
    reset.mock(return_value=httpx.Response(200, json={"data": {}}))
    with pytest.raises(errors.UnexpectedResponse):
        await provider.reset_server_password("9", "root")
    respx.post(f"{BASE}/users").mock(return_value=httpx.Response(422, json={
        "message": "The given data was invalid.",
        "errors": {"email": ["The email has already been taken."]}}))
    from panelql.domain.records import AccountSpec
    with pytest.raises(errors.Conflict) as taken:
        await provider.create_account(AccountSpec(username="u", email="a@example.com",
                                                  external_ref="5"))
    assert taken.value.extensions["field"] == "email"
    respx.get(f"{BASE}/users/77/byExtRelation").mock(return_value=httpx.Response(
        404, json={"errors": ["user not found"]}))
    assert await provider.find_account_by_external_ref("77") is None
    assert await provider.find_account_by_external_ref("whmcs:77") is None  # never an int

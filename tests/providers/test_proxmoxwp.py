from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest
import respx

from panelql.domain.records import PowerAction, Resources, ServerSpec
from panelql.domain.status import BackupStatus, NodeStatus, ServerStatus
from panelql.providers import errors
from panelql.providers.config import ConnectionConfig, Secret
from panelql.providers.proxmoxwp.adapter import ProxmoxWPProvider
from panelql.providers.proxmoxwp.mapping import (
    BACKUP_STATUS,
    NODE_STATUS,
    PLANS,
    SERVER_STATUS,
    backup_id,
    backup_name,
    parse_quota,
    plan_for,
)
from panelql.providers.registry import build_provider
from panelql_sim import proxmoxwp as sim_module
from panelql_sim.framework import Knobs
from panelql_sim.proxmoxwp import ProxmoxWPSim
from panelql_sim.runner import BackgroundServers
from tests.providers.contract import ComputeContract, ContractEnv
from tests.providers.helpers import builder, clients, fixture
from tests.waits import SAFETY_SECONDS, held

BASE = "http://proxmoxwp.test"


# -- the compute contract over real HTTP against the simulator ---------------------------------
@pytest.fixture(scope="module")
def sim(background: BackgroundServers) -> Iterator[tuple[ProxmoxWPSim, str]]:
    panel = ProxmoxWPSim()
    served = background.serve("proxmoxwp-contract", panel.app())
    yield panel, served.url


@pytest.fixture
def env(sim: tuple[ProxmoxWPSim, str]) -> ContractEnv:
    panel, url = sim
    build = builder("proxmoxwp", url, api_key=panel.api_key)
    return ContractEnv(
        provider=build(), knobs=panel.knobs,
        with_bad_credentials=lambda: build(api_key="pwp_wrong"),
        with_timeout=lambda t: build(timeout=t),
    )


class TestProxmoxWPContract(ComputeContract):
    pass


async def test_reads_cost_a_constant_number_of_calls(sim: tuple[ProxmoxWPSim, str]) -> None:
    panel, url = sim
    provider = builder("proxmoxwp", url, api_key=panel.api_key)()
    assert isinstance(provider, ProxmoxWPProvider)
    panel.reset_stats()
    servers = await provider.list_servers()
    assert len(servers) == 12 and panel.total_requests == 1
    panel.reset_stats()
    backups = await provider.list_backups([s.id for s in servers])
    assert set(backups) == {s.id for s in servers} and panel.total_requests == 1
    panel.reset_stats()
    nodes = {n.id: n for n in await provider.list_nodes()}
    assert panel.total_requests == 2
    assert nodes["pve3"].status is NodeStatus.OFFLINE
    assert sum(len(n.server_ids or []) for n in nodes.values()) == 12


async def test_seeded_sites_are_in_mixed_states(sim: tuple[ProxmoxWPSim, str]) -> None:
    panel, url = sim
    provider = builder("proxmoxwp", url, api_key=panel.api_key)()
    assert isinstance(provider, ProxmoxWPProvider)
    statuses = {s.status for s in await provider.list_servers()}
    assert {ServerStatus.RUNNING, ServerStatus.STOPPED, ServerStatus.SUSPENDED,
            ServerStatus.INSTALLING, ServerStatus.ERROR, ServerStatus.UNKNOWN} <= statuses


# -- mapping tables ---------------------------------------------------------------------------
def test_mapping_table_covers_every_raw_status() -> None:
    # §0.1 has no ProxmoxWP column; these are the raw values documented in
    # docs/providers/proxmoxwp.md, and everything the simulator can emit must be among them.
    documented = {"running", "stopped", "starting", "stopping", "restarting", "installing",
                  "resetting", "restoring", "deleting", "error", "unknown"}
    assert set(SERVER_STATUS) == documented
    emitted = set(sim_module.BUSY) | {"running", "stopped", "error", "unknown"}
    for _, transient, final in sim_module.ACTIONS.values():
        emitted |= {transient, final}
    assert emitted <= documented
    assert SERVER_STATUS["restarting"] is ServerStatus.REBOOTING
    assert SERVER_STATUS["resetting"] is ServerStatus.RESTORING
    assert SERVER_STATUS["unknown"] is ServerStatus.UNKNOWN
    assert set(NODE_STATUS) == {"online", "offline", "unknown"}
    assert set(BACKUP_STATUS) == {"creating", "ready", "restoring", "failed"}
    assert BACKUP_STATUS["creating"] is BackupStatus.IN_PROGRESS


def test_plans_and_quota_helpers() -> None:
    assert {p: (v.memory_mb, v.disk_gb, v.backups, v.domains) for p, v in PLANS.items()} == {
        p: v for p, v in sim_module.PLANS.items()}
    assert plan_for(Resources(memory_mb=2048)) is PLANS["basic"]
    assert plan_for(Resources(memory_mb=3000, disk_mb=10_000)) is PLANS["standard"]
    assert plan_for(Resources(disk_mb=50 * 1024)) is PLANS["premium"]
    assert plan_for(Resources(memory_mb=16384)) is None
    assert parse_quota("2/3") == (2, 3) and parse_quota("x/3") is None
    assert backup_name("12345", backup_id("12345", "BAK11122025-1")) == "BAK11122025-1"
    assert backup_name("12345", "BAK11122025-1") == "BAK11122025-1"


# -- hand-written payloads (tests/fixtures/PROVENANCE.md) through respx ----------------------------
def make(**options: object) -> ProxmoxWPProvider:
    config = ConnectionConfig(name="pwp-test", kind="proxmoxwp", base_url=BASE,
                              credentials={"api_key": Secret("pwp_k")}, options=dict(options))
    built = build_provider(config, clients(BASE))
    assert isinstance(built, ProxmoxWPProvider)
    return built


@respx.mock
async def test_sites_from_hand_written_payload() -> None:
    route = respx.get(f"{BASE}/sites").mock(
        return_value=httpx.Response(200, json=fixture("proxmoxwp", "sites.json")))
    servers = {s.id: s for s in await make().list_servers()}
    assert route.calls.last.request.headers["authorization"] == "Bearer pwp_k"
    site = servers["12345"]
    assert site.status is ServerStatus.RUNNING and not site.suspended
    assert site.name == "customer.nodepoint.eu" and site.owner_id == "customer@example.com"
    assert site.addresses == ["customer.nodepoint.eu", "example.com", "www.example.com"]
    assert site.resources.memory_mb == 4096 and site.resources.disk_mb == 40 * 1024
    assert site.usage is not None and site.usage.cpu_percent == 4.25
    assert site.node_id == "pve1" and site.external_ref == "907"
    suspended = servers["12346"]
    assert suspended.status is ServerStatus.SUSPENDED and suspended.raw_status == "stopped"
    # lifecycle beats suspension
    installing = servers["12347"]
    assert installing.status is ServerStatus.INSTALLING and installing.suspended
    assert installing.name == "site-12347" and installing.usage is None
    legacy = servers["12348"]  # numeric id, capitalised plan, unmapped status
    assert legacy.status is ServerStatus.UNKNOWN and legacy.raw_status == "migrating"
    assert legacy.resources.memory_mb == 2048


@respx.mock
async def test_nodes_capacity_and_allocation() -> None:
    respx.get(f"{BASE}/nodes").mock(
        return_value=httpx.Response(200, json=fixture("proxmoxwp", "nodes.json")))
    respx.get(f"{BASE}/sites").mock(
        return_value=httpx.Response(200, json=fixture("proxmoxwp", "sites.json")))
    nodes = {n.id: n for n in await make().list_nodes()}
    pve1 = nodes["pve1"]
    assert pve1.status is NodeStatus.ONLINE
    assert pve1.capacity.memory_mb == 128 * 1024 and pve1.capacity.cpu_cores == 32
    assert pve1.allocated.memory_mb == 4096 + 8192
    assert pve1.server_ids == ["12345", "12347"]
    assert nodes["pve3"].status is NodeStatus.OFFLINE and nodes["pve3"].server_ids == ["12348"]


@respx.mock
async def test_backups_single_and_batch() -> None:
    getbak = respx.get(f"{BASE}/action/getbak").mock(
        return_value=httpx.Response(200, json=fixture("proxmoxwp", "getbak.json")))
    sites = respx.get(f"{BASE}/sites").mock(
        return_value=httpx.Response(200, json=fixture("proxmoxwp", "sites.json")))
    provider = make()
    single = (await provider.list_backups(["12345"]))["12345"]
    assert getbak.calls.last.request.url.params["service_id"] == "12345"
    assert [b.status for b in single] == [BackupStatus.COMPLETED, BackupStatus.RESTORING]
    assert single[0].id == "12345:BAK11122025-1" and single[0].name == "BAK11122025-1"
    assert single[0].created_at is not None and single[0].created_at.year == 2025
    batch = await provider.list_backups(["12345", "12346", "nope"])
    assert sites.call_count == 1
    assert [b.status for b in batch["12345"]] == [BackupStatus.COMPLETED,
                                                  BackupStatus.IN_PROGRESS]
    assert batch["12346"][0].status is BackupStatus.COMPLETED  # no state: a listed snapshot
    assert batch["nope"] == []
    respx.get(f"{BASE}/action/getbak").mock(
        return_value=httpx.Response(404, json={"success": False, "error": "Service not found"}))
    assert await provider.list_backups(["gone"]) == {"gone": []}


@respx.mock
async def test_status_call_and_precedence() -> None:
    respx.get(f"{BASE}/action/status").mock(
        return_value=httpx.Response(200, json=fixture("proxmoxwp", "status.json")))
    site = await make().get_site("12345")
    assert site.status is ServerStatus.RESTORING and site.suspended


@respx.mock
async def test_create_site_body_and_provisioning_timeout() -> None:
    route = respx.post(f"{BASE}/create-site").mock(
        return_value=httpx.Response(200, json=fixture("proxmoxwp", "create_site.json")))
    provider = make(public_ip="203.0.113.10", provision_timeout_seconds=90)
    spec = ServerSpec(name="ignored", node_id="", resources=Resources(memory_mb=3000),
                      owner_id="buyer@example.com", external_ref="20001")
    record = await provider.create_server(spec)
    request = route.calls.last.request
    assert json.loads(request.content) == {"service_id": "20001", "email": "buyer@example.com",
                                           "plan": "standard", "public_ip": "203.0.113.10"}
    assert request.extensions["timeout"]["read"] == 90
    assert record.status is ServerStatus.INSTALLING and record.node_id == "pve2"
    with pytest.raises(errors.InvalidRequest) as info:
        await provider.create_server(ServerSpec(name="x", node_id="", resources=Resources()))
    assert set(info.value.fields) == {"service_id", "email", "plan"}
    assert route.call_count == 1


@respx.mock
async def test_standard_calls_use_the_standard_timeout() -> None:
    route = respx.post(f"{BASE}/action/start").mock(
        return_value=httpx.Response(200, json={"success": True}))
    await make().power("12345", PowerAction.START)
    assert route.calls.last.request.extensions["timeout"]["read"] == 25
    assert json.loads(route.calls.last.request.content) == {"service_id": "12345"}


@respx.mock
async def test_error_envelopes_become_provider_errors() -> None:
    provider = make()
    respx.post(f"{BASE}/action/setdomain").mock(
        return_value=httpx.Response(409, json={"success": False, "error": "Domain already exists"}))
    with pytest.raises(errors.Conflict) as conflict:
        await provider.add_domain("12345", "example.com")
    assert conflict.value.message == "Domain already exists"
    respx.post(f"{BASE}/action/mkbak").mock(
        return_value=httpx.Response(401, json={"success": False, "error": "Service is suspended"}))
    with pytest.raises(errors.Conflict) as suspended:
        await provider.create_backup("12345", None)
    assert suspended.value.current_status == "suspended" and suspended.value.provider == "pwp-test"
    respx.post(f"{BASE}/action/stop").mock(
        return_value=httpx.Response(401, json={"success": False, "error": "Invalid API key"}))
    with pytest.raises(errors.AuthenticationFailed):
        await provider.power("12345", PowerAction.STOP)
    respx.post(f"{BASE}/action/restart").mock(
        return_value=httpx.Response(200, json={"success": False, "error": "Proxmox said no"}))
    with pytest.raises(errors.InvalidRequest, match="Proxmox said no"):
        await provider.power("12345", PowerAction.RESTART)
    respx.post(f"{BASE}/action/reset").mock(
        return_value=httpx.Response(500, text="<html><p>Internal Server Error</p></html>"))
    with pytest.raises(errors.Unavailable):
        await provider.reinstall_server("12345")
    respx.get(f"{BASE}/sites").mock(
        return_value=httpx.Response(200, json={"success": True, "sites": {"12345": {}}}))
    with pytest.raises(errors.UnexpectedResponse):
        await provider.list_servers()
    respx.get(f"{BASE}/nodes").mock(
        return_value=httpx.Response(200, json={"success": True, "nodes": [{"name": "pve1"}]}))
    with pytest.raises(errors.UnexpectedResponse):
        await provider.list_nodes()
    with pytest.raises(errors.CapabilityNotSupported):
        await provider.power("12345", PowerAction.KILL)


def test_bad_provision_timeout_option_is_rejected() -> None:
    with pytest.raises(errors.InvalidRequest):
        make(provision_timeout_seconds="soon")


# -- lifecycle actions against the simulator --------------------------------------------------
@pytest.fixture(scope="module")
def life(background: BackgroundServers) -> Iterator[tuple[ProxmoxWPSim, str]]:
    panel = ProxmoxWPSim(knobs=Knobs(transition_seconds=0.15))
    served = background.serve("proxmoxwp-lifecycle", panel.app())
    yield panel, served.url


@pytest.fixture
def wp(life: tuple[ProxmoxWPSim, str]) -> ProxmoxWPProvider:
    panel, url = life
    built = builder("proxmoxwp", url, api_key=panel.api_key)()
    assert isinstance(built, ProxmoxWPProvider)
    return built


@pytest.fixture
def panel(life: tuple[ProxmoxWPSim, str]) -> ProxmoxWPSim:
    return life[0]


async def settle(wp: ProxmoxWPProvider, sid: str, status: ServerStatus) -> None:
    deadline = time.monotonic() + SAFETY_SECONDS
    while (await wp.get_site(sid)).status is not status:
        assert time.monotonic() < deadline, f"{sid} never reached {status}"
        await asyncio.sleep(0.05)


async def test_power_actions_change_state(wp: ProxmoxWPProvider, panel: ProxmoxWPSim) -> None:
    sid = "10003"  # seeded stopped (premium)
    assert (await wp.get_site(sid)).status is ServerStatus.STOPPED
    with held(panel):
        await wp.power(sid, PowerAction.START)
        assert (await wp.get_site(sid)).status is ServerStatus.STARTING
    await settle(wp, sid, ServerStatus.RUNNING)
    with pytest.raises(errors.Conflict):
        await wp.power(sid, PowerAction.START)
    with held(panel):
        await wp.power(sid, PowerAction.RESTART)
        assert (await wp.get_site(sid)).status is ServerStatus.REBOOTING
    await settle(wp, sid, ServerStatus.RUNNING)
    await wp.power(sid, PowerAction.STOP)
    await settle(wp, sid, ServerStatus.STOPPED)
    with pytest.raises(errors.CapabilityNotSupported):
        await wp.power(sid, PowerAction.KILL)
    with pytest.raises(errors.NotFound):
        await wp.power("99999", PowerAction.START)


async def test_suspend_blocks_actions_until_unsuspended(wp: ProxmoxWPProvider,
                                                        panel: ProxmoxWPSim) -> None:
    sid = "10001"  # seeded running
    await wp.suspend_server(sid, "non-payment")
    await wp.suspend_server(sid, None)  # idempotent
    site = await wp.get_site(sid)
    assert site.status is ServerStatus.SUSPENDED and site.raw_status == "stopped"
    for call in (wp.power(sid, PowerAction.START), wp.reinstall_server(sid),
                 wp.create_backup(sid, None), wp.add_domain(sid, "blocked.example")):
        with pytest.raises(errors.Conflict) as info:
            await call
        assert info.value.current_status == "suspended"
    with held(panel):
        await wp.unsuspend_server(sid)
        assert (await wp.get_site(sid)).status is ServerStatus.STARTING
    await settle(wp, sid, ServerStatus.RUNNING)


async def test_reset_rolls_back_to_initial(wp: ProxmoxWPProvider, panel: ProxmoxWPSim) -> None:
    sid = "10004"
    with held(panel):
        await wp.reinstall_server(sid)
        assert (await wp.get_site(sid)).status is ServerStatus.RESTORING
        with pytest.raises(errors.Conflict):  # busy
            await wp.power(sid, PowerAction.STOP)
    await settle(wp, sid, ServerStatus.RUNNING)
    with pytest.raises(errors.Conflict):  # still provisioning
        await wp.reinstall_server("10006")


async def test_resize_by_plan(wp: ProxmoxWPProvider, life: tuple[ProxmoxWPSim, str]) -> None:
    sid = "10011"  # seeded standard plan, running
    await wp.resize_server(sid, Resources(memory_mb=8000))
    assert (await wp.get_site(sid)).resources.memory_mb == 8192
    with pytest.raises(errors.InvalidRequest):
        await wp.resize_server(sid, Resources(memory_mb=64000))
    with pytest.raises(errors.InvalidRequest):
        await wp.change_plan(sid, "enterprise")
    panel, _ = life
    for _ in range(3):  # fill premium's backup quota beyond what basic allows
        await wp.create_backup(sid, None)
    assert len(panel.sites[sid].backups) > PLANS["basic"].backups
    with pytest.raises(errors.Conflict):
        await wp.change_plan(sid, "basic")


async def test_create_then_delete_site(wp: ProxmoxWPProvider, panel: ProxmoxWPSim) -> None:
    spec = ServerSpec(name="shop", node_id="", resources=Resources(), template="Premium",
                      options={"service_id": "30001", "email": "buyer@example.com",
                               "public_ip": "203.0.113.10"})
    with held(panel):
        record = await wp.create_server(spec)
        assert record.id == "30001" and record.status is ServerStatus.INSTALLING
        assert record.resources.memory_mb == 8192 and record.name == "wp30001.nodepoint.eu"
        with pytest.raises(errors.Conflict, match="already exists"):
            await wp.create_server(spec)
    await settle(wp, "30001", ServerStatus.RUNNING)
    with held(panel):
        await wp.delete_server("30001")
        assert (await wp.get_site("30001")).status is ServerStatus.DELETING
    deadline = time.monotonic() + SAFETY_SECONDS
    while "30001" in {s.id for s in await wp.list_servers()}:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    with pytest.raises(errors.NotFound):
        await wp.delete_server("30001")
    bad = ServerSpec(name="x", node_id="", resources=Resources(), template="gold",
                     options={"service_id": "30002", "email": "a@b.c", "public_ip": "1.2.3.4"})
    with pytest.raises(errors.InvalidRequest, match="Unknown plan"):
        await wp.create_server(bad)


async def test_backup_create_restore_delete(wp: ProxmoxWPProvider, panel: ProxmoxWPSim) -> None:
    sid = "10007"  # basic plan: 2 backups, one seeded
    with held(panel):
        backup = await wp.create_backup(sid, "ignored")
        today = time.strftime("%d%m%Y", time.gmtime())
        assert backup.name.startswith(f"BAK{today}-") and backup.id == f"{sid}:{backup.name}"
        assert backup.status is BackupStatus.IN_PROGRESS
        with pytest.raises(errors.Conflict, match="Backup limit exceeded"):
            await wp.create_backup(sid, None)

    async def last_backup() -> BackupStatus:
        return (await wp.list_backups([sid]))[sid][-1].status
    deadline = time.monotonic() + SAFETY_SECONDS
    while await last_backup() is not BackupStatus.COMPLETED:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    with held(panel):
        await wp.restore_backup(sid, backup.id)
        assert (await wp.get_site(sid)).status is ServerStatus.RESTORING
    await settle(wp, sid, ServerStatus.RUNNING)
    # the snapshot leaves "restoring" on the same timer as the site: wait for that, not a clock
    while await last_backup() is not BackupStatus.COMPLETED:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await wp.delete_backup(sid, backup.id)
    assert backup.name not in {b.name for b in (await wp.list_backups([sid]))[sid]}
    with pytest.raises(errors.NotFound):
        await wp.delete_backup(sid, backup.id)
    with pytest.raises(errors.NotFound):
        await wp.restore_backup(sid, "BAK01011999-1")


async def test_domains_and_proxy_toggle(wp: ProxmoxWPProvider) -> None:
    sid = "10004"  # basic plan, no seeded domains
    await wp.add_domain(sid, "Customer-Shop.example")
    assert "customer-shop.example" in await wp.list_domains(sid)
    assert "customer-shop.example" in (await wp.get_site(sid)).addresses
    with pytest.raises(errors.Conflict, match="Domain already exists"):
        await wp.add_domain(sid, "customer-shop.example")
    with pytest.raises(errors.InvalidRequest, match="does not point"):
        await wp.add_domain(sid, "elsewhere.invalid")
    await wp.remove_domain(sid, "customer-shop.example")
    assert await wp.list_domains(sid) == []
    with pytest.raises(errors.NotFound):
        await wp.remove_domain(sid, "customer-shop.example")
    first = await wp.toggle_proxy(sid)
    assert await wp.toggle_proxy(sid) is (not first)

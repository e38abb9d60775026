"""Proxmox VE adapter: the real proxmoxer over real TLS against ProxmoxSim, plus hand-written
payloads.

proxmoxer uses requests, so respx cannot see it; the hand-written-payload tests mount a small
requests transport (``FakePve``) on proxmoxer's session instead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from panelql.domain.records import PowerAction, Resources, ServerSpec, TaskHandle
from panelql.domain.status import BackupStatus, NodeStatus, ServerStatus
from panelql.providers import errors
from panelql.providers.config import ConnectionConfig, Secret
from panelql.providers.proxmox import suspension
from panelql.providers.proxmox.adapter import ProxmoxProvider, build_api
from panelql.providers.proxmox.boundary import ProxmoxClient
from panelql.providers.proxmox.mapping import SERVER_STATUS, server_status
from panelql.providers.registry import build_provider
from panelql_sim.framework import Knobs
from panelql_sim.proxmox import ProxmoxSim
from panelql_sim.runner import BackgroundServers
from tests.providers.contract import ComputeContract, ContractEnv
from tests.providers.helpers import FIXTURES, clients
from tests.waits import SAFETY_SECONDS, held

TOKEN_ID = "root@pam!panelql"


def pve_config(url: str, secret: str, *, timeout: float = 5.0, name: str = "pve-test",
               token_id: str = TOKEN_ID, **options: Any) -> ConnectionConfig:
    return ConnectionConfig(
        name=name, kind="proxmox", base_url=url, timeout_seconds=timeout,
        credentials={"token_id": Secret(token_id), "token_secret": Secret(secret)},
        options=options,
    )


def connect(sim: ProxmoxSim, url: str, **overrides: Any) -> ProxmoxProvider:
    settings: dict[str, Any] = {"ca_bundle": sim.tls.ca_path, **overrides}
    secret = settings.pop("secret", sim.token_secret)
    provider = build_provider(pve_config(url, secret, **settings), clients(url))
    assert isinstance(provider, ProxmoxProvider)
    return provider


def serve(background: BackgroundServers, name: str, sim: ProxmoxSim) -> str:
    return background.serve(name, sim.app(), **sim.serve_options()).url


async def finish(provider: ProxmoxProvider, handle: object,
                 timeout: float = SAFETY_SECONDS) -> tuple[bool, str | None]:
    assert isinstance(handle, TaskHandle) and handle.id.startswith("UPID:")
    async with asyncio.timeout(timeout):
        while True:
            progress = await provider.poll_task(handle)
            if progress.done:
                return progress.ok, progress.error
            await asyncio.sleep(0.05)


async def server(provider: ProxmoxProvider, vmid: str) -> Any:
    return (await provider.get_servers([vmid]))[vmid]


# -- the family contract over real TLS -----------------------------------------------------------
@pytest.fixture(scope="module")
def sim(background: BackgroundServers) -> Iterator[tuple[ProxmoxSim, str]]:
    panel = ProxmoxSim(servers=24, knobs=Knobs(transition_seconds=0.2))
    yield panel, serve(background, "proxmox-contract", panel)


@pytest.fixture
def env(sim: tuple[ProxmoxSim, str]) -> ContractEnv:
    panel, url = sim
    return ContractEnv(
        provider=connect(panel, url), knobs=panel.knobs,
        with_bad_credentials=lambda: connect(panel, url,
                                             secret="00000000-0000-0000-0000-000000000000"),
        with_timeout=lambda t: connect(panel, url, timeout=t),
    )


class TestProxmoxContract(ComputeContract):
    pass


async def test_seeded_states_come_through(sim: tuple[ProxmoxSim, str]) -> None:
    panel, url = sim
    provider = connect(panel, url)
    servers = {s.id: s for s in await provider.list_servers()}
    assert "9000" not in servers  # templates are not servers
    statuses = {s.status for s in servers.values()}
    assert {ServerStatus.RUNNING, ServerStatus.STOPPED, ServerStatus.PAUSED,
            ServerStatus.SUSPENDED, ServerStatus.INSTALLING, ServerStatus.MIGRATING,
            ServerStatus.RESTORING, ServerStatus.ERROR, ServerStatus.UNKNOWN} <= statuses
    on_dead_node = [s for s in servers.values() if s.node_id == "pve3"]
    assert on_dead_node and all((s.raw_status or "").startswith("unknown") for s in on_dead_node)
    # no power state without the node, but a lifecycle lock (from the config) still shows
    assert all(s.status is ServerStatus.UNKNOWN for s in on_dead_node if "lock" not in
               (s.raw_status or "") and "hastate" not in (s.raw_status or ""))
    nodes = {n.id: n for n in await provider.list_nodes()}
    assert nodes["pve3"].status is NodeStatus.OFFLINE
    assert nodes["pve1"].status is NodeStatus.ONLINE
    assert nodes["pve1"].capacity.memory_mb == 128 * 1024
    pve1 = [s for s in servers.values() if s.node_id == "pve1"]
    assert nodes["pve1"].allocated.memory_mb == sum(s.resources.memory_mb or 0 for s in pve1)
    assert set(nodes["pve1"].server_ids or []) == {s.id for s in pve1}
    await provider.aclose()


async def test_paused_from_list_and_live_state(sim: tuple[ProxmoxSim, str]) -> None:
    panel, url = sim
    provider = connect(panel, url)
    paused = await server(provider, "104")
    assert paused.status is ServerStatus.PAUSED and paused.raw_status == "paused"
    live = await provider.get_live_states(["104", "100", "102"])
    assert live["104"].status is ServerStatus.PAUSED
    assert live["104"].raw_status == "running qmpstatus=paused"
    assert live["100"].status is ServerStatus.RUNNING
    assert live["102"].status is ServerStatus.UNKNOWN  # on the offline node: not asked
    await provider.aclose()


async def test_one_cluster_call_for_a_thousand_guests(background: BackgroundServers) -> None:
    panel = ProxmoxSim(servers=1000)
    url = serve(background, "proxmox-1000", panel)
    provider = connect(panel, url)
    panel.reset_stats()
    servers = await provider.list_servers()
    assert len(servers) == 1000
    assert dict(panel.stats) == {"GET /*/json/cluster/resources": 1}
    panel.reset_stats()
    nodes = await provider.list_nodes()
    assert sum(len(n.server_ids or []) for n in nodes) == 1000
    assert panel.total_requests == 1
    panel.reset_stats()
    no_snapshots = connect(panel, url, include_snapshots=False)
    backups = await no_snapshots.list_backups([s.id for s in servers])
    listable = [a for a in panel.archives.values()
                if a.node is None or panel.nodes[a.node].online]
    assert len(backups) == 1000 and sum(map(len, backups.values())) == len(listable) > 300
    # 1 cluster call + local@pve1 + local@pve2 + the shared nfs-backup once (not per node)
    assert panel.total_requests == 4
    await provider.aclose()
    await no_snapshots.aclose()


async def test_backups_merge_archives_and_snapshots(sim: tuple[ProxmoxSim, str]) -> None:
    panel, url = sim
    provider = connect(panel, url)
    backups = (await provider.list_backups(["100"]))["100"]
    ids = {b.id for b in backups}
    assert {"100@initial", "100@BAK01012025-1"} <= ids
    archives = [b for b in backups if ":" in b.id]
    assert len(archives) == 2 and all(b.status is BackupStatus.COMPLETED for b in archives)
    assert any(b.locked for b in archives)  # the protected one
    assert all(b.size_bytes for b in archives)
    await provider.aclose()


# -- TLS and the wire ----------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
async def test_tls_is_verified(sim: tuple[ProxmoxSim, str]) -> None:
    panel, url = sim
    strict = connect(panel, url, ca_bundle=None)  # system trust store only
    with pytest.raises(errors.Unavailable) as info:
        await strict.check_health()
    assert "TLS" in info.value.message
    await strict.aclose()
    unverified = connect(panel, url, ca_bundle=None, verify_ssl=False)
    await unverified.check_health()
    await unverified.aclose()


def test_errors_carry_the_reason_phrase(sim: tuple[ProxmoxSim, str]) -> None:
    panel, url = sim
    response = requests.post(
        f"{url}/api2/json/nodes/pve1/qemu/100/status/start", verify=panel.tls.ca_path,
        headers={"Authorization": f"PVEAPIToken={panel.token_id}={panel.token_secret}"},
        timeout=5)
    assert response.status_code == 500
    assert response.reason == "VM 100 already running"
    assert response.json() == {"data": None}


# -- lifecycle against the simulator -------------------------------------------------------------
@pytest.fixture
def lab(background: BackgroundServers) -> Iterator[tuple[ProxmoxSim, ProxmoxProvider]]:
    panel = ProxmoxSim(servers=24, knobs=Knobs(transition_seconds=0.15))
    url = serve(background, f"proxmox-lab-{id(panel)}", panel)
    provider = connect(panel, url)
    yield panel, provider
    provider.client.close()
    background.stop_one(f"proxmox-lab-{id(panel)}")


async def test_power_cycle(lab: tuple[ProxmoxSim, ProxmoxProvider]) -> None:
    _, provider = lab
    assert (await server(provider, "100")).status is ServerStatus.RUNNING
    assert await finish(provider, await provider.power("100", PowerAction.STOP)) == (True, None)
    assert (await server(provider, "100")).status is ServerStatus.STOPPED
    with pytest.raises(errors.Conflict) as info:
        await provider.power("100", PowerAction.RESTART)
    assert info.value.message == "VM 100 not running"
    assert await finish(provider, await provider.power("100", PowerAction.START)) == (True, None)
    assert (await server(provider, "100")).status is ServerStatus.RUNNING
    with pytest.raises(errors.Conflict):
        await provider.power("100", PowerAction.START)
    await finish(provider, await provider.power("100", PowerAction.KILL))
    assert (await server(provider, "100")).status is ServerStatus.STOPPED


async def test_wrong_state_and_missing_guests(lab: tuple[ProxmoxSim, ProxmoxProvider]) -> None:
    _, provider = lab
    with pytest.raises(errors.Conflict) as locked:
        await provider.power("109", PowerAction.STOP)  # seeded with lock=migrate
    assert locked.value.retryable and "locked (migrate)" in locked.value.message
    with pytest.raises(errors.NotFound):
        await provider.power("4242", PowerAction.START)
    with pytest.raises(errors.Unavailable) as dead:
        await provider.power("102", PowerAction.START)  # lives on the offline node
    assert dead.value.upstream_status == 595


@pytest.mark.parametrize("vmid", ["101", "103"])  # a VM and a container, both running
async def test_suspend_for_non_payment_marks_stops_and_restores(
        lab: tuple[ProxmoxSim, ProxmoxProvider], background: BackgroundServers,
        vmid: str) -> None:
    panel, provider = lab
    guest = panel.guests[int(vmid)]
    guest.tags, guest.description = "customer-004;gold", "Rack 4, call before reboot"
    handle = await provider.suspend_server(vmid, "Invoice #17 overdue")
    during = await server(provider, vmid)
    assert during.status is ServerStatus.SUSPENDED and during.suspended
    assert during.suspension_reason == "Invoice #17 overdue"
    assert await finish(provider, handle) == (True, None)
    # What PVE holds, so a restarted gateway and the PVE UI see the same: a tag and a note.
    assert not guest.running and guest.tags == "customer-004;gold;panelql-suspended"
    assert guest.description == ('Rack 4, call before reboot\n\n'
                                 '[PanelQL] suspended, was running: "Invoice #17 overdue"')
    fresh = connect(panel, background.served[f"proxmox-lab-{id(panel)}"].url)
    after = await server(fresh, vmid)
    assert after.status is ServerStatus.SUSPENDED and after.raw_status == (
        "stopped tag=panelql-suspended")
    assert after.suspension_reason == "Invoice #17 overdue"
    live = await fresh.get_live_states([vmid])
    assert live[vmid].status is ServerStatus.SUSPENDED
    with pytest.raises(errors.Conflict, match="already suspended"):
        await fresh.suspend_server(vmid, "again")
    await fresh.aclose()
    assert await finish(provider, await provider.unsuspend_server(vmid)) == (True, None)
    resumed = await server(provider, vmid)
    assert resumed.status is ServerStatus.RUNNING and not resumed.suspended
    assert resumed.suspension_reason is None
    assert guest.tags == "customer-004;gold" and guest.description == "Rack 4, call before reboot"
    with pytest.raises(errors.Conflict, match="not suspended"):
        await provider.unsuspend_server(vmid)


def test_the_suspension_note_keeps_any_reason_and_the_operators_notes() -> None:
    reason = 'Invoice "17"\nsecond line \\ with a backslash'
    text = suspension.add_note("Rack 4\n", "running", reason)
    assert text is not None and text.startswith("Rack 4\n\n[PanelQL] suspended, was running: ")
    assert suspension.read_note(text) == suspension.Note("running", reason)
    assert suspension.remove_note(text) == "Rack 4"
    crowded = suspension.add_note("x" * 8100, "stopped", "y" * 200)  # 8192 is PVE's limit
    assert crowded is not None and len(crowded) <= suspension.NOTES_LIMIT
    assert suspension.read_note(crowded) == suspension.Note("stopped", None)
    assert suspension.add_note("x" * 8190, "stopped", None) is None  # the tag alone, then
    assert suspension.tags_with_mark("a,b c") == "a;b;c;panelql-suspended"
    assert suspension.tags_without_mark("a;PanelQL-Suspended;b") == "a;b"


async def test_a_stopped_guest_stays_stopped_after_unsuspend(
        lab: tuple[ProxmoxSim, ProxmoxProvider]) -> None:
    panel, provider = lab
    guest = panel.guests[106]  # a stopped container
    guest.tags = ""  # without tags or notes
    assert guest.type == "lxc" and not guest.running and not guest.description
    assert await provider.suspend_server("106", None) is None  # nothing to stop
    assert (await server(provider, "106")).status is ServerStatus.SUSPENDED
    assert guest.description == "[PanelQL] suspended, was stopped: null"
    assert await provider.unsuspend_server("106") is None  # nothing to start
    assert (await server(provider, "106")).status is ServerStatus.STOPPED
    assert (guest.tags, guest.description) == ("", "")  # deleted, not left empty


async def test_suspension_without_stopping_and_a_hibernated_vm(
        lab: tuple[ProxmoxSim, ProxmoxProvider]) -> None:
    panel, provider = lab
    assert await provider.suspend_server("100", "review", stop=False) is None
    assert panel.guests[100].running
    assert (await server(provider, "100")).status is ServerStatus.SUSPENDED
    assert await provider.unsuspend_server("100") is None  # still running: nothing to start
    # a VM hibernated in PVE (lock=suspended) is resumed, as before
    panel.guests[100].power_off()
    panel.guests[100].lock = "suspended"
    assert await finish(provider, await provider.unsuspend_server("100")) == (True, None)
    assert (await server(provider, "100")).status is ServerStatus.RUNNING


async def test_a_concurrent_config_edit_is_not_overwritten(
        lab: tuple[ProxmoxSim, ProxmoxProvider]) -> None:
    """The config is written with the digest read: an edit in between fails the write."""
    panel, provider = lab
    stale = await provider.client.call(lambda api: api.nodes("pve1").lxc(103).config.get(),
                                       "config")
    panel.guests[103].description = "edited in the PVE UI meanwhile"
    with pytest.raises(errors.Conflict) as raced:
        await provider.client.call(lambda api: api.nodes("pve1").lxc(103).config.put(
            tags="x", digest=stale["digest"]), "config")
    assert raced.value.retryable and "changed by other user" in raced.value.message


async def test_the_simulator_checks_parameters_as_pve_does(
        lab: tuple[ProxmoxSim, ProxmoxProvider]) -> None:
    """pve-common JSONSchema wording; vzdump's notes-template requires storage (the old bug)."""
    _, provider = lab
    with pytest.raises(errors.InvalidRequest) as no_storage:
        await provider.client.call(lambda api: api.nodes("pve1").vzdump.post(
            vmid=100, **{"notes-template": "{{guestname}}"}), "vzdump")
    assert no_storage.value.fields == {"storage": "missing property required by "
                                                  "'notes-template'"}
    with pytest.raises(errors.InvalidRequest) as bad:
        await provider.client.call(lambda api: api.nodes("pve1").lxc(103).config.put(
            tags="ok;not ok!", colour="red"), "config")
    assert bad.value.fields == {
        "tags": "invalid format - invalid characters in tag",
        "colour": "property is not defined in schema and the schema does not allow "
                  "additional properties"}
    with pytest.raises(errors.InvalidRequest) as flag:
        await provider.client.call(lambda api: api.nodes("pve1").lxc(103).status.shutdown.post(
            forceStop="yes"), "shutdown")
    assert flag.value.fields == {"forceStop": "type check ('boolean') failed - got 'yes'"}
    with pytest.raises(errors.InvalidRequest) as content:
        await provider.client.call(lambda api: api.nodes("pve1").storage.get(
            content="backup,bogus"), "storage list")
    assert content.value.fields == {"content": "invalid format - invalid content type 'bogus'"}


async def test_create_resize_delete(lab: tuple[ProxmoxSim, ProxmoxProvider]) -> None:
    panel, provider = lab
    spec = ServerSpec(name="order-1", node_id="pve1",
                      resources=Resources(memory_mb=2048, cpu_cores=2, disk_mb=20480))
    with held(panel):  # the in-between state stays until the block ends
        handle = await provider.create_server(spec)
        assert isinstance(handle, TaskHandle)
        vmid = handle.id.split(":")[6]  # the UPID names the new guest
        assert (await server(provider, vmid)).status is ServerStatus.INSTALLING
    assert await finish(provider, handle) == (True, None)
    created = await server(provider, vmid)
    assert created.status is ServerStatus.STOPPED and created.name == "order-1"
    assert created.resources == Resources(memory_mb=2048, cpu_cores=2.0, disk_mb=20480)
    resize = await provider.resize_server(vmid, Resources(memory_mb=4096, cpu_cores=4,
                                                          disk_mb=40960))
    await finish(provider, resize)
    assert (await server(provider, vmid)).resources == Resources(4096, 4.0, 40960)
    with pytest.raises(errors.InvalidRequest, match="shrinking"):
        await provider.resize_server(vmid, Resources(disk_mb=1024))
    with pytest.raises(errors.Conflict):
        await provider.delete_server("100")  # running
    await finish(provider, await provider.delete_server(vmid))
    assert vmid not in await provider.get_servers([vmid])


async def test_backup_restore_and_delete(lab: tuple[ProxmoxSim, ProxmoxProvider]) -> None:
    panel, provider = lab
    before = {b.id for b in (await provider.list_backups(["100"]))["100"]}
    with held(panel):
        handle = await provider.create_backup("100", "before-upgrade")
        assert isinstance(handle, TaskHandle)
        running = await server(provider, "100")
        assert running.status is ServerStatus.RUNNING
        assert "lock=backup" in (running.raw_status or "")
    assert await finish(provider, handle) == (True, None)
    after = (await provider.list_backups(["100"]))["100"]
    new = [b for b in after if b.id not in before]
    assert len(new) == 1 and new[0].name == "before-upgrade"
    # no backup_storage option: the node's shared backup storage, so notes can be kept
    assert new[0].id.startswith("nfs-backup:backup/vzdump-qemu-100-")
    with pytest.raises(errors.Conflict, match="is running"):
        await provider.restore_backup("100", new[0].id)
    await finish(provider, await provider.power("100", PowerAction.KILL))
    with held(panel):
        restore = await provider.restore_backup("100", new[0].id)
        assert (await server(provider, "100")).status is ServerStatus.INSTALLING  # lock=create
    assert await finish(provider, restore) == (True, None)
    await provider.delete_backup("100", new[0].id)
    assert new[0].id not in {b.id for b in (await provider.list_backups(["100"]))["100"]}
    protected = next(b for b in after if b.locked)
    with pytest.raises(errors.Conflict, match="protected"):
        await provider.delete_backup("100", protected.id)
    with pytest.raises(errors.NotFound):
        await provider.delete_backup("101", protected.id)


async def test_snapshot_rollback_and_delete(lab: tuple[ProxmoxSim, ProxmoxProvider]) -> None:
    panel, provider = lab
    with held(panel):
        rollback = await provider.restore_backup("100", "100@initial")
        assert (await server(provider, "100")).status is ServerStatus.RESTORING
    await finish(provider, rollback)
    assert (await server(provider, "100")).status is ServerStatus.STOPPED
    with held(panel):
        await provider.delete_backup("100", "100@BAK01012025-1")
        snaps = {b.id: b for b in (await provider.list_backups(["100"]))["100"] if "@" in b.id}
        assert snaps["100@BAK01012025-1"].status is BackupStatus.IN_PROGRESS  # snapstate=delete

    async def gone() -> bool:
        return "100@BAK01012025-1" not in {
            b.id for b in (await provider.list_backups(["100"]))["100"]}
    async with asyncio.timeout(SAFETY_SECONDS):
        while not await gone():
            await asyncio.sleep(0.05)
    with pytest.raises(errors.NotFound):
        await provider.restore_backup("101", "100@initial")


async def test_snapshot_backups_when_configured(
        lab: tuple[ProxmoxSim, ProxmoxProvider], background: BackgroundServers) -> None:
    panel, _ = lab
    url = background.served[f"proxmox-lab-{id(panel)}"].url
    snapshotting = connect(panel, url, backup_kind="snapshot")
    handle = await snapshotting.create_backup("101", "BAK31012025 #1")
    await finish(snapshotting, handle)
    names = {b.name for b in (await snapshotting.list_backups(["101"]))["101"]}
    assert "BAK31012025--1" in names
    await snapshotting.aclose()


async def test_failed_task_reports_its_exit_status(
        lab: tuple[ProxmoxSim, ProxmoxProvider]) -> None:
    _, provider = lab
    handle = await provider.create_backup("107", None)  # seeded with lock=create
    assert await finish(provider, handle) == (False, "job errors")
    with pytest.raises(errors.InvalidRequest):
        await provider.poll_task(TaskHandle("not-a-upid"))


# -- hand-written payloads (tests/fixtures/PROVENANCE.md) through a fake requests transport --------
Route = tuple[int, str, Any]


class FakePve(requests.adapters.BaseAdapter):
    """Answers proxmoxer's requests from hand-written bodies, keyed by (method, path)."""

    def __init__(self, routes: dict[tuple[str, str], Route | Exception]) -> None:
        super().__init__()
        self.routes = routes
        self.seen: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: Any = None, verify: Any = True, cert: Any = None,
             proxies: Any = None) -> requests.Response:
        self.seen.append(request)
        path = urlsplit(request.url or "").path.removeprefix("/api2/json")
        route = self.routes[(request.method or "GET", path)]
        if isinstance(route, Exception):
            raise route
        status, reason, body = route
        response = requests.Response()
        response.status_code, response.reason, response.url = status, reason, request.url or ""
        response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
        response.request = request
        return response

    def close(self) -> None:
        pass


def hand_written(name: str) -> Any:
    return json.loads((FIXTURES / "proxmox" / name).read_text())


@pytest.fixture
def fake() -> Iterator[Callable[..., tuple[ProxmoxProvider, FakePve]]]:
    built: list[ProxmoxProvider] = []

    def build(routes: dict[tuple[str, str], Route | Exception],
              **options: Any) -> tuple[ProxmoxProvider, FakePve]:
        transport = FakePve(routes)
        config = pve_config("https://pve.example:8006", "0f1e2d3c-0000-4000-8000-123456789abc",
                            timeout=7.5, **options)
        provider = ProxmoxProvider(config, ProxmoxClient(build_api(config, transport),
                                                         config.name))
        built.append(provider)
        return provider, transport
    yield build
    for provider in built:
        provider.client.close()


async def test_hand_written_cluster_resources(fake: Callable[..., Any]) -> None:
    provider, transport = fake({("GET", "/cluster/resources"):
                                (200, "OK", hand_written("cluster_resources.json"))})
    servers = {s.id: s for s in await provider.list_servers()}
    request = transport.seen[0]
    assert request.headers["Authorization"] == \
        f"PVEAPIToken={TOKEN_ID}=0f1e2d3c-0000-4000-8000-123456789abc"
    # unfiltered: the same answer serves servers, nodes and the backup storages (one round)
    assert dict(parse_qsl(urlsplit(request.url or "").query)) == {}
    assert set(servers) == {"100", "101", "102", "103", "104", "105", "106", "107"}
    web = servers["100"]
    assert web.status is ServerStatus.RUNNING and web.node_id == "pve1"
    assert web.resources == Resources(memory_mb=4096, cpu_cores=2.0, disk_mb=32768)
    assert web.usage is not None and web.usage.cpu_percent == 5.23
    assert web.usage.uptime_seconds == 86400 and web.external_ref == "qemu/100"
    assert servers["101"].status is ServerStatus.PAUSED
    assert servers["102"].status is ServerStatus.SUSPENDED and servers["102"].suspended
    assert servers["103"].status is ServerStatus.INSTALLING
    assert servers["104"].status is ServerStatus.RUNNING
    assert servers["104"].raw_status == "running lock=backup"
    assert servers["105"].status is ServerStatus.UNKNOWN and servers["105"].name == "VM 105"
    assert servers["105"].usage is None
    assert servers["106"].status is ServerStatus.RUNNING
    assert servers["107"].status is ServerStatus.ERROR
    nodes = {n.id: n for n in await provider.list_nodes()}
    assert nodes["pve3"].status is NodeStatus.OFFLINE
    assert nodes["pve1"].allocated.memory_mb == 4096 + 8192 + 512 + 2048
    assert nodes["pve1"].capacity.cpu_cores == 16


async def test_hand_written_backups_batch_by_storage(fake: Callable[..., Any]) -> None:
    provider, transport = fake({
        ("GET", "/cluster/resources"): (200, "OK", hand_written("cluster_resources.json")),
        ("GET", "/nodes/pve1/storage/local/content"): (200, "OK",
                                                       hand_written("content_local_pve1.json")),
        ("GET", "/nodes/pve2/storage/local/content"): (200, "OK",
                                                       hand_written("content_local_pve2.json")),
        ("GET", "/nodes/pve1/storage/nfs-backup/content"): (200, "OK",
                                                            hand_written("content_nfs_backup.json")),
        ("GET", "/nodes/pve1/qemu/100/snapshot"): (200, "OK",
                                                   hand_written("snapshot_list_100.json")),
        ("GET", "/nodes/pve1/lxc/106/snapshot"): (200, "OK", {"data": [
            {"name": "current", "description": "You are here!", "running": 1}]}),
    })
    backups = await provider.list_backups(["100", "106", "4242"])
    assert set(backups) == {"100", "106", "4242"} and backups["4242"] == []
    by_id = {b.id: b for b in backups["100"]}
    assert by_id["nfs-backup:backup/vzdump-qemu-100-2024_02_01-02_00_03.vma.zst"].locked
    weekly = by_id["local:backup/vzdump-qemu-100-2024_01_31-12_00_00.vma.zst"]
    assert weekly.name == "web-01 weekly" and weekly.size_bytes == 1610612736
    assert weekly.created_at is not None and weekly.created_at.year == 2024
    assert by_id["100@initial"].status is BackupStatus.COMPLETED
    assert by_id["100@pre-upgrade"].status is BackupStatus.IN_PROGRESS
    assert "100@current" not in by_id
    assert [b.status for b in backups["106"]] == [BackupStatus.FAILED]  # failed verification
    paths = [urlsplit(r.url or "").path for r in transport.seen]
    assert paths.count("/api2/json/nodes/pve1/storage/nfs-backup/content") == 1
    assert not any("pve3" in p or "pve2/storage/nfs-backup" in p for p in paths)


async def test_hand_written_live_state_and_tasks(fake: Callable[..., Any]) -> None:
    upid = "UPID:pve1:00012A3B:0145C6D7:65BB8F00:vzdump:100:root@pam!panelql:"
    provider, _ = fake({
        ("GET", "/cluster/resources"): (200, "OK", hand_written("cluster_resources.json")),
        ("GET", "/nodes/pve1/qemu/101/status/current"): (200, "OK",
                                                         hand_written("status_current_101.json")),
        ("GET", f"/nodes/pve1/tasks/{upid}/status"): (200, "OK", hand_written("task_failed.json")),
    })
    live = await provider.get_live_states(["101", "105"])
    assert live["101"].status is ServerStatus.PAUSED
    assert live["105"].status is ServerStatus.UNKNOWN
    progress = await provider.poll_task(TaskHandle(upid))
    assert progress.done and not progress.ok and progress.error == "interrupted by signal"


@pytest.mark.parametrize(("route", "expected", "message"), [
    ((500, "VM 100 is locked (backup)", {"data": None}), errors.Conflict, "locked (backup)"),
    ((500, "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout",
      {"data": None}), errors.Conflict, "got timeout"),
    ((500, "VM 100 not running", {"data": None}), errors.Conflict, "not running"),
    ((500, "Configuration file 'nodes/pve1/qemu-server/100.conf' does not exist",
      {"data": None}), errors.NotFound, "does not exist"),
    ((500, "got timeout", {"data": None}), errors.Unavailable, "got timeout"),
    ((595, "No route to host", {"data": None}), errors.Unavailable, "No route to host"),
    ((401, "authentication failure", {"data": None}), errors.AuthenticationFailed, "API token"),
    ((403, "Permission check failed (/vms/100, VM.PowerMgmt)", {"data": None}),
     errors.AuthenticationFailed, "VM.PowerMgmt"),
    ((501, "Method 'POST /nodes/pve1/lxc/100/status/suspend' not implemented",
      {"data": None}), errors.CapabilityNotSupported, "not implemented"),
    ((200, "OK", b"<html>proxy error</html>"), errors.UnexpectedResponse, "not JSON"),
    ((200, "OK", {"result": "no data key"}), errors.UnexpectedResponse, "unexpected"),
    (requests.ConnectTimeout("slow"), errors.Unavailable, "timed out"),
    (requests.ConnectionError("refused"), errors.Unavailable, "unreachable"),
])
async def test_error_boundary(fake: Callable[..., Any], route: Any,
                              expected: type[errors.ProviderError], message: str) -> None:
    provider, _ = fake({
        ("GET", "/cluster/resources"): (200, "OK", hand_written("cluster_resources.json")),
        ("POST", "/nodes/pve1/qemu/100/status/start"): route,
    })
    with pytest.raises(expected) as info:
        await provider.power("100", PowerAction.START)
    assert message in info.value.message
    assert info.value.provider == "pve-test"
    assert "0f1e2d3c" not in repr(info.value.debug) + info.value.message


async def test_parameter_errors_keep_their_fields(fake: Callable[..., Any]) -> None:
    provider, transport = fake({
        ("GET", "/cluster/resources"): (200, "OK", hand_written("cluster_resources.json")),
        ("PUT", "/nodes/pve1/qemu/100/config"): (
            400, "Parameter verification failed.",
            {"data": None, "errors": {"memory": "value must have a minimum value of 16"}}),
    })
    with pytest.raises(errors.InvalidRequest) as info:
        await provider.resize_server("100", Resources(memory_mb=8))
    assert info.value.fields == {"memory": "value must have a minimum value of 16"}
    assert transport.seen[-1].body == "memory=8"  # form-encoded, as PVE expects


def test_config_is_validated_and_passed_to_proxmoxer() -> None:
    config = pve_config("https://pve.example:9443/proxy/api2/json", "s", timeout=12.0,
                        verify_ssl=False)
    api = build_api(config)
    assert api._store["base_url"] == "https://pve.example:9443/proxy/api2/json"
    session = api._store["session"]
    assert session.auth.timeout == 12.0 and session.auth.verify_ssl is False
    assert build_api(pve_config("https://pve.example", "s", ca_bundle="/ca.pem")) \
        ._store["session"].auth.verify_ssl == "/ca.pem"
    with pytest.raises(errors.InvalidRequest):
        build_api(pve_config("https://pve.example", "s", token_id="root@pam"))
    with pytest.raises(errors.InvalidRequest):
        build_api(pve_config("http://pve.example", "s"))


# -- the mapping table ---------------------------------------------------------------------------
@pytest.mark.parametrize(("entry", "expected"), [
    ({"status": "running"}, ServerStatus.RUNNING),
    ({"status": "running", "qmpstatus": "running"}, ServerStatus.RUNNING),
    ({"status": "stopped"}, ServerStatus.STOPPED),
    ({"status": "running", "qmpstatus": "paused"}, ServerStatus.PAUSED),
    ({"status": "paused"}, ServerStatus.PAUSED),  # /cluster/resources copy of qmpstatus
    ({"status": "stopped", "lock": "suspended"}, ServerStatus.SUSPENDED),
    ({"status": "running", "lock": "suspending"}, ServerStatus.SUSPENDED),
    ({"status": "stopped", "lock": "create"}, ServerStatus.INSTALLING),
    ({"status": "stopped", "lock": "clone"}, ServerStatus.INSTALLING),
    ({"status": "stopped", "lock": "rollback"}, ServerStatus.RESTORING),
    ({"status": "running", "lock": "migrate"}, ServerStatus.MIGRATING),
    ({"status": "running", "lock": "backup"}, ServerStatus.RUNNING),
    ({"status": "running", "lock": "snapshot"}, ServerStatus.RUNNING),
    ({"status": "stopped", "lock": "snapshot-delete"}, ServerStatus.STOPPED),
    ({"status": "running", "hastate": "error"}, ServerStatus.ERROR),
    ({"status": "stopped", "lock": "create", "hastate": "error"}, ServerStatus.ERROR),
    ({"status": "unknown"}, ServerStatus.UNKNOWN),
    ({"status": "unknown", "lock": "migrate"}, ServerStatus.MIGRATING),
    ({"status": "running", "qmpstatus": "prelaunch"}, ServerStatus.STARTING),
    ({"status": "running", "qmpstatus": "inmigrate"}, ServerStatus.MIGRATING),
    ({"status": "running", "qmpstatus": "io-error"}, ServerStatus.ERROR),
    ({"status": "hibernating"}, ServerStatus.UNKNOWN),  # unmapped: UNKNOWN, never a crash
])
def test_status_mapping_table(entry: dict[str, Any], expected: ServerStatus) -> None:
    assert server_status(entry) is expected


def test_mapping_table_covers_every_lock_value() -> None:
    # qemu-server `lock` enum, plus pve-container's extra values
    qemu = ["backup", "clone", "create", "migrate", "rollback", "snapshot", "snapshot-delete",
            "suspending", "suspended"]
    lxc = ["destroyed", "disk", "fstrim", "mounted"]
    lifecycle = {k.removeprefix("lock:") for k in SERVER_STATUS if k.startswith("lock:")}
    assert lifecycle == {"clone", "create", "migrate", "rollback", "suspending", "suspended",
                         "destroyed"}
    assert lifecycle <= set(qemu + lxc)
    for lock in qemu + lxc:
        assert server_status({"status": "running", "lock": lock}) is not ServerStatus.UNKNOWN

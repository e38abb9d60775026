from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
import respx

from panelql.domain.status import BackupStatus, ServerStatus
from panelql.providers import errors
from panelql.providers.catalyst.adapter import CatalystProvider
from panelql.providers.catalyst.mapping import SERVER_STATUS
from panelql_sim.catalyst import CatalystSim
from panelql_sim.runner import BackgroundServers
from tests.providers.contract import ComputeContract, ContractEnv, HostingContract
from tests.providers.helpers import builder, fixture

BASE = "http://catalyst.test"


@pytest.fixture(scope="module")
def sim(background: BackgroundServers) -> Iterator[tuple[CatalystSim, str]]:
    panel = CatalystSim(servers=12)
    served = background.serve("catalyst-contract", panel.app())
    yield panel, served.url


@pytest.fixture
def env(sim: tuple[CatalystSim, str]) -> ContractEnv:
    panel, url = sim
    build = builder("catalyst", url, api_key=panel.api_key)
    return ContractEnv(
        provider=build(), knobs=panel.knobs,
        with_bad_credentials=lambda: build(api_key="catalyst_wrong"),
        with_timeout=lambda t: build(timeout=t),
    )


class TestCatalystContract(ComputeContract, HostingContract):
    pass


def test_mapping_table_covers_every_state_machine_state() -> None:
    # ServerState in catalyst-backend/src/shared-types.ts
    states = ["stopped", "installing", "starting", "running", "stopping", "crashed",
              "suspended", "error"]
    assert set(SERVER_STATUS) == set(states)
    assert SERVER_STATUS["crashed"] is ServerStatus.ERROR
    assert SERVER_STATUS["suspended"] is ServerStatus.SUSPENDED


@pytest.fixture
def provider() -> CatalystProvider:
    built = builder("catalyst", BASE, api_key="catalyst_k")()
    assert isinstance(built, CatalystProvider)
    return built


@respx.mock
async def test_servers_from_hand_written_payload(provider: CatalystProvider) -> None:
    route = respx.get(f"{BASE}/api/servers").mock(
        return_value=httpx.Response(200, json=fixture("catalyst", "servers.json")))
    servers = {s.id: s for s in await provider.list_servers()}
    assert route.calls.last.request.headers["authorization"] == "Bearer catalyst_k"
    running = servers["cm5srv0001"]
    assert running.status is ServerStatus.RUNNING
    assert running.usage is not None and running.usage.cpu_percent == 45.2
    assert running.resources.memory_mb == 4096
    assert running.addresses == ["10.0.0.5:25565"]
    suspended = servers["cm5srv0002"]
    assert suspended.status is ServerStatus.SUSPENDED and suspended.suspended
    assert suspended.suspension_reason == "Payment overdue - Invoice #12345"
    unknown = servers["cm5srv0003"]
    assert unknown.status is ServerStatus.UNKNOWN and unknown.raw_status == "hibernating"


@respx.mock
async def test_backups_follow_pages_and_map_progress(provider: CatalystProvider) -> None:
    respx.get(f"{BASE}/api/servers/cm5srv0001/backups", params={"page": "1"}).mock(
        return_value=httpx.Response(200, json=fixture("catalyst", "backups_page1.json")))
    respx.get(f"{BASE}/api/servers/cm5srv0001/backups", params={"page": "2"}).mock(
        return_value=httpx.Response(200, json=fixture("catalyst", "backups_page2.json")))
    backups = (await provider.list_backups(["cm5srv0001"]))["cm5srv0001"]
    assert [b.status for b in backups] == [BackupStatus.COMPLETED, BackupStatus.IN_PROGRESS]
    assert backups[0].size_bytes == 512 * 1024 * 1024
    assert Decimal(backups[0].size_bytes or 0) > 0


@respx.mock
async def test_error_envelopes_become_provider_errors(provider: CatalystProvider) -> None:
    respx.get(f"{BASE}/api/servers").mock(
        return_value=httpx.Response(429, json={"success": False,
                                               "error": "Rate limit exceeded for API key",
                                               "retryAfter": 17}))
    with pytest.raises(errors.RateLimited) as info:
        await provider.list_servers()
    assert info.value.retry_after == 17
    respx.get(f"{BASE}/api/nodes").mock(return_value=httpx.Response(200, json={"nodes": []}))
    with pytest.raises(errors.UnexpectedResponse):
        await provider.check_health()


async def test_an_unchanged_server_list_is_mapped_once_and_a_change_is_seen(
        sim: tuple[CatalystSim, str]) -> None:
    panel, url = sim
    provider = builder("catalyst", url, api_key=panel.api_key)()
    first = {s.id: s for s in await provider.list_servers()}
    again = {s.id: s for s in await provider.list_servers()}
    target = next(iter(first))
    assert again[target] is first[target]  # same bytes from the panel: the same records
    before = panel.servers[target].status
    panel.servers[target].status = "stopped" if before != "stopped" else "running"
    try:
        changed = {s.id: s for s in await provider.list_servers()}
    finally:
        panel.servers[target].status = before
    assert changed[target].raw_status != first[target].raw_status

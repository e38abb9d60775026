from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
import respx

from panelql.domain.records import AccountSpec
from panelql.domain.status import AccountStatus, NodeStatus
from panelql.providers import errors
from panelql.providers.nextpanel.adapter import (
    AccountCapacity,
    NextPanelAccount,
    NextPanelProvider,
    placement_order,
)
from panelql.providers.nextpanel.mapping import ACCOUNT_STATUS, NODE_STATUS, node_raw_status
from panelql_sim.nextpanel import NextPanelSim
from panelql_sim.runner import BackgroundServers
from tests.providers.contract import ContractEnv, HostingContract
from tests.providers.helpers import builder, fixture

BASE = "http://nextpanel.test:9000"


def build(url: str, **overrides: str) -> NextPanelProvider:
    provider = builder("nextpanel", url, key_id="np_demo_key_id",
                       key_secret="np_demo_key_secret")(**overrides)
    assert isinstance(provider, NextPanelProvider)
    return provider


@pytest.fixture(scope="module")
def sim(background: BackgroundServers) -> Iterator[tuple[NextPanelSim, str]]:
    panel = NextPanelSim()
    served = background.serve("nextpanel-contract", panel.app())
    yield panel, served.url


@pytest.fixture
def env(sim: tuple[NextPanelSim, str]) -> ContractEnv:
    panel, url = sim
    build_with = builder("nextpanel", url, key_id=panel.key_id, key_secret=panel.key_secret)
    return ContractEnv(
        provider=build_with(), knobs=panel.knobs,
        with_bad_credentials=lambda: build_with(key_secret="wrong-secret"),
        with_timeout=lambda t: build_with(timeout=t),
    )


class TestNextPanelContract(HostingContract):
    pass


def test_mapping_tables() -> None:
    # Seed 002 names no states; these are the ones documented in docs/providers/nextpanel.md.
    assert set(ACCOUNT_STATUS) == {"active", "suspended", "provisioning", "pending",
                                   "terminated"}
    assert ACCOUNT_STATUS["provisioning"] is AccountStatus.PENDING
    assert node_raw_status(True, True) == "online"
    assert node_raw_status(True, False) == "offline"
    assert node_raw_status(False, True) == "inactive"
    assert node_raw_status(True, None) is None
    assert {NODE_STATUS[k] for k in ("online", "offline", "inactive")} == {
        NodeStatus.ONLINE, NodeStatus.OFFLINE, NodeStatus.MAINTENANCE}


def test_placement_prefers_least_loaded_healthy_server_with_room() -> None:
    servers = [AccountCapacity("1", 100, 45, True), AccountCapacity("2", 100, 78, True),
               AccountCapacity("3", 100, 12, False), AccountCapacity("4", 10, 10, True)]
    assert [s.node_id for s in placement_order(servers)] == ["1", "2"]


# -- against the simulator --------------------------------------------------------------------
@pytest.fixture
def live(background: BackgroundServers) -> Iterator[tuple[NextPanelSim, NextPanelProvider]]:
    panel = NextPanelSim()
    panel.knobs.transition_seconds = 0.2
    name = f"nextpanel-{id(panel)}"
    served = background.serve(name, panel.app())
    yield panel, build(served.url)
    background.stop_one(name)


async def test_nodes_and_capacity_in_one_call(
        live: tuple[NextPanelSim, NextPanelProvider]) -> None:
    panel, provider = live
    panel.reset_stats()
    nodes = {n.id: n for n in await provider.list_nodes()}
    assert panel.total_requests == 1
    assert {n.name: n.status for n in nodes.values()} == {
        "np-fra-1": NodeStatus.ONLINE, "np-ams-1": NodeStatus.ONLINE,
        "np-nyc-1": NodeStatus.OFFLINE}
    assert nodes["1"].region == "Frankfurt" and nodes["1"].capacity.memory_mb is None
    capacity = await provider.list_node_capacity()
    assert {k: (c.accounts, c.capacity) for k, c in capacity.items()} == {
        "1": (9, 15), "2": (8, 10), "3": (3, 5)}
    assert not capacity["3"].healthy


async def test_accounts_batch_and_usage_only_for_requested(
        live: tuple[NextPanelSim, NextPanelProvider]) -> None:
    panel, provider = live
    panel.reset_stats()
    accounts = await provider.list_accounts()
    assert len(accounts) == 20 and panel.total_requests == 1
    assert all(a.usage is None for a in accounts)
    suspended = [a for a in accounts if a.status is AccountStatus.SUSPENDED]
    assert len(suspended) == 4 and suspended[0].raw_status == "suspended"
    first = accounts[0]
    assert isinstance(first, NextPanelAccount) and first.node_id == "1"
    assert first.external_ref == "5000"
    panel.reset_stats()
    found = await provider.get_accounts([accounts[0].id, accounts[5].id, "9999"])
    assert set(found) == {accounts[0].id, accounts[5].id}
    assert panel.total_requests == 1 + 2
    assert all(a.usage is not None and a.usage.disk_mb for a in found.values())


async def test_create_places_on_least_loaded_and_settles(
        live: tuple[NextPanelSim, NextPanelProvider]) -> None:
    panel, provider = live
    account = await provider.create_account(AccountSpec(
        username="fresh", email="fresh@customer.example", external_ref="cust-9"))
    assert isinstance(account, NextPanelAccount)
    assert account.status is AccountStatus.PENDING and account.node_id == "1"  # 60% < 80%
    assert account.external_ref == "cust-9"
    for _ in range(50):
        await asyncio.sleep(0.05)
        if panel.accounts[int(account.id)].status == "active":
            break
    refreshed = (await provider.get_accounts([account.id]))[account.id]
    assert refreshed.status is AccountStatus.ACTIVE
    with pytest.raises(errors.Conflict):  # duplicate username
        await provider.create_account(AccountSpec(username="fresh", email="x@y.example"))


async def test_create_on_given_node_and_when_everything_is_full(
        live: tuple[NextPanelSim, NextPanelProvider]) -> None:
    panel, provider = live
    placed = await provider.create_account(AccountSpec(username="onams", email="a@b.example",
                                                       node_id="2"))
    assert isinstance(placed, NextPanelAccount) and placed.node_id == "2"
    with pytest.raises(errors.Conflict):  # offline server
        await provider.create_account(AccountSpec(username="onnyc", email="a@b.example",
                                                  node_id="3"))
    with pytest.raises(errors.NotFound):
        await provider.create_account(AccountSpec(username="nowhere", email="a@b.example",
                                                  node_id="77"))
    for server in panel.servers.values():
        server["capacity"] = panel.current_accounts(server["id"])
    panel.reset_stats()
    with pytest.raises(errors.Conflict) as info:
        await provider.create_account(AccountSpec(username="nospace", email="a@b.example"))
    assert "room" in info.value.message
    assert panel.total_requests == 1  # decided from the status list, nothing provisioned


async def test_suspend_unsuspend_delete(live: tuple[NextPanelSim, NextPanelProvider]) -> None:
    panel, provider = live
    await provider.suspend_account("1", "Payment overdue - Invoice #77")
    assert panel.accounts[1].status == "suspended"
    assert panel.accounts[1].suspension_reason == "Payment overdue - Invoice #77"
    assert (await provider.get_accounts(["1"]))["1"].status is AccountStatus.SUSPENDED
    with pytest.raises(errors.Conflict):
        await provider.suspend_account("1", None)
    await provider.unsuspend_account("1")
    assert panel.accounts[1].status == "active"
    with pytest.raises(errors.Conflict):
        await provider.unsuspend_account("1")
    await provider.delete_account("1")
    assert 1 not in panel.accounts
    with pytest.raises(errors.NotFound):
        await provider.delete_account("1")


async def test_api_key_flow_from_the_seed(live: tuple[NextPanelSim, NextPanelProvider]) -> None:
    _, provider = live
    url = str(provider.api.client.base_url)
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/api/health")).json()["status"] == "healthy"
        token = (await client.post("/api/auth/login/json",
                                   json={"username": "admin", "password": "admin"})
                 ).json()["access_token"]
        key = (await client.post("/api/api-keys/", headers={"Authorization": f"Bearer {token}"},
                                 json={"name": "Billing System", "permission_level": "billing",
                                       "rate_limit_per_hour": 1000})).json()
    fresh = build(url, key_id=key["key_id"], key_secret=key["key_secret"])
    await fresh.check_health()


# -- recorded payloads through respx ----------------------------------------------------------
@pytest.fixture
def provider() -> NextPanelProvider:
    return build(BASE)


@respx.mock
async def test_accounts_from_recorded_pages(provider: NextPanelProvider) -> None:
    respx.get(f"{BASE}/api/accounts", params={"skip": "0"}).mock(
        return_value=httpx.Response(200, json=fixture("nextpanel", "accounts_page1.json")))
    second = respx.get(f"{BASE}/api/accounts", params={"skip": "2"}).mock(
        return_value=httpx.Response(200, json=fixture("nextpanel", "accounts_page2.json")))
    accounts = {a.id: a for a in await provider.list_accounts()}
    request = second.calls.last.request
    assert request.headers["x-api-key"] == "np_demo_key_id"
    assert request.headers["x-api-secret"] == "np_demo_key_secret"
    assert accounts["102"].status is AccountStatus.SUSPENDED
    assert accounts["101"].external_ref == "1"
    unknown = accounts["103"]
    assert unknown.status is AccountStatus.UNKNOWN and unknown.raw_status == "migrating"


@respx.mock
async def test_nodes_from_recorded_status(provider: NextPanelProvider) -> None:
    respx.get(f"{BASE}/api/servers/status").mock(
        return_value=httpx.Response(200, json=fixture("nextpanel", "servers_status.json")))
    statuses = {n.id: n.status for n in await provider.list_nodes()}
    assert statuses == {"1": NodeStatus.ONLINE, "2": NodeStatus.ONLINE,
                        "3": NodeStatus.OFFLINE, "4": NodeStatus.MAINTENANCE}


@respx.mock
async def test_create_fails_over_when_the_first_server_is_full(
        provider: NextPanelProvider) -> None:
    respx.get(f"{BASE}/api/servers/status").mock(
        return_value=httpx.Response(200, json=fixture("nextpanel", "servers_status.json")))
    answers = iter([
        httpx.Response(409, json={"detail": "Server not available: at capacity"}),
        httpx.Response(201, json=fixture("nextpanel", "provision.json")),
    ])
    route = respx.post(f"{BASE}/api/provision").mock(side_effect=lambda _: next(answers))
    account = await provider.create_account(AccountSpec(
        username="newcustomer", email="new@example.com", external_ref="42"))
    tried = [json.loads(call.request.content)["server_id"] for call in route.calls]
    assert tried == [1, 2]  # 45% first, then 78%; offline and inactive never tried
    assert account.status is AccountStatus.PENDING


@respx.mock
async def test_error_bodies_become_provider_errors(provider: NextPanelProvider) -> None:
    respx.post(f"{BASE}/api/provision").mock(return_value=httpx.Response(422, json={
        "detail": [{"loc": ["body", "email"], "msg": "value is not a valid email address",
                    "type": "value_error.email"}]}))
    with pytest.raises(errors.InvalidRequest) as info:
        await provider.create_account(AccountSpec(username="x", email="bad", node_id="1"))
    assert info.value.message == "value is not a valid email address"
    respx.get(f"{BASE}/api/servers/status").mock(
        return_value=httpx.Response(401, json={"detail": "Invalid API credentials"}))
    with pytest.raises(errors.AuthenticationFailed):
        await provider.check_health()
    respx.get(f"{BASE}/api/accounts/5/stats").mock(
        return_value=httpx.Response(429, json={"detail": "Rate limit exceeded"},
                                    headers={"Retry-After": "120"}))
    with pytest.raises(errors.RateLimited) as limited:
        await provider.account_usage(["5"])
    assert limited.value.retry_after == 120

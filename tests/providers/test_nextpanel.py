"""NextPanel: recorded exchanges (respx and simulator), the ledger, config, contract suite."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from panelql.db.account_ledger import DatabaseLedger
from panelql.db.engine import create_engine, session_factory
from panelql.db.migrate import upgrade
from panelql.domain.records import AccountSpec
from panelql.domain.status import AccountStatus, NodeStatus
from panelql.providers import errors
from panelql.providers.config import ConnectionConfig, Secret
from panelql.providers.nextpanel.adapter import NextPanelProvider
from panelql.providers.nextpanel.mapping import ACCOUNT_STATUS, account_raw_status
from panelql.providers.registry import build_provider
from panelql.providers.resilience import never_sent
from panelql.settings import ConfigError, ProviderEntry, Settings
from panelql_sim.nextpanel import NextPanelSim
from panelql_sim.runner import BackgroundServers
from tests.providers.contract import ContractEnv, HostingContract
from tests.providers.helpers import clients
from tests.providers.nextpanel_exchanges import CREATE_BODY, EXCHANGES, by_name, matches

BASE = "http://np1.test:3000"
KEY, SECRET = "npk_recorded", "nps_recorded"


def np_config(url: str, name: str = "np-1", *, capacity: int = 100, current: int = 0,
              timeout: float = 5.0, **credentials: str) -> ConnectionConfig:
    creds = {"api_key": KEY, "api_secret": SECRET, **credentials}
    return ConnectionConfig(
        name=name, kind="nextpanel", base_url=url, timeout_seconds=timeout,
        credentials={k: Secret(v) for k, v in creds.items()},
        options={"capacity": capacity, "current_accounts": current, "location": "Frankfurt"})


def build(config: ConnectionConfig, ledger: DatabaseLedger) -> NextPanelProvider:
    provider = build_provider(config, clients(config.base_url))
    assert isinstance(provider, NextPanelProvider)
    provider.attach_ledger(ledger)
    return provider


async def _ledger(url: str) -> DatabaseLedger:
    await upgrade(url)
    return DatabaseLedger(session_factory(create_engine(url)))


@pytest.fixture
async def ledger(tmp_path: Path) -> DatabaseLedger:
    return await _ledger(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")


# -- recorded exchanges replayed against the adapter (respx) ----------------------------------
def _answer(name: str, **changes: Any) -> httpx.Response:
    exchange = by_name(name)
    body = {**exchange.answer, **changes} if isinstance(exchange.answer, dict) else exchange.answer
    return httpx.Response(exchange.status, json=body)


@respx.mock
async def test_create_sends_the_recorded_request_and_records_the_account(
        ledger: DatabaseLedger) -> None:
    provider = build(np_config(BASE, current=45), ledger)
    route = respx.post(f"{BASE}/api/v1/billing/accounts").mock(return_value=_answer("create"))
    account = await provider.create_account(AccountSpec(
        username="acme5001", email="owner@acme.example", password="S3cure-pass!",
        external_ref="whmcs:42"))
    request = route.calls.last.request
    assert request.headers["x-api-key"] == KEY and request.headers["x-api-secret"] == SECRET
    assert json.loads(request.content) == CREATE_BODY  # field for field, as the service sends
    assert set(json.loads(request.content)) == by_name("create").request_keys
    assert account.id == "123" and account.status is AccountStatus.ACTIVE
    assert await ledger.used("np-1", 45) == 46
    assert [e.account_id for e in await ledger.entries("np-1")] == ["123"]


@respx.mock
async def test_failed_creates_give_the_slot_back(ledger: DatabaseLedger) -> None:
    provider = build(np_config(BASE, capacity=10, current=9), ledger)
    answers = iter([_answer("username taken"), _answer("key below super admin"),
                    _answer("wrong secret"),
                    httpx.Response(422, json={"detail": [
                        {"type": "missing", "loc": ["body", "password"], "msg": "Field required",
                         "input": None}]})])
    respx.post(f"{BASE}/api/v1/billing/accounts").mock(side_effect=lambda _: next(answers))
    spec = AccountSpec(username="acme5001", email="owner@acme.example")
    with pytest.raises(errors.Conflict) as taken:
        await provider.create_account(spec)
    assert taken.value.message == "Username already exists"
    with pytest.raises(errors.AuthenticationFailed):  # 403: the key is not SUPER_ADMIN
        await provider.create_account(spec)
    with pytest.raises(errors.AuthenticationFailed) as wrong:
        await provider.create_account(spec)
    assert SECRET not in str(wrong.value.message) + str(wrong.value.debug)
    with pytest.raises(errors.InvalidRequest) as invalid:
        await provider.create_account(spec)
    assert invalid.value.message == "Field required"
    assert await ledger.used("np-1", 9) == 9  # every failure released its slot


@respx.mock
async def test_slot_is_kept_when_the_account_may_exist(ledger: DatabaseLedger) -> None:
    """Refused connection: surely not created, slot back. Timeout or a garbled 201: it may
    exist, so the slot stays taken (over-counting is the safe side)."""
    provider = build(np_config(BASE, capacity=10, current=5), ledger)
    route = respx.post(f"{BASE}/api/v1/billing/accounts")
    spec = AccountSpec(username="maybe", email="m@x.example")
    route.mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(errors.Unavailable) as refused:
        await provider.create_account(spec)
    assert never_sent(refused.value) and await ledger.used("np-1", 5) == 5
    route.mock(side_effect=httpx.ReadTimeout("no answer"))
    with pytest.raises(errors.Unavailable) as timed_out:
        await provider.create_account(spec)
    assert not never_sent(timed_out.value) and await ledger.used("np-1", 5) == 6
    route.mock(return_value=httpx.Response(201, text="<html>created</html>"))
    with pytest.raises(errors.UnexpectedResponse):
        await provider.create_account(spec)
    assert await ledger.used("np-1", 5) == 7


@respx.mock
async def test_full_server_is_refused_before_any_call(ledger: DatabaseLedger) -> None:
    provider = build(np_config(BASE, capacity=100, current=100), ledger)
    route = respx.post(f"{BASE}/api/v1/billing/accounts")
    with pytest.raises(errors.CapacityExhausted) as full:
        await provider.create_account(AccountSpec(username="late", email="l@x.example"))
    assert "full" in full.value.message and not route.called
    with pytest.raises(errors.InvalidRequest):  # the API takes no domain: never dropped silently
        await provider.create_account(AccountSpec(username="d", email="d@x.example",
                                                  domain="d.example"))


@respx.mock
async def test_reads_suspend_unsuspend_stats_delete(ledger: DatabaseLedger) -> None:
    provider = build(np_config(BASE), ledger)
    respx.post(f"{BASE}/api/v1/billing/accounts").mock(return_value=_answer("create"))
    await provider.create_account(AccountSpec(username="acme5001", email="owner@acme.example",
                                              external_ref="whmcs:42"))
    one = f"{BASE}/api/v1/billing/accounts/123"
    get = respx.get(one).mock(return_value=_answer("get"))
    stats = respx.get(f"{one}/stats").mock(return_value=_answer("stats", storage_used=512))
    found = (await provider.get_accounts(["123", "999"]))
    assert set(found) == {"123"} and get.call_count == 1 and stats.call_count == 1
    assert found["123"].usage is not None and found["123"].usage.disk_mb == 512
    assert found["123"].external_ref == "whmcs:42"
    assert (await provider.account_stats("123") or {})["total_domains"] == 3

    suspend = respx.post(f"{one}/suspend").mock(return_value=_answer("suspend"))
    await provider.suspend_account("123", "Invoice 77 overdue")
    assert json.loads(suspend.calls.last.request.content) == by_name("suspend").request
    get.mock(return_value=_answer("get suspended"))
    assert (await provider.list_accounts())[0].status is AccountStatus.SUSPENDED
    unsuspend = respx.post(f"{one}/unsuspend").mock(return_value=_answer("unsuspend"))
    await provider.unsuspend_account("123")
    assert unsuspend.calls.last.request.content == b""
    assert (await ledger.entries("np-1"))[0].status == "active"

    respx.delete(one).mock(return_value=_answer("delete"))
    await provider.delete_account("123")
    assert await ledger.entries("np-1") == [] and await ledger.used("np-1", 0) == 0
    respx.delete(one).mock(return_value=_answer("get deleted"))
    await provider.delete_account("123")  # already gone: the goal holds, a no-op
    assert await ledger.used("np-1", 0) == 0


@respx.mock
async def test_account_deleted_behind_the_gateways_back_frees_its_slot(
        ledger: DatabaseLedger) -> None:
    provider = build(np_config(BASE, current=3), ledger)
    respx.post(f"{BASE}/api/v1/billing/accounts").mock(return_value=_answer("create"))
    await provider.create_account(AccountSpec(username="acme5001", email="o@acme.example"))
    respx.get(f"{BASE}/api/v1/billing/accounts/123").mock(return_value=_answer("get deleted"))
    assert await provider.list_accounts() == []
    assert await ledger.used("np-1", 3) == 3


@respx.mock
async def test_node_is_the_server_with_ledger_counts(ledger: DatabaseLedger) -> None:
    provider = build(np_config(BASE, capacity=100, current=45), ledger)
    respx.get(f"{BASE}/api/health").mock(return_value=_answer("health"))
    [node] = await provider.list_nodes()
    assert (node.id, node.name, node.region, node.status) == (
        "np-1", "np-1", "Frankfurt", NodeStatus.ONLINE)
    assert node.account_slots is not None and node.account_slots.used == 45
    respx.get(f"{BASE}/api/health").mock(side_effect=httpx.ConnectError("refused"))
    [down] = await provider.list_nodes()
    assert down.status is NodeStatus.OFFLINE and down.raw_status == "unreachable"
    respx.get(f"{BASE}/api/health").mock(return_value=httpx.Response(200, text="<html>"))
    with pytest.raises(errors.UnexpectedResponse):
        await provider.check_health()


@respx.mock
async def test_health_probes_the_key_on_an_account_route(ledger: DatabaseLedger) -> None:
    provider = build(np_config(BASE), ledger)
    respx.get(f"{BASE}/api/health").mock(return_value=_answer("health"))
    probe = respx.get(f"{BASE}/api/v1/billing/accounts/0").mock(
        return_value=httpx.Response(404, json={"detail": "Account not found"}))
    await provider.check_health()
    assert probe.calls.last.request.headers["x-api-key"] == KEY
    probe.mock(return_value=_answer("wrong secret"))
    with pytest.raises(errors.AuthenticationFailed):
        await provider.check_health()


def test_mapping() -> None:
    assert ACCOUNT_STATUS["suspended"] is AccountStatus.SUSPENDED
    assert account_raw_status({"is_active": False}, "active") == "suspended"
    assert account_raw_status({"status": "active"}, "suspended") == "active"
    assert account_raw_status({}, "suspended") == "suspended"  # the ledger's word


# -- the same exchanges against the simulator ---------------------------------------------------
@pytest.fixture(scope="module")
def served(background: BackgroundServers) -> Iterator[tuple[NextPanelSim, str]]:
    panel = NextPanelSim(api_key=KEY, api_secret=SECRET, accounts=3)
    yield panel, background.serve("nextpanel-exchanges", panel.app()).url
    background.stop_one("nextpanel-exchanges")


def test_simulator_answers_every_recorded_exchange(served: tuple[NextPanelSim, str]) -> None:
    panel, url = served
    billing_key, billing_secret = panel.add_key("billing")
    headers = {"super": {"X-API-Key": KEY, "X-API-Secret": SECRET},
               "billing": {"X-API-Key": billing_key, "X-API-Secret": billing_secret},
               "wrong": {"X-API-Key": KEY, "X-API-Secret": "nps_wrong"}}
    created: dict[str, Any] = {}
    with httpx.Client(base_url=url) as client:
        for exchange in EXCHANGES:
            path = exchange.path.replace("{id}", str(created.get("id", "")))
            response = client.request(exchange.method, path, json=exchange.request,
                                      headers=headers.get(exchange.key or "", {}))
            body = response.json()
            assert matches(exchange, response.status_code, body) == [], exchange.name
            if exchange.name == "create":
                created = body


# -- the ledger under concurrent writers ---------------------------------------------------------
async def _race_for_the_last_slot(ledger: DatabaseLedger) -> None:
    connection = f"race-{uuid.uuid4().hex[:6]}"
    assert await ledger.used(connection, 9) == 9
    wins = await asyncio.gather(*(ledger.reserve(connection, 10, 9) for _ in range(8)))
    assert sorted(wins) == [False] * 7 + [True]
    assert await ledger.used(connection, 9) == 10


async def test_concurrent_reservations_never_share_the_last_slot(
        ledger: DatabaseLedger) -> None:
    await _race_for_the_last_slot(ledger)


async def test_concurrent_reservations_on_postgres() -> None:
    base = os.environ.get("PANELQL_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("PANELQL_TEST_POSTGRES_URL is not set; PostgreSQL ledger race skipped")
    database = f"panelql_np_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{database}"'))
    try:
        url = make_url(base).set(database=database).render_as_string(hide_password=False)
        await _race_for_the_last_slot(await _ledger(url))
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        await admin.dispose()


async def test_two_concurrent_creates_for_the_last_slot_make_one_account(
        background: BackgroundServers, ledger: DatabaseLedger) -> None:
    panel = NextPanelSim(api_key=KEY, api_secret=SECRET)
    url = background.serve("nextpanel-race", panel.app()).url
    try:
        provider = build(np_config(url, capacity=5, current=4), ledger)
        outcomes = await asyncio.gather(*(provider.create_account(AccountSpec(
            username=f"racer{i}", email=f"r{i}@x.example")) for i in range(2)),
            return_exceptions=True)
        assert sum(isinstance(o, errors.CapacityExhausted) for o in outcomes) == 1
        assert len(panel.users) == 1 and await ledger.used("np-1", 4) == 5
    finally:
        background.stop_one("nextpanel-race")


async def test_changed_current_accounts_shifts_the_count(ledger: DatabaseLedger) -> None:
    assert await ledger.used("np-x", 10) == 10
    assert await ledger.reserve("np-x", 100, 10)
    assert await ledger.used("np-x", 20) == 21  # the operator recounted: +10


# -- configuration ------------------------------------------------------------------------------
def _settings(credentials: dict[str, str], options: dict[str, Any] | None = None) -> Settings:
    return Settings(providers=[ProviderEntry(
        name="np-old", kind="nextpanel", base_url="http://np.example:9000",
        credentials=dict(credentials), options=options or {})])


def test_old_config_shape_names_what_changed() -> None:
    with pytest.raises(ConfigError) as old:
        _settings({"key_id": "a", "key_secret": "b"}).connections()
    message = str(old.value)
    assert message.startswith("providers[0] (np-old): key_id, key_secret: the nextpanel kind")
    assert "api_key and api_secret" in message and "one NextPanel server" in message
    with pytest.raises(ConfigError, match="api_prefix"):
        _settings({"api_key": "a", "api_secret": "b"}, {"api_prefix": "/api"}).connections()
    with pytest.raises(ConfigError, match=r"credentials\.api_secret missing"):
        _settings({"api_key": "a"}).connections()
    with pytest.raises(ConfigError, match=r"options\.capacity"):
        _settings({"api_key": "a", "api_secret": "b"}, {"capacity": 0}).connections()
    with pytest.raises(ConfigError, match="unknown option"):
        _settings({"api_key": "a", "api_secret": "b"}, {"servers": 3}).connections()
    [fine] = _settings({"api_key": "a", "api_secret": "b"},
                       {"capacity": 100, "current_accounts": 45}).connections()
    assert fine.kind == "nextpanel"


# -- the family contract over HTTP ----------------------------------------------------------------
@pytest.fixture
async def env(background: BackgroundServers, ledger: DatabaseLedger
              ) -> AsyncIterator[ContractEnv]:
    panel = NextPanelSim(api_key=KEY, api_secret=SECRET, accounts=2)
    name = f"nextpanel-contract-{uuid.uuid4().hex[:6]}"
    url = background.serve(name, panel.app()).url
    provider = build(np_config(url), ledger)
    await provider.create_account(AccountSpec(username="contract1", email="c1@x.example"))
    yield ContractEnv(
        provider=provider, knobs=panel.knobs,
        with_bad_credentials=lambda: build(np_config(url, api_secret="nps_wrong"), ledger),
        with_timeout=lambda t: build(np_config(url, timeout=t), ledger),
    )
    background.stop_one(name)


class TestNextPanelContract(HostingContract):
    pass

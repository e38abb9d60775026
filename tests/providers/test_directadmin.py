from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from panelql.domain.records import AccountSpec, DnsRecordInput
from panelql.domain.status import AccountStatus
from panelql.providers import errors
from panelql.providers.config import ConnectionConfig, Secret
from panelql.providers.directadmin import wire
from panelql.providers.directadmin.adapter import DirectAdminProvider
from panelql.providers.directadmin.mapping import ACCOUNT_STATUS
from panelql.providers.registry import build_provider
from panelql_sim.directadmin import DirectAdminSim
from panelql_sim.runner import BackgroundServers
from tests.providers.contract import ContractEnv, DnsContract, HostingContract
from tests.providers.helpers import FIXTURES, clients, fixture

BASE = "http://directadmin.test:2222"


def build(url: str, *, json_mode: bool = True, password: str = "da_demo_pass",
          timeout: float = 5.0, **options: Any) -> DirectAdminProvider:
    config = ConnectionConfig(
        name="da-test", kind="directadmin", base_url=url, timeout_seconds=timeout,
        credentials={"username": Secret("admin"), "password": Secret(password)},
        options={"json": json_mode, **options},
    )
    provider = build_provider(config, clients(url))
    assert isinstance(provider, DirectAdminProvider)
    return provider


@pytest.fixture(scope="module")
def sim(background: BackgroundServers) -> Iterator[tuple[DirectAdminSim, str]]:
    panel = DirectAdminSim(users=12)
    served = background.serve("directadmin-contract", panel.app())
    yield panel, served.url


@pytest.fixture(params=[True, False], ids=["json", "legacy"])
def env(request: pytest.FixtureRequest, sim: tuple[DirectAdminSim, str]) -> ContractEnv:
    panel, url = sim
    mode: bool = request.param
    return ContractEnv(
        provider=build(url, json_mode=mode), knobs=panel.knobs,
        with_bad_credentials=lambda: build(url, json_mode=mode, password="wrong"),
        with_timeout=lambda t: build(url, json_mode=mode, timeout=t),
    )


class TestDirectAdminContract(HostingContract, DnsContract):
    pass


def test_mapping_table_covers_every_raw_state() -> None:
    # upstream-apis.md §0.1: DirectAdmin accounts are only `suspended: yes|no`.
    assert ACCOUNT_STATUS == {"no": AccountStatus.ACTIVE, "yes": AccountStatus.SUSPENDED}


# -- against the simulator: both dialects, lifecycle, call counts -----------------------------
@pytest.fixture(params=[True, False], ids=["json", "legacy"])
def live(request: pytest.FixtureRequest,
         background: BackgroundServers) -> Iterator[tuple[DirectAdminSim, DirectAdminProvider]]:
    panel = DirectAdminSim(users=12)
    served = background.serve(f"directadmin-{id(panel)}", panel.app())
    yield panel, build(served.url, json_mode=request.param)
    background.stop_one(f"directadmin-{id(panel)}")


async def test_accounts_map_status_usage_and_domains(
        live: tuple[DirectAdminSim, DirectAdminProvider]) -> None:
    panel, provider = live
    accounts = {a.id: a for a in await provider.list_accounts()}
    assert set(accounts) == set(panel.users)
    suspended = {u for u, user in panel.users.items() if user.suspended}
    assert suspended and {a.id for a in accounts.values()
                          if a.status is AccountStatus.SUSPENDED} == suspended
    bruno = accounts["bruno"]
    assert bruno.domains == ["bruno-site.test", "bruno-shop.test"]
    assert bruno.package == "business" and bruno.raw_status == "no"
    assert bruno.usage is not None and bruno.usage.disk_mb and bruno.usage.disk_mb > 0
    assert bruno.created_at is not None


async def test_call_counts(live: tuple[DirectAdminSim, DirectAdminProvider]) -> None:
    panel, provider = live
    panel.reset_stats()
    await provider.list_accounts()
    n = len(panel.users)
    assert panel.total_requests == 1 + 3 * n
    panel.reset_stats()
    found = await provider.get_accounts(["alice", "chloe", "nobody"])
    assert set(found) == {"alice", "chloe"}
    assert panel.total_requests == 1 + 3 * 2  # only the requested users are read
    assert panel.command_stats["SHOW_USER_CONFIG"] == 2
    panel.reset_stats()
    zones = await provider.list_zones(with_records=True)
    assert panel.total_requests == 1 + n + len(zones)
    panel.reset_stats()
    got = await provider.get_zones([zones[0].id, zones[-1].id, "bruno/not-his.test"])
    assert set(got) == {zones[0].id, zones[-1].id}
    assert panel.total_requests == 3


async def test_suspend_unsuspend_and_wrong_state(
        live: tuple[DirectAdminSim, DirectAdminProvider]) -> None:
    panel, provider = live
    await provider.suspend_account("alice", "Payment overdue")
    assert panel.users["alice"].suspended
    assert (await provider.get_accounts(["alice"]))["alice"].status is AccountStatus.SUSPENDED
    with pytest.raises(errors.Conflict):
        await provider.suspend_account("alice", None)
    await provider.unsuspend_account("alice")
    assert not panel.users["alice"].suspended
    with pytest.raises(errors.Conflict):
        await provider.unsuspend_account("alice")
    with pytest.raises(errors.NotFound):
        await provider.suspend_account("ghost", None)


async def test_batch_suspend_is_one_call(
        live: tuple[DirectAdminSim, DirectAdminProvider]) -> None:
    panel, provider = live
    panel.reset_stats()
    await provider.suspend_accounts(["alice", "bruno", "chloe"], None)
    assert panel.total_requests == 1 and panel.command_stats["SELECT_USERS"] == 1
    assert all(panel.users[u].suspended for u in ("alice", "bruno", "chloe"))


async def test_create_package_password_delete(
        live: tuple[DirectAdminSim, DirectAdminProvider]) -> None:
    panel, provider = live
    account = await provider.create_account(AccountSpec(
        username="newsite", email="owner@newsite.test", password="s3cretpass",
        package="starter", domain="newsite.test"))
    assert account.status is AccountStatus.ACTIVE and account.domains == ["newsite.test"]
    assert panel.users["newsite"].ip in panel.ips
    with pytest.raises(errors.Conflict):
        await provider.create_account(AccountSpec(
            username="newsite", email="x@y.test", package="starter", domain="other.test"))
    with pytest.raises(errors.InvalidRequest):
        await provider.create_account(AccountSpec(username="nopkg", email="x@y.test",
                                                  domain="nopkg.test"))
    await provider.change_account_package("newsite", "business")
    assert panel.users["newsite"].package == "business"
    with pytest.raises(errors.InvalidRequest):
        await provider.change_account_package("newsite", "platinum")
    await provider.change_account_password("newsite", "an0ther-pass")
    assert panel.users["newsite"].password == "an0ther-pass"
    with pytest.raises(errors.InvalidRequest):
        await provider.change_account_password("newsite", "abc")
    await provider.delete_account("newsite")
    assert "newsite" not in panel.users and "newsite.test" not in panel.zones
    assert await provider.get_accounts(["newsite"]) == {}
    with pytest.raises(errors.NotFound):
        await provider.delete_account("newsite")


async def test_dns_record_upsert_replace_update_delete(
        live: tuple[DirectAdminSim, DirectAdminProvider]) -> None:
    panel, provider = live
    zone_id = "alice/alice-site.test"

    def rows(name: str, rtype: str) -> list[dict[str, str]]:
        return [r for r in panel.zones["alice-site.test"]
                if r["name"] == name and r["type"] == rtype]

    created = await provider.upsert_record(zone_id, DnsRecordInput(
        type="A", name="api.alice-site.test", content="198.51.100.7", ttl=600))
    assert created.name == "api.alice-site.test" and created.ttl == 600
    assert rows("api", "A") == [{"type": "A", "name": "api", "value": "198.51.100.7",
                                 "ttl": "600"}]
    # no id: replaces the records of the same name and type
    await provider.upsert_record(zone_id, DnsRecordInput(type="A", name="api",
                                                         content="198.51.100.8"))
    assert [r["value"] for r in rows("api", "A")] == ["198.51.100.8"]
    # by id: replaces exactly that record; the apex MX keeps its priority apart
    zone = (await provider.get_zones([zone_id]))[zone_id]
    mx = next(r for r in zone.records or [] if r.type == "MX")
    assert (mx.name, mx.priority, mx.content) == ("alice-site.test", 10, "mail")
    moved = await provider.upsert_record(zone_id, DnsRecordInput(
        id=mx.id, type="MX", name="@", content="mx2.alice-site.test.", priority=20))
    assert [r["value"] for r in rows("alice-site.test.", "MX")] == ["20 mx2.alice-site.test."]
    assert moved.priority == 20
    await provider.delete_record(zone_id, moved.id)
    assert rows("alice-site.test.", "MX") == []
    with pytest.raises(errors.NotFound):
        await provider.delete_record(zone_id, moved.id)
    with pytest.raises(errors.NotFound):  # a stale id fails before anything is written
        await provider.upsert_record(zone_id, DnsRecordInput(
            id=moved.id, type="MX", name="@", content="mx3.alice-site.test.", priority=5))
    assert rows("alice-site.test.", "MX") == []
    with pytest.raises(errors.NotFound):  # not alice's domain
        await provider.upsert_record("alice/bruno-site.test", DnsRecordInput(
            type="A", name="x", content="192.0.2.1"))


async def test_zone_create_and_delete(live: tuple[DirectAdminSim, DirectAdminProvider]) -> None:
    panel, provider = live
    zone = await provider.create_zone("fresh-zone.test", "chloe")
    assert zone.id == "chloe/fresh-zone.test" and zone.account_id == "chloe"
    assert zone.records and zone.nameservers == ["ns1.da.test", "ns2.da.test"]
    assert "fresh-zone.test" in panel.users["chloe"].domains
    with pytest.raises(errors.Conflict):
        await provider.create_zone("fresh-zone.test", "chloe")
    with pytest.raises(errors.InvalidRequest):
        await provider.create_zone("orphan.test", None)
    await provider.delete_zone(zone.id)
    assert "fresh-zone.test" not in panel.zones
    assert await provider.get_zones([zone.id]) == {}


@pytest.mark.parametrize("status", [200, 500])
async def test_json_errors_with_either_http_status(background: BackgroundServers,
                                                   status: int) -> None:
    panel = DirectAdminSim(users=3, json_error_status=status)
    served = background.serve(f"directadmin-status-{status}", panel.app())
    provider = build(served.url)
    with pytest.raises(errors.Conflict) as info:
        await provider.unsuspend_account("alice")
    assert info.value.upstream_status == status
    panel.knobs.error_rate = 1.0  # an HTML 500 crash page is an outage, not an answer
    with pytest.raises(errors.Unavailable):
        await provider.list_accounts()
    background.stop_one(f"directadmin-status-{status}")


# -- hand-written payloads (tests/fixtures/PROVENANCE.md) through respx ----------------------------
def text(name: str) -> str:
    return (FIXTURES / "directadmin" / name).read_text()


def legacy(name: str) -> httpx.Response:
    return httpx.Response(200, text=text(name), headers={"content-type": "text/plain"})


@respx.mock
async def test_legacy_accounts_from_hand_written_payloads() -> None:
    provider = build(BASE, json_mode=False)
    respx.get(f"{BASE}/CMD_API_SHOW_ALL_USERS").mock(return_value=legacy("show_all_users.txt"))
    respx.get(f"{BASE}/CMD_API_SHOW_USER_CONFIG", params={"user": "alice"}).mock(
        return_value=legacy("user_config_alice.txt"))
    respx.get(f"{BASE}/CMD_API_SHOW_USER_USAGE", params={"user": "alice"}).mock(
        return_value=legacy("user_usage_alice.txt"))
    domains = respx.get(f"{BASE}/CMD_API_SHOW_DOMAINS").mock(
        return_value=legacy("domains_alice.txt"))
    found = await provider.get_accounts(["alice"])
    alice = found["alice"]
    assert alice.status is AccountStatus.SUSPENDED and alice.raw_status == "yes"
    assert alice.domains == ["alice-site.test", "alice-shop.test"]
    assert alice.usage is not None and alice.usage.disk_mb == 522.5
    assert alice.created_at is not None and alice.created_at.year == 2022
    request = domains.calls.last.request
    assert "json" not in request.url.params
    auth = base64.b64decode(request.headers["authorization"][6:]).decode()
    assert auth == "admin|alice:da_demo_pass"


def test_legacy_parser_unescapes_entities_and_lists() -> None:
    parsed = wire.parse_urlencoded(text("user_config_alice.txt"), "da")
    assert isinstance(parsed, dict) and parsed["signature"] == "a=b"
    assert parsed["date_created"] == "Wed Nov 23 14:07:46 2022"
    assert wire.parse_urlencoded("list[]=a&list[]=b", "da") == ["a", "b"]
    with pytest.raises(errors.UnexpectedResponse):
        wire.parse_urlencoded("<html>login</html>", "da")


def test_legacy_zone_text_parser() -> None:
    records = wire.parse_zone_text(text("dns_control_zone.txt"))
    assert [(r["type"], r["name"]) for r in records] == [
        ("NS", "alice-site.test."), ("A", "alice-site.test."), ("A", "www"), ("A", "mail"),
        ("MX", "alice-site.test."), ("TXT", "x._domainkey")]
    assert records[3]["ttl"] == "14400"  # inherited from $TTL
    assert records[5]["value"] == '"v=DKIM1; k=rsa; p=MIGf"'  # ';' inside quotes is data


@respx.mock
async def test_json_zone_from_hand_written_payload() -> None:
    provider = build(BASE)
    route = respx.get(f"{BASE}/CMD_API_DNS_CONTROL").mock(
        return_value=httpx.Response(200, json=fixture("directadmin", "dns_control.json")))
    zone = (await provider.get_zones(["bruno/bruno-site.test"]))["bruno/bruno-site.test"]
    assert route.calls.last.request.url.params["json"] == "yes"
    records = {(r.type, r.name): r for r in zone.records or []}
    assert ("SOA", "bruno-site.test") not in records
    assert records[("A", "www.bruno-site.test")].ttl == 300
    assert records[("MX", "bruno-site.test")].priority == 10
    assert zone.nameservers == ["ns1.da.test"]
    assert wire.parse_record_key(records[("A", "www.bruno-site.test")].id) == (
        "A", "www", "203.0.113.51")


@respx.mock
async def test_error_envelopes_become_provider_errors() -> None:
    provider = build(BASE)
    respx.post(f"{BASE}/CMD_API_ACCOUNT_USER").mock(
        return_value=httpx.Response(500, json=fixture("directadmin", "error_json.json")))
    respx.get(f"{BASE}/CMD_API_SHOW_RESELLER_IPS").mock(
        return_value=httpx.Response(200, json=["203.0.113.50"]))
    with pytest.raises(errors.Conflict) as info:
        await provider.create_account(AccountSpec(username="bruno", email="b@x.test",
                                                  package="starter", domain="b.test"))
    assert "already exists" in info.value.message
    respx.get(f"{BASE}/CMD_API_LOGIN_TEST").mock(return_value=httpx.Response(
        200, text="<html><body>login</body></html>", headers={"content-type": "text/html"}))
    with pytest.raises(errors.UnexpectedResponse):
        await provider.check_health()
    legacy_provider = build(BASE, json_mode=False)
    respx.get(f"{BASE}/CMD_API_SHOW_USER_CONFIG").mock(return_value=legacy("error_legacy.txt"))
    respx.get(f"{BASE}/CMD_API_SHOW_ALL_USERS").mock(
        return_value=httpx.Response(200, text="list[]=ghost"))
    respx.get(f"{BASE}/CMD_API_SHOW_USER_USAGE").mock(return_value=legacy("error_legacy.txt"))
    with pytest.raises(errors.NotFound) as missing:
        await legacy_provider.get_accounts(["ghost"])
    assert missing.value.upstream_status == 200

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import respx

from panelql.domain.records import DnsRecordInput
from panelql.domain.status import DnsZoneStatus
from panelql.providers import errors
from panelql.providers.config import ConnectionConfig, Secret
from panelql.providers.ispconfig.adapter import ISPConfigProvider
from panelql.providers.ispconfig.mapping import ZONE_STATUS, SessionExpired, classify_fault
from panelql_sim.ispconfig import ISPConfigSim
from panelql_sim.runner import BackgroundServers
from tests.providers.contract import ContractEnv, DnsContract
from tests.providers.helpers import builder, clients, fixture

BASE = "http://ispconfig.test:8080"


@pytest.fixture(scope="module")
def sim(background: BackgroundServers) -> Iterator[tuple[ISPConfigSim, str]]:
    panel = ISPConfigSim(zones=8)
    served = background.serve("ispconfig-contract", panel.app())
    yield panel, served.url


@pytest.fixture
def env(sim: tuple[ISPConfigSim, str]) -> ContractEnv:
    panel, url = sim
    build = builder("ispconfig", url, username=panel.username, password=panel.password)
    return ContractEnv(
        provider=build(), knobs=panel.knobs,
        with_bad_credentials=lambda: build(password="wrong"),
        with_timeout=lambda t: build(timeout=t),
    )


class TestISPConfigContract(DnsContract):
    pass


def make(url: str, **options: object) -> ISPConfigProvider:
    config = ConnectionConfig(
        name="isp", kind="ispconfig", base_url=url, timeout_seconds=5.0,
        credentials={"username": Secret("remote"), "password": Secret("isp_demo_pass")},
        options=dict(options),
    )
    return ISPConfigProvider.from_config(config, clients(url))


@pytest.fixture
def live(sim: tuple[ISPConfigSim, str]) -> ISPConfigProvider:
    _, url = sim
    return make(url, proxy_ip="203.0.113.10", resolver_url=f"{url}/dns-query")


# -- mapping tables ---------------------------------------------------------------------------
def test_zone_status_table_covers_dns_soa_active() -> None:
    assert ZONE_STATUS == {"Y": DnsZoneStatus.ACTIVE, "N": DnsZoneStatus.INACTIVE}


@pytest.mark.parametrize(("code", "message", "expected"), [
    ("remote_fault", "The Session is expired or does not exist.", SessionExpired),
    ("remote_fault", "The SessionID is empty.", SessionExpired),
    ("remote_fault", "The login failed. Username or password wrong.",
     errors.AuthenticationFailed),
    ("remote_fault", "You do not have the permissions to access this function.",
     errors.AuthenticationFailed),
    ("remote_fault", "There is no domain ID with informed domain name.", errors.NotFound),
    ("remote_fault", "There is already a record for this domain.<br />", errors.Conflict),
    ("remote_fault", "Duplicate entry '3-www' for key 'rr'", errors.Conflict),
    ("remote_fault", "IP-Address format invalid.<br />\r\n", errors.InvalidRequest),
    ("remote_fault", "This ISPConfig installation is currently under maintenance.",
     errors.Unavailable),
    ("invalid_method", "Method dns_caa_add does not exist", errors.CapabilityNotSupported),
])
def test_fault_table(code: str, message: str, expected: type[errors.ProviderError]) -> None:
    assert classify_fault(code, message) is expected


# -- hand-written payloads (tests/fixtures/PROVENANCE.md) ------------------------------------------
def _by_method(responses: dict[str, object]) -> respx.Route:
    def answer(request: httpx.Request) -> httpx.Response:
        method = request.url.query.decode()
        return httpx.Response(200, json=responses[method])
    return respx.post(f"{BASE}/remote/json.php").mock(side_effect=answer)


@respx.mock
async def test_zones_and_records_from_hand_written_payloads() -> None:
    route = _by_method({"login": fixture("ispconfig", "login.json"),
                        "dns_zone_get": fixture("ispconfig", "zones.json"),
                        "dns_a_get": fixture("ispconfig", "records.json")})
    provider = make(BASE)
    zones = {z.id: z for z in await provider.list_zones(with_records=True)}
    assert route.call_count == 3  # login + all zones + all records, whatever the zone count
    bodies = [json.loads(call.request.content) for call in route.calls]
    assert bodies[0] == {"username": "remote", "password": "isp_demo_pass"}
    assert bodies[1] == {"session_id": "5c1e8a0d2f7b4c39a4e1b0f1c2d3e4f5", "primary_id": -1}
    shop, old = zones["3"], zones["7"]
    assert (shop.name, shop.status, shop.raw_status) == ("shop.example", DnsZoneStatus.ACTIVE,
                                                         "Y")
    assert old.status is DnsZoneStatus.INACTIVE and old.account_id is None
    assert shop.account_id == "4"
    assert shop.nameservers == ["ns1.nodepoint.eu", "ns2.nodepoint.eu"]
    assert shop.records is not None
    records = {r.id: r for r in shop.records}
    assert (records["42"].name, records["42"].content) == ("www.shop.example", "shop.example")
    assert (records["43"].priority, records["43"].content) == (10, "mail.shop.example")
    assert records["46"].name == "shop.example"  # empty name is the apex
    assert records["48"].type == "SRV" and records["48"].priority == 10
    assert [r.id for r in old.records or []] == ["60"]


@respx.mock
async def test_expired_session_logs_in_once_more() -> None:
    logins = iter(["sess-1", "sess-2"])
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        method = request.url.query.decode()
        body = json.loads(request.content)
        if method == "login":
            return httpx.Response(200, json={"code": "ok", "message": "",
                                             "response": next(logins)})
        seen.append(body["session_id"])
        if body["session_id"] == "sess-1":
            return httpx.Response(200, json=fixture("ispconfig", "fault_session_expired.json"))
        return httpx.Response(200, json=fixture("ispconfig", "zones.json"))

    respx.post(f"{BASE}/remote/json.php").mock(side_effect=answer)
    zones = await make(BASE).list_zones(with_records=False)
    assert len(zones) == 2 and seen == ["sess-1", "sess-2"]


@respx.mock
async def test_persisting_session_fault_is_authentication_failed() -> None:
    _by_method({"login": fixture("ispconfig", "login.json"),
                "dns_zone_get": fixture("ispconfig", "fault_session_expired.json")})
    with pytest.raises(errors.AuthenticationFailed):
        await make(BASE).list_zones(with_records=False)


@respx.mock
async def test_sql_never_reaches_the_message() -> None:
    one_zone = {"code": "ok", "message": "",
                "response": fixture("ispconfig", "zones.json")["response"][0]}
    _by_method({"login": fixture("ispconfig", "login.json"),
                "dns_zone_get": one_zone,
                "dns_rr_get_all_by_zone": fixture("ispconfig", "records.json"),
                "dns_a_add": fixture("ispconfig", "fault_database.json")})
    with pytest.raises(errors.Conflict) as info:
        await make(BASE).upsert_record("3", DnsRecordInput("A", "new", "192.0.2.1"))
    assert "INSERT" not in info.value.message and "dns_rr" not in info.value.message
    assert info.value.debug["method"] == "dns_a_add"


@respx.mock
async def test_garbage_envelope_is_unexpected_response() -> None:
    _by_method({"login": fixture("ispconfig", "login.json"),
                "dns_zone_get": {"code": "ok", "message": "", "response": "nope"}})
    with pytest.raises(errors.UnexpectedResponse):
        await make(BASE).list_zones(with_records=False)


@respx.mock
async def test_nameserver_check_reads_doh_answers() -> None:
    route = respx.get("https://cloudflare-dns.com/dns-query").mock(
        return_value=httpx.Response(200, json=fixture("ispconfig", "doh_ns.json")))
    check = await make(BASE).verify_nameservers("Shop.Example.")
    assert route.calls.last.request.url.params["type"] == "NS"
    assert check.present == ("ns1.nodepoint.eu",)
    assert check.missing == ("ns2.nodepoint.eu",) and not check.ok


# -- lifecycle against the simulator ----------------------------------------------------------
async def test_zone_and_record_lifecycle(live: ISPConfigProvider,
                                         sim: tuple[ISPConfigSim, str]) -> None:
    panel, _ = sim
    zone = await live.create_zone("fresh-shop.example", None)
    assert zone.name == "fresh-shop.example" and zone.status is DnsZoneStatus.ACTIVE
    stored = panel.zones[int(zone.id)]
    defaults = {(r["type"], r["data"]) for r in panel.records.values()
                if r["zone"] == int(zone.id)}
    assert defaults == {("NS", "ns1.nodepoint.eu."), ("NS", "ns2.nodepoint.eu."),
                        ("A", "203.0.113.10")}
    with pytest.raises(errors.Conflict):
        await live.create_zone("fresh-shop.example", None)

    serial = stored["serial"]
    www = await live.upsert_record(zone.id, DnsRecordInput("A", "www", "PROXYSRV", 600))
    assert www.content == "203.0.113.10" and www.name == "www.fresh-shop.example"
    assert panel.records[int(www.id)]["name"] == "www.fresh-shop.example."
    assert stored["serial"] > serial  # update_serial was asked for
    again = await live.upsert_record(zone.id, DnsRecordInput("A", "www.fresh-shop.example.",
                                                             "203.0.113.10", 300))
    assert again.id == www.id and panel.records[int(www.id)]["ttl"] == 300
    moved = await live.upsert_record(zone.id, DnsRecordInput("A", "www", "192.0.2.7",
                                                             id=www.id))
    assert moved.id == www.id and panel.records[int(www.id)]["data"] == "192.0.2.7"
    mx = await live.upsert_record(zone.id, DnsRecordInput("MX", "@", "mail.fresh-shop.example",
                                                          priority=20))
    assert panel.records[int(mx.id)]["aux"] == 20
    assert panel.records[int(mx.id)]["data"] == "mail.fresh-shop.example."

    [read] = (await live.get_zones([zone.id])).values()
    assert {(r.type, r.name, r.content) for r in read.records or []} >= {
        ("A", "www.fresh-shop.example", "192.0.2.7"),
        ("MX", "fresh-shop.example", "mail.fresh-shop.example")}

    await live.delete_record(zone.id, www.id)
    assert int(www.id) not in panel.records
    with pytest.raises(errors.NotFound):
        await live.delete_record(zone.id, www.id)
    await live.delete_zone(zone.id)
    assert int(zone.id) not in panel.zones
    with pytest.raises(errors.NotFound):
        await live.delete_zone(zone.id)


async def test_rejections_map_to_the_error_tree(live: ISPConfigProvider,
                                                sim: tuple[ISPConfigSim, str]) -> None:
    panel, _ = sim
    zone_id = str(next(iter(panel.zones)))
    with pytest.raises(errors.InvalidRequest):
        await live.upsert_record(zone_id, DnsRecordInput("A", "bad", "not-an-ip"))
    with pytest.raises(errors.InvalidRequest):
        await live.upsert_record(zone_id, DnsRecordInput("CAA", "x", "0 issue \"ca\""))
    with pytest.raises(errors.InvalidRequest):  # the alias needs an AAAA proxy address
        await live.upsert_record(zone_id, DnsRecordInput("AAAA", "v6", "PROXYSRV"))
    with pytest.raises(errors.NotFound):
        await live.upsert_record("9999", DnsRecordInput("A", "x", "192.0.2.1"))
    with pytest.raises(errors.NotFound):
        await live.upsert_record(zone_id, DnsRecordInput("A", "x", "192.0.2.1", id="99999"))
    assert await live.get_zones(["9999", "abc"]) == {}
    panel.functions.discard("dns_zone_delete")
    try:
        with pytest.raises(errors.AuthenticationFailed):
            await live.delete_zone(zone_id)
    finally:
        panel.functions.add("dns_zone_delete")


async def test_session_expiry_against_simulator(live: ISPConfigProvider,
                                                sim: tuple[ISPConfigSim, str]) -> None:
    panel, _ = sim
    await live.check_health()
    before = panel.logins
    await live.list_zones(with_records=False)
    assert panel.logins == before  # the session is reused
    panel.expire_sessions()
    zones = await live.list_zones(with_records=True)
    assert zones and panel.logins == before + 1


async def test_list_zones_costs_constant_calls(live: ISPConfigProvider,
                                               sim: tuple[ISPConfigSim, str]) -> None:
    panel, _ = sim
    await live.check_health()
    panel.reset_stats()
    zones = await live.list_zones(with_records=True)
    assert len(zones) >= 8 and panel.total_requests == 2


async def test_nameserver_verification_against_simulator(live: ISPConfigProvider) -> None:
    good = await live.verify_nameservers("customer1.example")
    assert good.ok and good.present == ("ns1.nodepoint.eu", "ns2.nodepoint.eu")
    elsewhere = await live.verify_nameservers("customer4.example")
    assert not elsewhere.ok and elsewhere.found == ("ns1.otherhost.net", "ns2.otherhost.net")
    unknown = await live.verify_nameservers("nobody.example")
    assert unknown.found == () and unknown.missing == live.nameservers

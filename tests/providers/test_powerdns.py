from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
import respx

from panelql.domain.records import DnsRecordInput
from panelql.domain.status import DnsZoneStatus
from panelql.providers import errors
from panelql.providers.config import ConnectionConfig, Secret
from panelql.providers.powerdns.adapter import PowerDNSProvider
from panelql.providers.powerdns.mapping import (
    ZONE_STATUS,
    OutOfZone,
    absolute,
    chunk_text,
    escape_text,
    join_content,
    record_id,
    split_content,
    text_strings,
    zone_status,
)
from panelql_sim.powerdns import PowerDNSSim
from panelql_sim.runner import BackgroundServers
from tests.providers.contract import ContractEnv, DnsContract
from tests.providers.helpers import builder, clients, fixture

BASE = "http://pdns.test:8081"
API = f"{BASE}/api/v1/servers/localhost"


@pytest.fixture(scope="module")
def sim(background: BackgroundServers) -> Iterator[tuple[PowerDNSSim, str]]:
    panel = PowerDNSSim(zones=6)
    served = background.serve("powerdns-contract", panel.app())
    yield panel, served.url


@pytest.fixture
def env(sim: tuple[PowerDNSSim, str]) -> ContractEnv:
    panel, url = sim
    build = builder("powerdns", url, api_key=panel.api_key)
    return ContractEnv(
        provider=build(), knobs=panel.knobs,
        with_bad_credentials=lambda: build(api_key="pdns_wrong"),
        with_timeout=lambda t: build(timeout=t),
    )


class TestPowerDNSContract(DnsContract):
    pass


def make(url: str, **options: object) -> PowerDNSProvider:
    config = ConnectionConfig(name="pdns", kind="powerdns", base_url=url, timeout_seconds=5.0,
                              credentials={"api_key": Secret("pdns_demo_key")},
                              options=dict(options))
    return PowerDNSProvider.from_config(config, clients(url))


@pytest.fixture
def live(sim: tuple[PowerDNSSim, str]) -> PowerDNSProvider:
    _, url = sim
    return make(url, nameservers=["ns1.nodepoint.eu", "ns2.nodepoint.eu"])


# -- mapping tables ---------------------------------------------------------------------------
def test_zone_kind_table() -> None:
    assert set(ZONE_STATUS) == {"native", "master", "primary", "slave", "secondary",
                                "producer", "consumer"}
    assert zone_status("Native", 5) is DnsZoneStatus.ACTIVE
    assert zone_status("Slave", 2024010101) is DnsZoneStatus.ACTIVE
    assert zone_status("Slave", 0) is DnsZoneStatus.PENDING  # never transferred
    assert zone_status("Hybrid", 1) is DnsZoneStatus.UNKNOWN
    assert zone_status(None, 1) is DnsZoneStatus.UNKNOWN


@pytest.mark.parametrize(("rtype", "raw", "content", "priority"), [
    ("MX", "10 mail.example.org.", "mail.example.org", 10),
    ("SRV", "10 5 5060 sip.example.org.", "5 5060 sip.example.org", 10),
    ("CNAME", "example.org.", "example.org", None),
    ("TXT", '"v=spf1 \\"quoted\\" -all"', 'v=spf1 "quoted" -all', None),
    ("A", "192.0.2.1", "192.0.2.1", None),
])
def test_content_round_trip(rtype: str, raw: str, content: str, priority: int | None) -> None:
    assert split_content(rtype, raw) == (content, priority)
    assert join_content(rtype, content, priority) == raw


@pytest.mark.parametrize(("value", "raw"), [
    (r"C:\dir\x", r'"C:\\dir\\x"'),
    ('say "hi"', r'"say \"hi\""'),
    ("café\ttab", r'"caf\195\169\009tab"'),
])
def test_text_is_escaped_as_powerdns_writes_it(value: str, raw: str) -> None:
    assert escape_text(value) == raw
    assert text_strings(raw) == [value]
    assert split_content("TXT", raw) == (value, None)


def test_multi_string_txt_keeps_its_strings() -> None:
    raw = '"v=DKIM1; p=abc" "def"'
    assert text_strings(raw) == ["v=DKIM1; p=abc", "def"]
    assert split_content("TXT", raw) == ("v=DKIM1; p=abcdef", None)
    assert join_content("TXT", "", None, ["v=DKIM1; p=abc", "def"]) == raw
    assert text_strings("bare words") == ["bare", "words"]  # zone-file form without quotes


def test_long_text_is_cut_at_255_bytes_between_characters() -> None:
    assert [len(c) for c in chunk_text("x" * 600)] == [255, 255, 90]
    chunks = chunk_text("é" * 200)  # 2 bytes each: never split inside one
    assert [len(c.encode()) for c in chunks] == [254, 146] and "".join(chunks) == "é" * 200


def test_names_with_a_trailing_dot_are_absolute() -> None:
    assert absolute("www", "example.org.") == "www.example.org."
    assert absolute("@", "example.org.") == "example.org."
    assert absolute("www.example.org.", "example.org.") == "www.example.org."
    assert absolute("host.other.example", "example.org.") == "host.other.example.example.org."
    with pytest.raises(OutOfZone):
        absolute("host.other.example.", "example.org.")


def test_record_ids_are_stable() -> None:
    assert record_id("www.example.org.", "A", "192.0.2.1") == \
        record_id("WWW.example.org.", "A", "192.0.2.1")
    assert record_id("www.example.org.", "A", "192.0.2.1") != \
        record_id("www.example.org.", "A", "192.0.2.2")


# -- hand-written payloads (tests/fixtures/PROVENANCE.md) ------------------------------------------
@respx.mock
async def test_zone_list_has_no_records_and_maps_kinds() -> None:
    route = respx.get(f"{API}/zones").mock(
        return_value=httpx.Response(200, json=fixture("powerdns", "zones.json")))
    zones = {z.name: z for z in await make(BASE).list_zones(with_records=False)}
    assert route.calls.last.request.headers["x-api-key"] == "pdns_demo_key"
    assert {n: (z.status, z.raw_status) for n, z in zones.items()} == {
        "example.org": (DnsZoneStatus.ACTIVE, "Native"),
        "transfer.example": (DnsZoneStatus.PENDING, "Slave"),
        "signed.example": (DnsZoneStatus.ACTIVE, "Master"),
        "future.example": (DnsZoneStatus.UNKNOWN, "Hybrid")}
    assert zones["example.org"].records is None
    assert zones["example.org"].account_id == "customer-7"


@respx.mock
async def test_rrsets_become_one_record_per_entry() -> None:
    respx.get(f"{API}/zones/example.org.").mock(
        return_value=httpx.Response(200, json=fixture("powerdns", "zone_example.json")))
    [zone] = (await make(BASE).get_zones(["example.org."])).values()
    assert zone.nameservers == ["ns1.nodepoint.eu", "ns2.nodepoint.eu"]
    records = zone.records or []
    addresses = [r for r in records if r.type == "A"]
    assert [(r.content, r.ttl) for r in addresses] == [("192.0.2.1", 300), ("192.0.2.2", 300)]
    assert len({r.id for r in records}) == len(records)
    mx = next(r for r in records if r.type == "MX")
    assert (mx.name, mx.content, mx.priority) == ("example.org", "mx1.example.org", 10)
    txt = next(r for r in records if r.type == "TXT")
    assert txt.content == "v=spf1 mx -all"


@respx.mock
async def test_upsert_is_one_get_and_one_patch() -> None:
    respx.get(f"{API}/zones/example.org.").mock(
        return_value=httpx.Response(200, json=fixture("powerdns", "zone_example.json")))
    patch = respx.patch(f"{API}/zones/example.org.").mock(return_value=httpx.Response(204))
    written = await make(BASE).upsert_record(
        "example.org.", DnsRecordInput("A", "@", "192.0.2.3", ttl=600))
    body = json.loads(patch.calls.last.request.content)
    assert body == {"rrsets": [{"name": "example.org.", "type": "A", "ttl": 600,
                                "changetype": "REPLACE", "records": [
                                    {"content": "192.0.2.1", "disabled": False},
                                    {"content": "192.0.2.2", "disabled": False},
                                    {"content": "192.0.2.3", "disabled": False}]}]}
    assert written.id == record_id("example.org.", "A", "192.0.2.3")


@respx.mock
async def test_upsert_keeps_every_entry_disabled_flag() -> None:
    zone = fixture("powerdns", "zone_example.json")
    zone["rrsets"][2]["records"][0]["disabled"] = True
    respx.get(f"{API}/zones/example.org.").mock(return_value=httpx.Response(200, json=zone))
    patch = respx.patch(f"{API}/zones/example.org.").mock(return_value=httpx.Response(204))
    [listed] = [r for r in (await make(BASE).get_zones(["example.org."]))["example.org."].records
                or [] if r.content == "192.0.2.1"]
    assert listed.disabled
    await make(BASE).upsert_record("example.org.", DnsRecordInput("A", "@", "192.0.2.3"))
    sent = json.loads(patch.calls.last.request.content)["rrsets"][0]["records"]
    assert [e["disabled"] for e in sent] == [True, False, False]


@respx.mock
async def test_out_of_zone_name_is_refused_before_any_write() -> None:
    respx.get(f"{API}/zones/example.org.").mock(
        return_value=httpx.Response(200, json=fixture("powerdns", "zone_example.json")))
    patch = respx.patch(f"{API}/zones/example.org.").mock(return_value=httpx.Response(204))
    with pytest.raises(errors.InvalidRequest) as info:
        await make(BASE).upsert_record("example.org.",
                                       DnsRecordInput("A", "host.other.example.", "192.0.2.1"))
    assert info.value.code == "BAD_USER_INPUT" and not patch.called


@respx.mock
async def test_deleting_the_last_entry_deletes_the_rrset() -> None:
    respx.get(f"{API}/zones/example.org.").mock(
        return_value=httpx.Response(200, json=fixture("powerdns", "zone_example.json")))
    patch = respx.patch(f"{API}/zones/example.org.").mock(return_value=httpx.Response(204))
    await make(BASE).delete_record("example.org.",
                                   record_id("www.example.org.", "CNAME", "example.org."))
    assert json.loads(patch.calls.last.request.content) == {"rrsets": [
        {"name": "www.example.org.", "type": "CNAME", "changetype": "DELETE"}]}


@pytest.mark.parametrize(("status", "name", "expected"), [
    (422, "error_conflict_422.json", errors.InvalidRequest),
    (404, "error_not_found.json", errors.NotFound),
])
@respx.mock
async def test_error_bodies(status: int, name: str,
                            expected: type[errors.ProviderError]) -> None:
    respx.post(f"{API}/zones").mock(
        return_value=httpx.Response(status, json=fixture("powerdns", name)))
    with pytest.raises(expected) as info:
        await make(BASE).create_zone("example.org", None)
    assert info.value.message.startswith(fixture("powerdns", name)["error"])


# -- against the simulator --------------------------------------------------------------------
async def test_call_counts(live: PowerDNSProvider, sim: tuple[PowerDNSSim, str]) -> None:
    panel, _ = sim
    panel.reset_stats()
    zones = await live.list_zones(with_records=False)
    assert panel.total_requests == 1 and len(zones) >= 6
    panel.reset_stats()
    zones = await live.list_zones(with_records=True)
    assert panel.total_requests == 1 + len(zones)
    assert any(z.status is DnsZoneStatus.PENDING for z in zones)


async def test_zone_and_record_lifecycle(live: PowerDNSProvider,
                                         sim: tuple[PowerDNSSim, str]) -> None:
    panel, _ = sim
    zone = await live.create_zone("fresh.example", "customer-9")
    assert zone.id == "fresh.example." and zone.status is DnsZoneStatus.ACTIVE
    assert zone.nameservers == ["ns1.nodepoint.eu", "ns2.nodepoint.eu"]
    with pytest.raises(errors.Conflict):
        await live.create_zone("fresh.example", None)

    serial = panel.zones["fresh.example."]["serial"]
    www = await live.upsert_record(zone.id, DnsRecordInput("A", "www", "192.0.2.10", 300))
    assert www.name == "www.fresh.example" and panel.zones["fresh.example."]["serial"] > serial
    second = await live.upsert_record(zone.id, DnsRecordInput("A", "www", "192.0.2.11"))
    mx = await live.upsert_record(zone.id, DnsRecordInput("MX", "@", "mail.fresh.example",
                                                          priority=5))
    note = await live.upsert_record(zone.id, DnsRecordInput("TXT", "@", 'say "hi"'))
    [read] = (await live.get_zones([zone.id])).values()
    by_id = {r.id: r for r in read.records or []}
    assert by_id[www.id].content == "192.0.2.10" and by_id[second.id].ttl == 300
    assert (by_id[mx.id].priority, by_id[mx.id].content) == (5, "mail.fresh.example")
    assert by_id[note.id].content == 'say "hi"'

    moved = await live.upsert_record(zone.id, DnsRecordInput("A", "www", "192.0.2.12",
                                                             id=www.id))
    [read] = (await live.get_zones([zone.id])).values()
    contents = sorted(r.content for r in read.records or [] if r.type == "A")
    assert contents == ["192.0.2.11", "192.0.2.12"] and moved.id != www.id
    with pytest.raises(errors.NotFound):
        await live.delete_record(zone.id, www.id)
    with pytest.raises(errors.InvalidRequest):
        await live.upsert_record(zone.id, DnsRecordInput("CNAME", "www", "elsewhere.example"))
    with pytest.raises(errors.InvalidRequest):
        await live.upsert_record(zone.id, DnsRecordInput("A", "bad", "not-an-ip"))

    written = await live.apply_changes(zone.id, deletes=[second.id, moved.id], upserts=[
        DnsRecordInput("CNAME", "www", "fresh.example"),
        DnsRecordInput("AAAA", "v6", "2001:db8::1")])
    assert [w.type for w in written] == ["CNAME", "AAAA"]
    names = {(rs["name"], rs["type"]) for rs in panel.zones["fresh.example."]["rrsets"]}
    assert ("www.fresh.example.", "A") not in names
    assert ("www.fresh.example.", "CNAME") in names

    await live.delete_zone(zone.id)
    assert "fresh.example." not in panel.zones
    with pytest.raises(errors.NotFound):
        await live.delete_zone(zone.id)
    assert await live.get_zones([zone.id]) == {}


async def test_concurrent_upserts_in_one_process_lose_nothing(live: PowerDNSProvider) -> None:
    zone = await live.create_zone("busy.example", None)
    wanted = {f"198.51.100.{i}" for i in range(10)}
    await asyncio.gather(*(live.upsert_record(zone.id, DnsRecordInput("A", "www", ip))
                           for ip in wanted))
    [read] = (await live.get_zones([zone.id])).values()
    assert {r.content for r in read.records or [] if r.type == "A"} == wanted
    await live.delete_zone(zone.id)

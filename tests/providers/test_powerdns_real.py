"""The PowerDNS adapter against a real PowerDNS Authoritative server (Debian's pdns-server with
the sqlite backend, on loopback), not a simulator.

The family contract runs through a thin pass-through proxy that carries the simulators' fault
knobs (outage, hang, malformed body…) in front of the real server; everything else goes
straight to it. What PowerDNS serves is checked over DNS with dnspython, not only through its
API. Skips with the reason where pdns_server or the sqlite schema is not installed.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator

import dns.asyncquery
import dns.message
import dns.rdatatype
import httpx
import pytest
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from panelql.application.dns_actions import zone_lock
from panelql.application.write_locks import LocalWriteLocks, RedisWriteLocks, WriteLocks
from panelql.domain.records import DnsRecordInput, DnsResourceRecord
from panelql.providers import errors
from panelql.providers.powerdns.adapter import PowerDNSProvider
from panelql_sim.framework import SimPanel
from panelql_sim.runner import BackgroundServers
from tests.providers import pdns_server
from tests.providers.contract import ContractEnv, DnsContract
from tests.providers.helpers import builder

REASON = pdns_server.missing()
if REASON is not None:
    print(f"\nskipping the real-PowerDNS tests: {REASON}", file=sys.stderr)
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

ZONE = "real.example."


class PassThrough(SimPanel):
    """Forwards every request to the real server; the fault knobs act in front of it."""

    name = "powerdns-proxy"

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def routes(self) -> list[BaseRoute]:
        return [Route("/{path:path}", self.forward,
                      methods=["GET", "POST", "PUT", "PATCH", "DELETE"])]

    async def forward(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("x-api-key", "content-type", "accept")}
        async with httpx.AsyncClient(base_url=self.target, timeout=30) as client:
            answer = await client.request(request.method, request.url.path,
                                          params=request.query_params,
                                          content=await request.body(), headers=headers)
        keep = {k: v for k, v in answer.headers.items() if k.lower() == "content-type"}
        return Response(answer.content, status_code=answer.status_code, headers=keep)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pdns_server.RealPowerDNS]:
    with pdns_server.running(tmp_path_factory.mktemp("pdns")) as real:
        yield real


@pytest.fixture(scope="module")
def proxy(server: pdns_server.RealPowerDNS, background: BackgroundServers
          ) -> tuple[PassThrough, str]:
    panel = PassThrough(server.url)
    return panel, background.serve("powerdns-real-proxy", panel.app()).url


def make(url: str, api_key: str) -> PowerDNSProvider:
    provider = builder("powerdns", url, api_key=api_key)()
    assert isinstance(provider, PowerDNSProvider)
    return provider


@pytest.fixture
async def pdns(server: pdns_server.RealPowerDNS) -> AsyncIterator[PowerDNSProvider]:
    provider = make(server.url, server.api_key)
    zones = {z.id for z in await provider.list_zones(with_records=False)}
    if ZONE not in zones:
        await provider.create_zone(ZONE.rstrip("."), None)
    yield provider
    await provider.aclose()


@pytest.fixture
async def env(proxy: tuple[PassThrough, str], server: pdns_server.RealPowerDNS,
              pdns: PowerDNSProvider) -> ContractEnv:
    panel, url = proxy
    await pdns.upsert_record(ZONE, DnsRecordInput("A", "seeded", "192.0.2.99"))
    build = builder("powerdns", url, api_key=server.api_key)
    return ContractEnv(provider=build(), knobs=panel.knobs,
                       with_bad_credentials=lambda: build(api_key="wrong-key"),
                       with_timeout=lambda t: build(timeout=t))


class TestRealPowerDNSContract(DnsContract):
    pass


async def served(server: pdns_server.RealPowerDNS, name: str, rtype: str) -> list[list[bytes]]:
    """What the server answers over DNS: per record, its character-strings (TXT) or text."""
    query = dns.message.make_query(name, rtype)
    answer = await dns.asyncquery.tcp(query, "127.0.0.1", port=server.dns_port, timeout=5)
    out: list[list[bytes]] = []
    for rrset in answer.answer:
        for rdata in rrset:
            out.append(list(rdata.strings) if rdata.rdtype == dns.rdatatype.TXT
                       else [rdata.to_text().encode()])
    return out


async def records(pdns: PowerDNSProvider, name: str, rtype: str) -> list[DnsResourceRecord]:
    zone = (await pdns.get_zones([ZONE]))[ZONE]
    return [r for r in zone.records or [] if r.name == name and r.type == rtype]


async def test_backslashes_are_served_and_listed_as_written(
        pdns: PowerDNSProvider, server: pdns_server.RealPowerDNS) -> None:
    written = await pdns.upsert_record(ZONE, DnsRecordInput("TXT", "path", r"C:\dir\x"))
    assert written.content == r"C:\dir\x"
    assert await served(server, "path.real.example.", "TXT") == [[rb"C:\dir\x"]]
    [listed] = await records(pdns, "path.real.example", "TXT")
    assert (listed.content, listed.id) == (r"C:\dir\x", written.id)


async def test_quotes_and_non_ascii_round_trip(pdns: PowerDNSProvider,
                                               server: pdns_server.RealPowerDNS) -> None:
    text = 'say "hi" — café'
    written = await pdns.upsert_record(ZONE, DnsRecordInput("TXT", "quote", text))
    assert await served(server, "quote.real.example.", "TXT") == [[text.encode()]]
    [listed] = await records(pdns, "quote.real.example", "TXT")
    assert listed.content == text and listed.id == written.id


async def test_multi_string_txt_is_kept_through_a_ttl_update(
        pdns: PowerDNSProvider, server: pdns_server.RealPowerDNS) -> None:
    dkim = DnsRecordInput("TXT", "sel._domainkey", "", ttl=300,
                          txt_strings=["v=DKIM1; p=abc", "def"])
    written = await pdns.upsert_record(ZONE, dkim)
    assert written.txt_strings == ["v=DKIM1; p=abc", "def"]
    assert written.content == "v=DKIM1; p=abcdef"
    name = "sel._domainkey.real.example"
    assert await served(server, name + ".", "TXT") == [[b"v=DKIM1; p=abc", b"def"]]
    # A client that read the record writes it back with a new TTL and the joined content.
    [listed] = await records(pdns, name, "TXT")
    assert listed.txt_strings == ["v=DKIM1; p=abc", "def"]
    again = await pdns.upsert_record(ZONE, DnsRecordInput(
        "TXT", "sel._domainkey", listed.content, ttl=900, id=listed.id))
    assert again.id == listed.id
    assert await served(server, name + ".", "TXT") == [[b"v=DKIM1; p=abc", b"def"]]
    [after] = await records(pdns, name, "TXT")
    assert (after.ttl, after.txt_strings) == (900, ["v=DKIM1; p=abc", "def"])


async def test_long_text_is_cut_into_strings_of_255_bytes(
        pdns: PowerDNSProvider, server: pdns_server.RealPowerDNS) -> None:
    key = "p=" + "A" * 600
    await pdns.upsert_record(ZONE, DnsRecordInput("TXT", "long", key))
    [strings] = await served(server, "long.real.example.", "TXT")
    assert [len(s) for s in strings] == [255, 255, 92] and b"".join(strings) == key.encode()


async def test_disabled_entries_stay_disabled(pdns: PowerDNSProvider,
                                              server: pdns_server.RealPowerDNS) -> None:
    async with httpx.AsyncClient(base_url=server.url,
                                 headers={"X-API-Key": server.api_key}) as client:
        answer = await client.patch(f"/api/v1/servers/localhost/zones/{ZONE}", json={"rrsets": [
            {"name": "dis.real.example.", "type": "A", "ttl": 300, "changetype": "REPLACE",
             "records": [{"content": "192.0.2.1", "disabled": True},
                         {"content": "192.0.2.2", "disabled": False}]}]})
        assert answer.status_code == 204, answer.text
    await pdns.upsert_record(ZONE, DnsRecordInput("A", "dis", "192.0.2.3", ttl=600))
    listed = {r.content: r.disabled for r in await records(pdns, "dis.real.example", "A")}
    assert listed == {"192.0.2.1": True, "192.0.2.2": False, "192.0.2.3": False}
    assert sorted(s[0] for s in await served(server, "dis.real.example.", "A")) == \
        [b"192.0.2.2", b"192.0.2.3"]
    # Updating the disabled entry itself keeps it disabled.
    [old] = [r for r in await records(pdns, "dis.real.example", "A")
             if r.content == "192.0.2.1"]
    moved = await pdns.upsert_record(ZONE, DnsRecordInput("A", "dis", "192.0.2.4",
                                                          id=old.id))
    assert moved.disabled
    listed = {r.content: r.disabled for r in await records(pdns, "dis.real.example", "A")}
    assert listed == {"192.0.2.4": True, "192.0.2.2": False, "192.0.2.3": False}


async def test_a_name_outside_the_zone_is_bad_input(pdns: PowerDNSProvider) -> None:
    with pytest.raises(errors.InvalidRequest) as info:
        await pdns.upsert_record(ZONE, DnsRecordInput("A", "host.other.example.", "192.0.2.1"))
    assert info.value.code == "BAD_USER_INPUT" and "not inside the zone" in info.value.message
    names = {r.name for r in (await pdns.get_zones([ZONE]))[ZONE].records or []}
    assert not any("other.example" in n for n in names)
    # Relative and in-zone absolute names still work.
    inside = await pdns.upsert_record(ZONE, DnsRecordInput("A", "in.real.example.", "192.0.2.8"))
    assert inside.name == "in.real.example"


async def test_ten_concurrent_upserts_to_one_name_all_remain(pdns: PowerDNSProvider) -> None:
    wanted = {f"198.51.100.{i}" for i in range(10)}
    await asyncio.gather(*(pdns.upsert_record(ZONE, DnsRecordInput("A", "busy", ip))
                           for ip in wanted))
    assert {r.content for r in await records(pdns, "busy.real.example", "A")} == wanted


@pytest.fixture(params=["local", "redis"])
async def two_replicas_locks(request: pytest.FixtureRequest
                             ) -> AsyncIterator[tuple[WriteLocks, WriteLocks]]:
    """The write locks of two gateway replicas: shared Redis, or one process's own."""
    if request.param == "local":
        shared = LocalWriteLocks()
        yield shared, shared
        return
    url = os.environ.get("PANELQL_TEST_REDIS_URL")
    if not url:
        pytest.skip("PANELQL_TEST_REDIS_URL is not set; the cross-replica case needs Redis")
    first, second = Redis.from_url(url), Redis.from_url(url)
    yield RedisWriteLocks(first), RedisWriteLocks(second)
    await first.aclose()
    await second.aclose()


async def test_concurrent_writers_in_two_replicas_lose_nothing(
        server: pdns_server.RealPowerDNS, pdns: PowerDNSProvider,
        two_replicas_locks: tuple[WriteLocks, WriteLocks]) -> None:
    """Two adapter instances with their own locks (two replicas) share only the gateway's write
    lock, taken as dns_actions takes it."""
    replicas = [(make(server.url, server.api_key), locks) for locks in two_replicas_locks]
    name = f"shared-{uuid.uuid4().hex[:6]}"
    wanted = {f"203.0.113.{i}" for i in range(10)}

    async def write(i: int, ip: str) -> None:
        provider, locks = replicas[i % 2]
        async with locks.hold(zone_lock(provider.name, ZONE)):
            await provider.upsert_record(ZONE, DnsRecordInput("A", name, ip))

    await asyncio.gather(*(write(i, ip) for i, ip in enumerate(sorted(wanted))))
    assert {r.content for r in await records(pdns, f"{name}.real.example", "A")} == wanted
    for provider, _ in replicas:
        await provider.aclose()


async def test_errors_of_the_real_server(pdns: PowerDNSProvider) -> None:
    with pytest.raises(errors.InvalidRequest):
        await pdns.upsert_record(ZONE, DnsRecordInput("A", "bad", "not-an-ip"))
    await pdns.upsert_record(ZONE, DnsRecordInput("A", "clash", "192.0.2.1"))
    with pytest.raises(errors.InvalidRequest):
        await pdns.upsert_record(ZONE, DnsRecordInput("CNAME", "clash", "elsewhere.example"))
    with pytest.raises(errors.Conflict):
        await pdns.create_zone(ZONE.rstrip("."), None)
    with pytest.raises(errors.NotFound):
        await pdns.delete_record(ZONE, "0" * 20)
    assert await pdns.get_zones(["missing.example."]) == {}

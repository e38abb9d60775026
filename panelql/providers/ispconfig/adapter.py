"""ISPConfig 3 adapter: DNS zones and records through the remote JSON API (``remote/json.php``).

Wire protocol: ``POST /remote/json.php?<method>`` with a JSON object of the PHP parameters; the
answer is always HTTP 200 with ``{"code":"ok"|"remote_fault"|…,"message":…,"response":…}``.
``login`` returns a session id that every later call carries; sessions expire after 30 idle
minutes, so a ``session is expired`` fault triggers exactly one fresh login and a retry.

Batching: ``dns_zone_get`` with ``primary_id: -1`` returns every zone in one call. Records have no
documented cross-zone list, but ``dns_<type>_get`` with ``-1`` reads the whole ``dns_rr`` table
(remoting_lib ``getDataRecord`` selects ``SELECT * FROM dns_rr`` for every type's form), so all
records of all zones also cost one call. A few zones by id use ``dns_rr_get_all_by_zone`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Self

import httpx

from panelql.domain.records import (
    DnsRecordInput,
    DnsResourceRecord,
    DnsZoneRecord,
    NameserverCheck,
)
from panelql.domain.status import DnsZoneStatus, map_status
from panelql.providers.bounded import Bounded
from panelql.providers.config import ConnectionConfig
from panelql.providers.contract import Capability, DnsProvider, Family
from panelql.providers.errors import InvalidRequest, NotFound, ProviderError, Unavailable
from panelql.providers.http import ClientFactory, Upstream, expect
from panelql.providers.ispconfig.mapping import (
    WRITABLE_TYPES,
    ZONE_STATUS,
    SessionExpired,
    classify_fault,
    clean_message,
    read_data,
    record_fqdn,
    stored_data,
    stored_name,
    zone_name,
)

ENDPOINT = "/remote/json.php"
# The seed's platform nameservers; set ``nameservers`` in the connection options for yours.
DEFAULT_NAMESERVERS = ("ns1.nodepoint.eu", "ns2.nodepoint.eu")
DEFAULT_RESOLVER = "https://cloudflare-dns.com/dns-query"
PER_ZONE_LIMIT = 3  # up to this many zones by id: per-zone calls; more: the two list calls
PER_ZONE_CONCURRENCY = 8
NS_TYPE = 2  # RR type number in DNS JSON answers


def read_error(body: Any) -> str | None:
    """Errors outside the envelope (a proxy in front of ISPConfig answering 5xx/429)."""
    if isinstance(body, dict):
        for key in ("message", "error"):
            if isinstance(body.get(key), str) and body[key]:
                return clean_message(body[key])
    return None


class ISPConfigProvider(DnsProvider):
    kind = "ispconfig"
    families = frozenset({Family.DNS})
    capabilities = frozenset(
        {Capability.DNS_READ, Capability.DNS_ZONE_WRITE, Capability.DNS_RECORD_WRITE,
         Capability.DNS_NAMESERVER_CHECK}
    )

    def __init__(
        self, config: ConnectionConfig, upstream: Upstream, resolver: Upstream, *,
        username: str, password: str,
    ) -> None:
        super().__init__(config)
        self.api = upstream
        self.resolver = resolver
        self._username = username
        self._password = password
        self._session: str | None = None
        self._login_lock = asyncio.Lock()
        self._per_zone = Bounded(PER_ZONE_CONCURRENCY)
        opts = config.options
        self.server_id = int(opts.get("server_id", 1))
        self.client_id = int(opts.get("client_id", 0))
        self.nameservers = tuple(
            str(ns).rstrip(".").lower() for ns in opts.get("nameservers", DEFAULT_NAMESERVERS)
        )
        self.proxy_alias = str(opts.get("proxy_alias", "PROXYSRV"))
        self.proxy_ip: str | None = opts.get("proxy_ip")
        self.proxy_ipv6: str | None = opts.get("proxy_ipv6")
        self.resolver_path = httpx.URL(str(opts.get("resolver_url", DEFAULT_RESOLVER))).path

    @classmethod
    def from_config(cls, config: ConnectionConfig, clients: ClientFactory) -> Self:
        base = config.base_url.rstrip("/").removesuffix(ENDPOINT)
        client = clients.build(base, timeout=config.timeout_seconds)
        resolver_url = httpx.URL(str(config.options.get("resolver_url", DEFAULT_RESOLVER)))
        resolver = clients.build(
            str(resolver_url.copy_with(path="/", query=None)),
            headers={"Accept": "application/dns-json"}, timeout=10.0,  # seed: 10 s for DNS checks
        )
        return cls(
            config, Upstream(client, config.name, read_error),
            Upstream(resolver, config.name, read_error),
            username=config.credential("username"), password=config.credential("password"),
        )

    # -- the error boundary -------------------------------------------------------------------
    async def _rpc(self, method: str, params: dict[str, Any]) -> Any:
        body = await self.api.json("POST", f"{ENDPOINT}?{method}", json=params)
        expect(isinstance(body, dict) and isinstance(body.get("code"), str), self.name,
               "remote API envelope")
        if body["code"] == "ok":
            return body.get("response")
        raw = str(body.get("message") or "")
        error = classify_fault(body["code"], raw)
        raise error(clean_message(raw), provider=self.name,
                    debug={"method": method, "code": body["code"], "message": raw[:300]})

    async def _login(self, stale: str | None) -> str:
        async with self._login_lock:
            if self._session is None or self._session == stale:
                session = await self._rpc(
                    "login", {"username": self._username, "password": self._password})
                expect(isinstance(session, str) and bool(session), self.name, "session id")
                self._session = session
            return self._session

    async def _call(self, method: str, **params: Any) -> Any:
        session = self._session or await self._login(None)
        try:
            return await self._rpc(method, {"session_id": session, **params})
        except SessionExpired:
            # One fresh login; a second expiry in a row is a real authentication failure.
            session = await self._login(session)
            return await self._rpc(method, {"session_id": session, **params})

    async def check_health(self) -> None:
        rows = await self._call("dns_zone_get", primary_id={"#OFFSET#": 0, "#LIMIT#": 1})
        expect(isinstance(rows, list), self.name, "zone list")

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            # Best effort: an unanswered logout is harmless, the session times out by itself.
            with contextlib.suppress(ProviderError):
                await self._rpc("logout", {"session_id": session})

    # -- reads --------------------------------------------------------------------------------
    async def list_zones(self, *, with_records: bool) -> list[DnsZoneRecord]:
        if not with_records:
            return [self._zone(row, None) for row in await self._zone_rows()]
        zones, rows = await asyncio.gather(self._zone_rows(), self._call("dns_a_get",
                                                                         primary_id=-1))
        expect(isinstance(rows, list), self.name, "record list")
        by_zone: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            expect(isinstance(row, dict) and "zone" in row, self.name, "record row")
            by_zone[str(row["zone"])].append(row)
        return [self._zone(zone, by_zone[str(zone["id"])]) for zone in zones]

    async def get_zones(self, ids: Sequence[str]) -> Mapping[str, DnsZoneRecord]:
        if len(ids) > PER_ZONE_LIMIT:
            return await super().get_zones(ids)
        found = await asyncio.gather(*(self._find_zone(zid) for zid in ids))
        return {zone.id: zone for zone in found if zone is not None}

    async def _find_zone(self, zone_id: str) -> DnsZoneRecord | None:
        if not zone_id.isdigit():
            return None
        async with self._per_zone:
            try:
                row = await self._zone_row(zone_id)
            except NotFound:
                return None
            return self._zone(row, await self._zone_records(zone_id))

    async def _zone_rows(self) -> list[dict[str, Any]]:
        rows = await self._call("dns_zone_get", primary_id=-1)
        expect(isinstance(rows, list), self.name, "zone list")
        for row in rows:
            expect(isinstance(row, dict) and "id" in row and "origin" in row, self.name,
                   "zone row")
        return list(rows)

    async def _zone_row(self, zone_id: str) -> dict[str, Any]:
        if not zone_id.isdigit():
            raise NotFound("DNS zone not found", provider=self.name)
        row = await self._call("dns_zone_get", primary_id=int(zone_id))
        # A missing id answers an empty array (PHP's empty record), not a fault.
        if not row:
            raise NotFound("DNS zone not found", provider=self.name)
        expect(isinstance(row, dict) and "origin" in row, self.name, "zone row")
        return dict(row)

    async def _zone_records(self, zone_id: str) -> list[dict[str, Any]]:
        rows = await self._call("dns_rr_get_all_by_zone", zone_id=int(zone_id))
        rows = rows or []  # a zone without records answers false on some versions
        expect(isinstance(rows, list) and all(isinstance(r, dict) for r in rows), self.name,
               "record list")
        return list(rows)

    def _zone(self, row: dict[str, Any], records: list[dict[str, Any]] | None) -> DnsZoneRecord:
        name = zone_name(str(row["origin"]))
        raw = str(row.get("active", ""))
        converted = None if records is None else [self._record(r, name) for r in records]
        nameservers = [str(row.get("ns") or "").rstrip(".").lower()]
        if converted is not None:
            apex_ns = [r.content.lower() for r in converted if r.type == "NS" and r.name == name]
            nameservers = list(dict.fromkeys(apex_ns)) or nameservers
        return DnsZoneRecord(
            connection=self.name, id=str(row["id"]), name=name,
            status=map_status(ZONE_STATUS, raw, DnsZoneStatus.UNKNOWN, source=self.kind),
            raw_status=raw, nameservers=[ns for ns in nameservers if ns], records=converted,
            account_id=_client_of(row),
        )

    def _record(self, row: dict[str, Any], zone: str) -> DnsResourceRecord:
        expect("id" in row and "type" in row, self.name, "record row")
        rtype = str(row["type"]).upper()
        aux = _int(row.get("aux"))
        return DnsResourceRecord(
            id=str(row["id"]), type=rtype, name=record_fqdn(str(row.get("name") or ""), zone),
            content=read_data(rtype, str(row.get("data") or "")), ttl=_int(row.get("ttl")),
            priority=aux if rtype in ("MX", "SRV") else None,
        )

    # -- writes -------------------------------------------------------------------------------
    async def create_zone(self, name: str, account_id: str | None) -> DnsZoneRecord:
        """Zone plus the default NS records (and apex A to the proxy IP when configured)."""
        origin = name.strip().rstrip(".").lower()
        client_id = int(account_id) if account_id and account_id.isdigit() else self.client_id
        primary = self.nameservers[0] if self.nameservers else f"ns1.{origin}"
        params = {
            "server_id": self.server_id, "origin": f"{origin}.", "ns": f"{primary}.",
            "mbox": f"hostmaster.{origin}.", "serial": int(time.strftime("%Y%m%d01")),
            "refresh": 7200, "retry": 540, "expire": 604800, "minimum": 3600, "ttl": 3600,
            "active": "Y", "xfer": "", "also_notify": "", "update_acl": "",
        }
        zone_id = await self._call("dns_zone_add", client_id=client_id, params=params)
        expect(isinstance(zone_id, int | str) and str(zone_id).isdigit(), self.name, "zone id")
        defaults = [DnsRecordInput("NS", origin, ns, 3600) for ns in self.nameservers]
        if self.proxy_ip:
            defaults.append(DnsRecordInput("A", origin, self.proxy_ip, 3600))
        records = [await self._add(str(zone_id), origin, client_id, rec) for rec in defaults]
        row = {**params, "id": zone_id, "sys_groupid": None}
        zone = self._zone(row, [])
        zone.records = records
        zone.nameservers = list(self.nameservers) or zone.nameservers
        return zone

    async def delete_zone(self, zone_id: str) -> None:
        if not zone_id.isdigit():
            raise NotFound("DNS zone not found", provider=self.name)
        affected = await self._call("dns_zone_delete", primary_id=int(zone_id))
        if not affected:  # deleteQuery answers the affected row count: 0 means no such zone
            raise NotFound("DNS zone not found", provider=self.name)

    async def upsert_record(self, zone_id: str, record: DnsRecordInput) -> DnsResourceRecord:
        rtype = record.type.upper()
        if rtype not in WRITABLE_TYPES:
            raise InvalidRequest(f"ISPConfig records of type {rtype} are not supported",
                                 provider=self.name, fields={"type": "unsupported"})
        zone, rows = await asyncio.gather(self._zone_row(zone_id), self._zone_records(zone_id))
        origin = zone_name(str(zone["origin"]))
        content = self.resolve_content(rtype, record.content)
        wanted = DnsRecordInput(rtype, record_fqdn(stored_name(record.name, origin), origin),
                                content, record.ttl or _int(zone.get("ttl")) or 3600,
                                record.priority, record.id)
        existing = self._existing(rows, origin, wanted)
        if existing is None:
            return await self._add(zone_id, origin, self.client_id, wanted)
        params = self._params(zone_id, origin, wanted)
        await self._call(f"dns_{rtype.lower()}_update", client_id=self.client_id,
                         primary_id=int(existing), params=params, update_serial=True)
        return self._echo(existing, wanted)

    async def delete_record(self, zone_id: str, record_id: str) -> None:
        rows = await self._zone_records(zone_id)
        row = next((r for r in rows if str(r.get("id")) == record_id), None)
        rtype = str((row or {}).get("type", "")).lower()
        if row is None or not rtype.isalpha():
            raise NotFound("DNS record not found", provider=self.name)
        affected = await self._call(f"dns_{rtype}_delete", primary_id=int(record_id),
                                    update_serial=True)
        if not affected:
            raise NotFound("DNS record not found", provider=self.name)

    def _existing(self, rows: list[dict[str, Any]], origin: str,
                  wanted: DnsRecordInput) -> str | None:
        """The row an upsert updates: the given id, the same record again, or the one CNAME."""
        current = {str(r.get("id")): self._record(r, origin) for r in rows}
        if wanted.id is not None:
            if wanted.id not in current:
                raise NotFound("DNS record not found", provider=self.name)
            return wanted.id
        same = [rid for rid, r in current.items()
                if r.type == wanted.type and r.name == wanted.name]
        for rid in same:
            if current[rid].content == wanted.content or wanted.type == "CNAME":
                return rid
        return None

    async def _add(self, zone_id: str, origin: str, client_id: int,
                   record: DnsRecordInput) -> DnsResourceRecord:
        new_id = await self._call(f"dns_{record.type.lower()}_add", client_id=client_id,
                                  params=self._params(zone_id, origin, record),
                                  update_serial=True)
        expect(isinstance(new_id, int | str) and str(new_id).isdigit() and int(new_id) > 0,
               self.name, "record id")
        return self._echo(str(new_id), record)

    def _params(self, zone_id: str, origin: str, record: DnsRecordInput) -> dict[str, Any]:
        rtype = record.type.upper()
        return {
            "server_id": self.server_id, "zone": int(zone_id), "type": rtype,
            "name": stored_name(record.name, origin), "data": stored_data(rtype, record.content),
            "aux": record.priority or 0, "ttl": record.ttl or 3600, "active": "Y",
            "stamp": time.strftime("%Y-%m-%d %H:%M:%S"),
        }

    def _echo(self, record_id: str, record: DnsRecordInput) -> DnsResourceRecord:
        rtype = record.type.upper()
        return DnsResourceRecord(
            id=record_id, type=rtype, name=record.name.rstrip(".").lower(),
            content=read_data(rtype, record.content), ttl=record.ttl,
            priority=record.priority if rtype in ("MX", "SRV") else None,
        )

    def resolve_content(self, rtype: str, content: str) -> str:
        """The seed's ``PROXYSRV`` alias: customers type it instead of the proxy's address."""
        if content.strip().upper() != self.proxy_alias.upper():
            return content.strip()
        address = {"A": self.proxy_ip, "AAAA": self.proxy_ipv6}.get(rtype)
        if not address:
            raise InvalidRequest(
                f"{self.proxy_alias} stands for the proxy address, which is not configured "
                f"for {rtype} records", provider=self.name, fields={"content": "alias"})
        return address

    # -- nameserver verification --------------------------------------------------------------
    async def verify_nameservers(self, domain: str) -> NameserverCheck:
        """Ask a DNS-over-HTTPS resolver (JSON API) which nameservers ``domain`` delegates to."""
        name = domain.strip().rstrip(".").lower()
        body = await self.resolver.json("GET", self.resolver_path,
                                        params={"name": name, "type": "NS"})
        expect(isinstance(body, dict) and isinstance(body.get("Status"), int), self.name,
               "resolver answer")
        if body["Status"] not in (0, 3):  # NOERROR, NXDOMAIN; SERVFAIL etc. say nothing
            raise Unavailable("the DNS resolver could not answer for this domain",
                              provider=self.name, debug={"status": body["Status"]})
        answers = body.get("Answer") or []
        expect(isinstance(answers, list), self.name, "resolver answer")
        found = tuple(dict.fromkeys(
            str(a.get("data", "")).rstrip(".").lower() for a in answers
            if isinstance(a, dict) and a.get("type") == NS_TYPE
        ))
        return NameserverCheck(domain=name, expected=self.nameservers, found=found)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _client_of(row: dict[str, Any]) -> str | None:
    # dns_soa has no client_id column; sys_groupid is the owning client's group (1 = admin).
    group = _int(row.get("sys_groupid"))
    return str(group) if group and group > 1 else None

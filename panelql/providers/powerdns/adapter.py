"""PowerDNS Authoritative adapter: zones and rrsets through the HTTP API (``/api/v1``).

Batching: ``GET /servers/{id}/zones`` lists every zone in one call but without rrsets, so
records cost one ``GET /zones/{id}`` per zone (bounded concurrency). Writes are rrset-wide:
every change is one ``PATCH /zones/{id}`` with ``changetype`` REPLACE/DELETE rrsets, and
``apply_changes`` folds any number of record changes into one GET plus one PATCH.

Records have no ids upstream; each rrset entry gets a stable id from its name, type and content
(see mapping.record_id), so an update that changes the content also changes the id.

Lost updates: a REPLACE carries the whole rrset, so two writers that read the same rrset and
each add one entry would keep only the last one. PowerDNS 4.7 has no conditional PATCH and no
single-entry change (EXTEND/PRUNE arrived in 4.9.12 and 5.0.2, docs/http-api/zone.rst
@20096dc7), so every read-modify-write of a zone runs under a per-zone lock here (one process)
and under the gateway's write lock (``application/write_locks.py``, across replicas).
Every entry's ``disabled`` flag is carried through a REPLACE unchanged: ws-auth.cc
``gatherRecords`` @20096dc7 reads a missing ``disabled`` as false, which would re-enable it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import quote

from panelql.domain.records import DnsRecordInput, DnsResourceRecord, DnsZoneRecord
from panelql.providers.bounded import Bounded
from panelql.providers.config import ConnectionConfig
from panelql.providers.contract import Capability, DnsProvider, Family
from panelql.providers.errors import InvalidRequest, NotFound
from panelql.providers.http import ClientFactory, Upstream, expect
from panelql.providers.powerdns.mapping import (
    TEXT_TYPES,
    OutOfZone,
    absolute,
    join_content,
    record_id,
    split_content,
    text_strings,
    text_value,
    zone_status,
)

CONCURRENCY = 8
DEFAULT_TTL = 3600


def read_error(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return None
    extra = [e for e in body.get("errors") or [] if isinstance(e, str) and e != body["error"]]
    return "; ".join([body["error"], *extra])


@dataclass
class _Entry:
    content: str
    disabled: bool = False


@dataclass
class _RRset:
    name: str
    type: str
    ttl: int
    entries: list[_Entry] = field(default_factory=list)
    changed: bool = False


class PowerDNSProvider(DnsProvider):
    kind = "powerdns"
    families = frozenset({Family.DNS})
    capabilities = frozenset(
        {Capability.DNS_READ, Capability.DNS_ZONE_WRITE, Capability.DNS_RECORD_WRITE}
    )

    def __init__(self, config: ConnectionConfig, upstream: Upstream) -> None:
        super().__init__(config)
        self.api = upstream
        opts = config.options
        self.server = f"/api/v1/servers/{quote(str(opts.get('server_id', 'localhost')))}"
        self.zone_kind = str(opts.get("zone_kind", "Native"))
        self.nameservers = [str(ns) for ns in opts.get("nameservers", [])]
        self._per_zone = Bounded(CONCURRENCY)
        self._writing: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    @classmethod
    def from_config(cls, config: ConnectionConfig, clients: ClientFactory) -> Self:
        # The base URL is the host (http://host:8081); a trailing /api/v1 is tolerated.
        base = config.base_url.rstrip("/").removesuffix("/api/v1")
        client = clients.build(base, headers={"X-API-Key": config.credential("api_key")},
                               timeout=config.timeout_seconds)
        return cls(config, Upstream(client, config.name, read_error))

    def _zone_path(self, zone_id: str) -> str:
        return f"{self.server}/zones/{quote(zone_id, safe='.=')}"

    async def check_health(self) -> None:
        body = await self.api.json("GET", self.server)
        expect(isinstance(body, dict) and "id" in body, self.name, "server object")

    # -- reads --------------------------------------------------------------------------------
    async def list_zones(self, *, with_records: bool) -> list[DnsZoneRecord]:
        rows = await self.api.json("GET", f"{self.server}/zones")
        expect(isinstance(rows, list), self.name, "zone list")
        if not with_records:
            return [self._zone(row) for row in rows]
        found = await asyncio.gather(*(self._find_zone(str(row.get("id"))) for row in rows
                                       if isinstance(row, dict)))
        return [zone for zone in found if zone is not None]  # deleted between the two calls

    async def get_zones(self, ids: Sequence[str]) -> dict[str, DnsZoneRecord]:
        found = await asyncio.gather(*(self._find_zone(zid) for zid in dict.fromkeys(ids)))
        return {zone.id: zone for zone in found if zone is not None}

    async def _find_zone(self, zone_id: str) -> DnsZoneRecord | None:
        try:
            return self._zone(await self._zone_body(zone_id))
        except NotFound:
            return None

    async def _zone_body(self, zone_id: str) -> dict[str, Any]:
        async with self._per_zone:
            body = await self.api.json("GET", self._zone_path(zone_id),
                                       params={"rrsets": "true"})
        expect(isinstance(body, dict) and isinstance(body.get("rrsets"), list), self.name,
               "zone with rrsets")
        return dict(body)

    def _zone(self, row: Any) -> DnsZoneRecord:
        expect(isinstance(row, dict) and "id" in row and "name" in row, self.name, "zone")
        name = str(row["name"]).rstrip(".").lower()
        records = None
        nameservers: list[str] = []
        if isinstance(row.get("rrsets"), list):
            records = [rec for rrset in row["rrsets"] for rec in self._records(rrset)]
            nameservers = [r.content for r in records if r.type == "NS" and r.name == name]
        kind = row.get("kind") if isinstance(row.get("kind"), str) else None
        return DnsZoneRecord(
            connection=self.name, id=str(row["id"]), name=name,
            status=zone_status(kind, row.get("serial")), raw_status=kind,
            nameservers=nameservers, records=records, account_id=row.get("account") or None,
        )

    def _records(self, rrset: Any) -> list[DnsResourceRecord]:
        expect(isinstance(rrset, dict) and {"name", "type"} <= rrset.keys(), self.name,
               "rrset")
        out = []
        for entry in rrset.get("records") or []:
            expect(isinstance(entry, dict) and "content" in entry, self.name, "rrset record")
            rtype, raw = str(rrset["type"]), str(entry["content"])
            out.append(self._record(str(rrset["name"]), rtype, raw,
                                    rrset.get("ttl") if isinstance(rrset.get("ttl"), int)
                                    else None, entry.get("disabled") is True))
        return out

    @staticmethod
    def _record(name: str, rtype: str, raw: str, ttl: int | None,
                disabled: bool) -> DnsResourceRecord:
        content, priority = split_content(rtype, raw)
        return DnsResourceRecord(
            id=record_id(name, rtype, raw), type=rtype, name=name.rstrip(".").lower(),
            content=content, ttl=ttl, priority=priority, disabled=disabled,
            txt_strings=text_strings(raw) if rtype in TEXT_TYPES else None)

    # -- writes -------------------------------------------------------------------------------
    async def create_zone(self, name: str, account_id: str | None) -> DnsZoneRecord:
        zone = name.strip().rstrip(".").lower()
        body = await self.api.json("POST", f"{self.server}/zones", json={
            "name": f"{zone}.", "kind": self.zone_kind, "account": account_id or "",
            "nameservers": [ns if ns.endswith(".") else f"{ns}." for ns in self.nameservers],
        })
        return self._zone(body)

    async def delete_zone(self, zone_id: str) -> None:
        await self.api.request("DELETE", self._zone_path(zone_id))

    async def upsert_record(self, zone_id: str, record: DnsRecordInput) -> DnsResourceRecord:
        return (await self.apply_changes(zone_id, upserts=[record]))[0]

    async def delete_record(self, zone_id: str, record_id: str) -> None:
        await self.apply_changes(zone_id, deletes=[record_id])

    async def apply_changes(
        self, zone_id: str, *, upserts: Sequence[DnsRecordInput] = (),
        deletes: Sequence[str] = (),
    ) -> list[DnsResourceRecord]:
        """Any number of record changes: one GET of the zone, then one PATCH of the rrsets.

        The GET and PATCH run under this zone's lock, so concurrent writers in this process
        cannot overwrite each other's entries (see the module docstring).
        """
        async with self._writing[zone_id.rstrip(".").lower()]:
            return await self._apply_changes(zone_id, upserts, deletes)

    async def _apply_changes(self, zone_id: str, upserts: Sequence[DnsRecordInput],
                             deletes: Sequence[str]) -> list[DnsResourceRecord]:
        zone = await self._zone_body(zone_id)
        sets = {(str(r["name"]).lower(), str(r["type"])): _RRset(
            str(r["name"]).lower(), str(r["type"]), int(r.get("ttl") or DEFAULT_TTL),
            [_Entry(str(e["content"]), e.get("disabled") is True)
             for e in r.get("records") or []]) for r in zone["rrsets"]}
        for rid in deletes:
            self._remove(sets, rid)
        written = [self._put(sets, str(zone["name"]), rec) for rec in upserts]
        changed = [s for s in sets.values() if s.changed]
        if changed:
            # ws-auth.cc patchZone @20096dc7: all rrsets in one backend transaction.
            await self.api.request("PATCH", self._zone_path(zone_id), json={"rrsets": [
                {"name": s.name, "type": s.type, "ttl": s.ttl, "changetype": "REPLACE",
                 "records": [{"content": e.content, "disabled": e.disabled}
                             for e in s.entries]}
                if s.entries else {"name": s.name, "type": s.type, "changetype": "DELETE"}
                for s in changed]})
        return written

    def _remove(self, sets: dict[tuple[str, str], _RRset], rid: str) -> tuple[_RRset, _Entry]:
        for rrset in sets.values():
            for entry in rrset.entries:
                if record_id(rrset.name, rrset.type, entry.content) == rid:
                    rrset.entries.remove(entry)
                    rrset.changed = True
                    return rrset, entry
        raise NotFound("DNS record not found", provider=self.name)

    def _put(self, sets: dict[tuple[str, str], _RRset], zone: str,
             record: DnsRecordInput) -> DnsResourceRecord:
        rtype = record.type.upper()
        try:
            name = absolute(record.name, zone)
        except OutOfZone as exc:
            raise InvalidRequest(str(exc), provider=self.name,
                                 fields={"name": "outside the zone"}) from None
        old: _Entry | None = None
        old_ttl = None
        if record.id is not None:
            old_set, old = self._remove(sets, record.id)
            old_ttl = old_set.ttl
        rrset = sets.setdefault((name, rtype), _RRset(name, rtype, old_ttl or DEFAULT_TTL))
        content = join_content(rtype, record.content, record.priority, record.txt_strings)
        if rtype in TEXT_TYPES and record.txt_strings is None:
            # The same text as an entry already has (e.g. a TTL-only update of a DKIM key that
            # is split into several strings) keeps that entry's strings as they are.
            wanted = text_value(content)
            same = [e.content for e in [old, *rrset.entries]
                    if e is not None and text_value(e.content) == wanted]
            content = same[0] if same else content
        if rtype == "CNAME":
            rrset.entries.clear()  # a CNAME rrset holds one record: an upsert replaces it
        entry = next((e for e in rrset.entries if e.content == content), None)
        if entry is None:
            entry = _Entry(content, old.disabled if old is not None else False)
            rrset.entries.append(entry)
        rrset.ttl = record.ttl or rrset.ttl
        rrset.changed = True
        return self._record(name, rtype, content, rrset.ttl, entry.disabled)

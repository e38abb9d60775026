"""DirectAdmin DNS: every user domain is a zone, edited through ``CMD_API_DNS_CONTROL``.

Zone ids are ``<user>/<domain>``: DNS_CONTROL only works for a domain's owner (we call it as
``admin|owner``), so the id carries the owner and no lookup is needed to reach a zone. Record
ids are ``type=A&name=www&value=1.2.3.4``: DirectAdmin has no record ids and deletes records by
type, name and value.

Names: DirectAdmin stores names relative to the zone (``www``) or fully qualified with a dot
(``example.com.``). Records are shown fully qualified without the dot (``www.example.com``);
inputs may use any of ``@``, ``www``, ``www.example.com`` or ``www.example.com.``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from panelql.domain.records import DnsRecordInput, DnsResourceRecord, DnsZoneRecord
from panelql.domain.status import DnsZoneStatus
from panelql.providers.contract import DnsProvider
from panelql.providers.directadmin import wire
from panelql.providers.directadmin.client import DirectAdminBase
from panelql.providers.errors import InvalidRequest, NotFound
from panelql.providers.http import expect

# Types whose value starts with a priority ("10 mail.example.com.").
PRIORITY_TYPES = frozenset({"MX", "SRV"})

Stale = tuple[str, str, str]  # (type, DirectAdmin name, DirectAdmin value)


def split_zone_id(zone_id: str) -> tuple[str, str]:
    user, sep, domain = zone_id.partition("/")
    if not sep or not user or not domain:
        raise InvalidRequest(f"{zone_id!r} is not a DirectAdmin zone id")
    return user, domain


def fqdn(name: str, domain: str) -> str:
    if name.endswith("."):
        return name[:-1]
    if name in ("", "@"):
        return domain
    return f"{name}.{domain}"


def da_name(name: str, domain: str) -> str:
    """The name as DirectAdmin stores it: apex ``example.com.``, others relative."""
    bare = name.rstrip(".")
    if bare in ("", "@", domain):
        return f"{domain}."
    if bare.endswith(f".{domain}"):
        return bare[: -len(domain) - 1]
    return name  # relative, or a name outside the zone given with its trailing dot


class DirectAdminDns(DirectAdminBase, DnsProvider):
    async def list_zones(self, *, with_records: bool) -> list[DnsZoneRecord]:
        users = await self._user_names()
        domains = await asyncio.gather(*(self._user_domains(u) for u in users))
        refs = [(user, domain) for user, owned in zip(users, domains, strict=True)
                for domain in owned]
        if not with_records:
            return [self._zone(user, domain, None) for user, domain in refs]
        records = await asyncio.gather(*(self._zone_records(u, d) for u, d in refs))
        return [self._zone(u, d, r) for (u, d), r in zip(refs, records, strict=True)]

    async def get_zones(self, ids: Sequence[str]) -> Mapping[str, DnsZoneRecord]:
        # The id names the owner, so only the requested zones are read: one call each.
        refs = [(zid, *split_zone_id(zid)) for zid in dict.fromkeys(ids) if "/" in zid]
        found = await asyncio.gather(*(self._find_zone(u, d) for _, u, d in refs))
        return {zid: zone for (zid, _, _), zone in zip(refs, found, strict=True)
                if zone is not None}

    async def _find_zone(self, user: str, domain: str) -> DnsZoneRecord | None:
        try:
            return self._zone(user, domain, await self._zone_records(user, domain))
        except NotFound:
            return None

    def _zone(self, user: str, domain: str,
              records: list[DnsResourceRecord] | None) -> DnsZoneRecord:
        nameservers = [r.content.rstrip(".") for r in records or []
                       if r.type == "NS" and r.name == domain]
        return DnsZoneRecord(
            connection=self.name, id=f"{user}/{domain}", name=domain,
            status=DnsZoneStatus.ACTIVE, raw_status=None, nameservers=nameservers,
            records=records, account_id=user,
        )

    async def _zone_records(self, user: str, domain: str) -> list[DnsResourceRecord]:
        async with self._per_user:
            body = await self._call("DNS_CONTROL", params={"domain": domain}, as_user=user,
                                    raw=True)
        if isinstance(body, str):
            rows: Any = wire.parse_zone_text(body)
        else:
            expect(isinstance(body, dict) and isinstance(body.get("records"), list),
                   self.name, "zone")
            rows = body["records"]
        return [self._dns_record(row, domain) for row in rows if _editable(row)]

    def _dns_record(self, row: Any, domain: str) -> DnsResourceRecord:
        expect(isinstance(row, dict) and isinstance(row.get("type"), str)
               and isinstance(row.get("name"), str), self.name, "DNS record")
        rtype, name, value = row["type"].upper(), row["name"], str(row.get("value", ""))
        content, priority = value, None
        head, _, tail = value.partition(" ")
        if rtype in PRIORITY_TYPES and head.isdigit() and tail:
            content, priority = tail, int(head)
        ttl = str(row.get("ttl") or "")
        return DnsResourceRecord(
            id=wire.record_key(rtype, name, value), type=rtype, name=fqdn(name, domain),
            content=content, ttl=int(ttl) if ttl.isdigit() else None, priority=priority,
        )

    # -- writes -------------------------------------------------------------------------------
    async def create_zone(self, name: str, account_id: str | None) -> DnsZoneRecord:
        if not account_id:
            raise InvalidRequest("a DirectAdmin zone is a domain and needs its owner account",
                                 provider=self.name)
        domain = name.rstrip(".").lower()
        await self._post("DOMAIN", {"action": "create", "domain": domain,
                                    "ubandwidth": "unlimited", "uquota": "unlimited",
                                    "ssl": "ON", "cgi": "ON", "php": "ON"}, as_user=account_id)
        return self._zone(account_id, domain, await self._zone_records(account_id, domain))

    async def delete_zone(self, zone_id: str) -> None:
        user, domain = split_zone_id(zone_id)
        await self._post("DOMAIN", {"action": "select", "confirmed": "Confirm",
                                    "delete": "yes", "select0": domain}, as_user=user)

    async def upsert_record(self, zone_id: str, record: DnsRecordInput) -> DnsResourceRecord:
        user, domain = split_zone_id(zone_id)
        rtype = record.type.upper()
        name = da_name(record.name, domain)
        value = record.content
        if rtype in PRIORITY_TYPES and record.priority is not None:
            value = f"{record.priority} {record.content}"
        stale = await self._stale(user, domain, record, rtype, name)
        same = (rtype, name, value) in stale
        if same and record.ttl is None:
            stale.remove((rtype, name, value))  # identical record already there: nothing to do
        elif same:
            # DirectAdmin deletes by name+value, so a TTL change must delete before adding.
            await self._delete(user, domain, stale)
            stale = []
        if not same or record.ttl is not None:
            await self._add(user, domain, rtype, name, value, record.ttl)
        if stale:
            await self._delete(user, domain, stale)
        return self._dns_record({"type": rtype, "name": name, "value": value,
                             "ttl": record.ttl}, domain)

    async def _stale(self, user: str, domain: str, record: DnsRecordInput, rtype: str,
                     name: str) -> list[Stale]:
        """What the upsert replaces: the record named by id, or all of the same name+type.

        The zone is read first either way, so a stale id fails before anything is written.
        """
        existing = await self._zone_records(user, domain)
        if record.id:
            if record.id not in {r.id for r in existing}:
                raise NotFound("no such DNS record in the zone", provider=self.name)
            return [wire.parse_record_key(record.id)]
        wanted = fqdn(name, domain)
        return [wire.parse_record_key(r.id) for r in existing
                if r.type == rtype and r.name == wanted]

    async def _add(self, user: str, domain: str, rtype: str, name: str, value: str,
                   ttl: int | None) -> None:
        data = {"domain": domain, "action": "add", "type": rtype, "name": name, "value": value}
        if ttl is not None:
            data["ttl"] = str(ttl)
        await self._post("DNS_CONTROL", data, as_user=user)

    async def delete_record(self, zone_id: str, record_id: str) -> None:
        user, domain = split_zone_id(zone_id)
        await self._delete(user, domain, [wire.parse_record_key(record_id)])

    async def _delete(self, user: str, domain: str, records: list[Stale]) -> None:
        """One ``action=select`` call removes them all (``arecs0``, ``arecs1``, ``txtrecs0``…)."""
        data = {"domain": domain, "action": "select"}
        counters: dict[str, int] = {}
        for rtype, name, value in records:
            index = counters.get(rtype, 0)
            counters[rtype] = index + 1
            data[f"{rtype.lower()}recs{index}"] = f"name={name}&value={value}"
        await self._post("DNS_CONTROL", data, as_user=user)


def _editable(row: Any) -> bool:
    return not (isinstance(row, dict) and str(row.get("type", "")).upper() == "SOA")

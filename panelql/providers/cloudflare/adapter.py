"""Cloudflare v4 adapter: zones and DNS records, with batch writes.

Batching: zones come 50 a page. How many pages there are comes from ``result_info``'s
``total_count`` and ``per_page`` (the fields cloudflare-v4.openapi.json @65061ff9 defines in
``dns-records_result_info``/``zones_result_info``: count, page, per_page, total_count; not
``total_pages``), and the rest are fetched concurrently; without ``total_count``, pages are read
one after another until one comes back short. Records have no cross-zone list, so
``with_records`` costs one call per zone (pages of 5,000 records), run with bounded concurrency.
``apply_changes`` sends many record changes to ``POST /zones/{id}/dns_records/batch``, one call
(one DB transaction) per 200 changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Self

import httpx

from panelql.domain.records import DnsRecordInput, DnsResourceRecord, DnsZoneRecord
from panelql.domain.status import DnsZoneStatus, map_status
from panelql.providers.bounded import Bounded
from panelql.providers.cloudflare.mapping import ZONE_STATUS, error_class
from panelql.providers.cloudflare.records import (
    STRUCTURED,
    TOP_PRIORITY,
    from_data,
    priority_of,
    to_data,
)
from panelql.providers.config import ConnectionConfig
from panelql.providers.contract import Capability, DnsProvider, Family
from panelql.providers.errors import (
    AuthenticationFailed,
    InvalidRequest,
    NotFound,
    ProviderError,
    RateLimited,
)
from panelql.providers.http import ClientFactory, Upstream, error_for_status, expect
from panelql.providers.retry_after import retry_after

DEFAULT_BASE = "https://api.cloudflare.com/client/v4"
ZONES_PAGE = 50  # the zones list caps per_page at 50
RECORDS_PAGE = 5000
BATCH_LIMIT = 200  # records per batch on the Free plan; paid plans allow more (option)
CONCURRENCY = 8
AUTO_TTL = 1


def read_error(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        messages = [str(e.get("message")) for e in body["errors"]
                    if isinstance(e, dict) and e.get("message")]
        return "; ".join(messages) or None
    return None


def _codes(body: Any) -> list[int]:
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return []
    return [e["code"] for e in body["errors"] if isinstance(e, dict)
            and isinstance(e.get("code"), int)]


class CloudflareUpstream(Upstream):
    """The shared boundary, refined by Cloudflare's ``errors[].code`` table."""

    def failure(self, response: httpx.Response, body: Any) -> ProviderError:
        message = read_error(body)
        codes = _codes(body)
        fallback = error_for_status(response, body, message, self.provider)
        cls = error_class(codes)
        if cls is None or isinstance(fallback, cls):
            fallback.debug["codes"] = codes
            return fallback
        kwargs_: dict[str, Any] = {"provider": self.provider, "upstream_status":
                                   response.status_code,
                                   "debug": {**fallback.debug, "codes": codes}}
        if cls is RateLimited:
            return RateLimited(f"{self.provider} is rate limiting the gateway",
                               retry_after=retry_after(response.headers), **kwargs_)
        if cls is AuthenticationFailed:
            return AuthenticationFailed(f"{self.provider} rejected the gateway's credentials",
                                        **kwargs_)
        return cls(message or f"{self.provider} answered HTTP {response.status_code}", **kwargs_)


def _number(value: Any) -> int | None:
    """result_info numbers are JSON numbers ("type": "number"), so 50.0 is 50."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return int(value) or None


class CloudflareProvider(DnsProvider):
    kind = "cloudflare"
    families = frozenset({Family.DNS})
    capabilities = frozenset(
        {Capability.DNS_READ, Capability.DNS_ZONE_WRITE, Capability.DNS_RECORD_WRITE}
    )

    def __init__(self, config: ConnectionConfig, upstream: Upstream) -> None:
        super().__init__(config)
        self.api = upstream
        self.account_id: str | None = config.options.get("account_id")
        self.batch_limit = int(config.options.get("batch_limit", BATCH_LIMIT))
        self._per_zone = Bounded(CONCURRENCY)
        self._zone_names: dict[str, str] = {}  # zone id → name; a zone's name never changes

    @classmethod
    def from_config(cls, config: ConnectionConfig, clients: ClientFactory) -> Self:
        client = clients.build(
            (config.base_url or DEFAULT_BASE).rstrip("/"),
            headers={"Authorization": f"Bearer {config.credential('api_token')}"},
            timeout=config.timeout_seconds,
        )
        return cls(config, CloudflareUpstream(client, config.name, read_error))

    async def _envelope(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body = await self.api.json(method, path, **kwargs)
        expect(isinstance(body, dict) and body.get("success") is True and "result" in body,
               self.name, "envelope")
        return dict(body)

    async def check_health(self) -> None:
        await self._envelope("GET", "/zones", params={"per_page": 5})

    # -- reads --------------------------------------------------------------------------------
    async def list_zones(self, *, with_records: bool) -> list[DnsZoneRecord]:
        rows = await self._all_pages("/zones", ZONES_PAGE)
        zones = [self._zone(row) for row in rows]
        if with_records:
            records = await asyncio.gather(*(self._records(z.id) for z in zones))
            for zone, recs in zip(zones, records, strict=True):
                zone.records = recs
        return zones

    async def get_zones(self, ids: Sequence[str]) -> dict[str, DnsZoneRecord]:
        found = await asyncio.gather(*(self._find_zone(zid) for zid in dict.fromkeys(ids)))
        return {zone.id: zone for zone in found if zone is not None}

    async def _find_zone(self, zone_id: str) -> DnsZoneRecord | None:
        if not zone_id.isalnum():
            return None
        try:
            async with self._per_zone:
                body = await self._envelope("GET", f"/zones/{zone_id}")
            zone = self._zone(body["result"])
            zone.records = await self._records(zone_id)
        except NotFound:
            return None
        return zone

    async def _all_pages(self, path: str, per_page: int, **params: Any) -> list[Any]:
        async def page(number: int) -> dict[str, Any]:
            # The semaphore bounds concurrent calls (pages of every zone), never nested.
            async with self._per_zone:
                body = await self._envelope("GET", path, params={**params, "page": number,
                                                                 "per_page": per_page})
            expect(isinstance(body["result"], list), self.name, "list result")
            return body

        first = await page(1)
        info = first.get("result_info")
        info = info if isinstance(info, dict) else {}
        size = _number(info.get("per_page")) or per_page
        total = _number(info.get("total_count"))
        bodies = [first]
        if total is not None:
            pages = max(1, -(-total // size))
            bodies += await asyncio.gather(*(page(n) for n in range(2, pages + 1)))
        else:  # no total: read on while pages come back full
            while len(bodies[-1]["result"]) >= size and bodies[-1]["result"]:
                bodies.append(await page(len(bodies) + 1))
        return [row for body in bodies for row in body["result"]]

    async def _records(self, zone_id: str, **filters: str) -> list[DnsResourceRecord]:
        rows = await self._all_pages(f"/zones/{zone_id}/dns_records", RECORDS_PAGE, **filters)
        return [self._record(row) for row in rows]

    def _zone(self, row: Any) -> DnsZoneRecord:
        expect(isinstance(row, dict) and "id" in row and "name" in row, self.name, "zone")
        raw = row.get("status")
        account = row.get("account") if isinstance(row.get("account"), dict) else {}
        self._zone_names[str(row["id"])] = str(row["name"])
        return DnsZoneRecord(
            connection=self.name, id=str(row["id"]), name=str(row["name"]).lower(),
            status=map_status(ZONE_STATUS, raw, DnsZoneStatus.UNKNOWN, source=self.kind),
            raw_status=raw, nameservers=[str(ns) for ns in row.get("name_servers") or []],
            account_id=account.get("id"),
        )

    def _record(self, row: Any) -> DnsResourceRecord:
        expect(isinstance(row, dict) and {"id", "type", "name"} <= row.keys(), self.name,
               "DNS record")
        ttl, rtype = row.get("ttl"), str(row["type"])
        return DnsResourceRecord(
            id=str(row["id"]), type=rtype, name=str(row["name"]).lower(),
            content=from_data(rtype, row.get("data"), str(row.get("content") or "")),
            ttl=None if ttl == AUTO_TTL or not isinstance(ttl, int | float) else int(ttl),
            priority=priority_of(rtype, row),
        )

    # -- writes -------------------------------------------------------------------------------
    async def create_zone(self, name: str, account_id: str | None) -> DnsZoneRecord:
        account = account_id or self.account_id
        if not account:
            raise InvalidRequest("Cloudflare needs an account id to create a zone",
                                 provider=self.name, fields={"account": "required"})
        body = await self._envelope("POST", "/zones", json={
            "name": name.strip().rstrip(".").lower(), "account": {"id": account},
            "type": "full"})
        zone = self._zone(body["result"])
        zone.records = []
        return zone

    async def delete_zone(self, zone_id: str) -> None:
        await self._envelope("DELETE", f"/zones/{zone_id}")
        self._zone_names.pop(zone_id, None)

    async def upsert_record(self, zone_id: str, record: DnsRecordInput) -> DnsResourceRecord:
        if record.id is not None:
            body = await self._envelope("PATCH", f"/zones/{zone_id}/dns_records/{record.id}",
                                        json=self._body(record))
            return self._record(body["result"])
        fqdn = await self._fqdn(zone_id, record.name)
        same = await self._records(zone_id, type=record.type.upper(), name=fqdn)
        shown = self._record({"id": "-", "type": record.type.upper(), "name": fqdn,
                              **self._body(record)}).content
        match = next((r for r in same if r.content == shown or r.type == "CNAME"), None)
        wanted = DnsRecordInput(record.type, fqdn, record.content, record.ttl, record.priority)
        if match is not None:
            body = await self._envelope("PATCH", f"/zones/{zone_id}/dns_records/{match.id}",
                                        json=self._body(wanted))
        else:
            body = await self._envelope("POST", f"/zones/{zone_id}/dns_records",
                                        json=self._body(wanted))
        return self._record(body["result"])

    async def delete_record(self, zone_id: str, record_id: str) -> None:
        # cloudflare-v4.openapi.json @65061ff9, delete-dns-record: the 200 answer is
        # {"result": {"id": …}}, without the success flag of the other envelopes.
        body = await self.api.json("DELETE", f"/zones/{zone_id}/dns_records/{record_id}")
        result = body.get("result") if isinstance(body, dict) else None
        expect(isinstance(result, dict) and result.get("id") == record_id
               and body.get("success") is not False, self.name, "deleted record id")

    async def apply_changes(
        self, zone_id: str, *, upserts: Sequence[DnsRecordInput] = (),
        deletes: Sequence[str] = (),
    ) -> list[DnsResourceRecord]:
        """Many record changes through ``/dns_records/batch``: inputs with an id are patched,
        the others created; deletes run first. One call per ``batch_limit`` changes."""
        changes: list[tuple[str, dict[str, Any]]] = [("deletes", {"id": rid}) for rid in deletes]
        for rec in upserts:
            body = self._body(rec)
            changes.append(("patches", {**body, "id": rec.id}) if rec.id else ("posts", body))
        written: list[DnsResourceRecord] = []
        for start in range(0, len(changes), self.batch_limit):
            payload: dict[str, list[dict[str, Any]]] = {
                "deletes": [], "patches": [], "puts": [], "posts": []}
            for key, item in changes[start:start + self.batch_limit]:
                payload[key].append(item)
            result = (await self._envelope("POST", f"/zones/{zone_id}/dns_records/batch",
                                           json=payload))["result"]
            expect(isinstance(result, dict), self.name, "batch result")
            for key in ("patches", "puts", "posts"):
                written.extend(self._record(row) for row in result.get(key) or [])
        return written

    async def _fqdn(self, zone_id: str, name: str) -> str:
        zone = self._zone_names.get(zone_id)
        if zone is None:
            zone = self._zone((await self._envelope("GET", f"/zones/{zone_id}"))["result"]).name
        name = name.strip().rstrip(".").lower()
        if name in ("", "@") or name == zone or name.endswith(f".{zone}"):
            return name if name not in ("", "@") else zone
        return f"{name}.{zone}"

    def _body(self, record: DnsRecordInput) -> dict[str, Any]:
        rtype = record.type.upper()
        body: dict[str, Any] = {"type": rtype, "name": record.name.rstrip("."),
                                "ttl": record.ttl or AUTO_TTL}
        if rtype in STRUCTURED:
            try:
                body["data"] = to_data(rtype, record.content, record.priority)
            except InvalidRequest as exc:
                raise exc.with_provider(self.name) from None
        else:
            body["content"] = record.content
        if rtype in TOP_PRIORITY or (rtype not in STRUCTURED and record.priority is not None):
            body["priority"] = record.priority if record.priority is not None else 10
        return body


"""Simulated Cloudflare API v4 (zones and DNS records), per cloudflare/api-schemas
``openapi.json`` @65061ff9.

Speaks the v4 envelope (``success``/``errors``/``messages``/``result``/``result_info``), Bearer
tokens, ``page``/``per_page`` paging (zones capped at 50 a page), the record batch endpoint
(deletes → patches → puts → posts in one transaction) and Cloudflare's error codes. Over the
``rate_limit_per_minute`` knob it answers the real 429 body with ``Retry-After`` and ``Ratelimit``
headers. New zones start ``pending`` and turn ``active`` after ``transition_seconds``.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from panelql_sim import referee
from panelql_sim.framework import Knobs, SimPanel, iso, json_body

PREFIX = "/client/v4"
# Types whose parts are given as "data"; "content" is then read-only and formatted by Cloudflare
# (cloudflare-v4.openapi.json @65061ff9, dns-records_<TYPE>Record: required [type, name, data]).
DATA_FIELDS: dict[str, tuple[str, ...]] = {
    "CAA": ("flags", "tag", "value"),
    "CERT": ("type", "key_tag", "algorithm", "certificate"),
    "DNSKEY": ("flags", "protocol", "algorithm", "public_key"),
    "DS": ("key_tag", "algorithm", "digest_type", "digest"),
    "HTTPS": ("priority", "target", "value"),
    "LOC": ("lat_degrees", "lat_minutes", "lat_seconds", "lat_direction", "long_degrees",
            "long_minutes", "long_seconds", "long_direction", "altitude", "size",
            "precision_horz", "precision_vert"),
    "NAPTR": ("order", "preference", "flags", "service", "regex", "replacement"),
    "SMIMEA": ("usage", "selector", "matching_type", "certificate"),
    "SRV": ("priority", "weight", "port", "target"),
    "SSHFP": ("algorithm", "type", "fingerprint"),
    "SVCB": ("priority", "target", "value"),
    "TLSA": ("usage", "selector", "matching_type", "certificate"),
    "URI": ("weight", "target"),
}
RECORD_TYPES = {"A", "AAAA", "CNAME", "MX", "NS", "TXT", "PTR", *DATA_FIELDS}
ZONE_STATES = ["active", "active", "active", "pending", "active", "initializing", "moved",
               "active"]


class CfError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _ok(result: Any, info: dict[str, int] | None = None, status: int = 200) -> Response:
    body: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
    if info is not None:
        body["result_info"] = info
    return JSONResponse(body, status_code=status)


def _fail(status: int, code: int, message: str, headers: dict[str, str] | None = None
          ) -> Response:
    return JSONResponse({"success": False, "errors": [{"code": code, "message": message}],
                         "messages": [], "result": None}, status_code=status, headers=headers)


class CloudflareSim(SimPanel):
    request_id_header = "CF-RAY"
    name = "cloudflare"
    documents = ("cloudflare-v4.openapi.json",)
    document_quirks = referee.Quirks(
        # The batch endpoint is newer than the 2024-08 document.
        undocumented=(PREFIX + r"/zones/[^/]+/dns_records/batch",),
        # The document lists only X-Auth-Email/X-Auth-Key; API tokens work as well.
        bearer_as={"x-auth-email": "referee@example.com", "x-auth-key": "api-token-instead"},
        # DELETEs are documented with a required (empty-schema) JSON body the API ignores.
        optional_body=("DELETE",),
        # Request schemas list read-only fields as required (the README of shared/specs).
        read_only_required=("id", "created_on", "modified_on", "proxiable", "content"),
    )

    def __init__(
        self, *, api_token: str = "cf_demo_token", zones: int = 8,
        account_id: str = "acc0000000000000000000000000demo", seed: int = 1,
        knobs: Knobs | None = None,
    ) -> None:
        super().__init__(seed=seed, knobs=knobs)
        self.api_token = api_token
        self.account_id = account_id
        self.records_page_cap = 5_000_000  # dns-records_per_page maximum in the v4 document
        self.zones: dict[str, dict[str, Any]] = {}
        self.records: dict[str, dict[str, Any]] = {}
        for i in range(zones):
            self._seed_zone(f"brand{i + 1}.example", ZONE_STATES[i % len(ZONE_STATES)], i)

    # -- data ---------------------------------------------------------------------------------
    def _id(self) -> str:
        return f"{self.random.getrandbits(128):032x}"

    def add_zone(self, name: str, status: str = "active") -> dict[str, Any]:
        zid = self._id()
        now = iso(time.time())
        zone = {
            "id": zid, "name": name, "status": status, "paused": False, "type": "full",
            "development_mode": 0,
            "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
            "original_name_servers": ["ns1.registrar.example", "ns2.registrar.example"],
            "original_registrar": None, "original_dnshost": None,
            "modified_on": now, "created_on": now, "activated_on": now if status == "active"
            else None,
            "meta": {"step": 2, "custom_certificate_quota": 0, "page_rule_quota": 3,
                     "phishing_detected": False},
            "owner": {"type": "user"},  # id and email are not nullable in the v4 document
            "account": {"id": self.account_id, "name": "Demo account"},
            "permissions": ["#dns_records:edit", "#dns_records:read", "#zone:read"],
            "plan": {"id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "name": "Free Website",
                     "price": 0, "currency": "USD", "frequency": "", "is_subscribed": False,
                     "can_subscribe": False, "legacy_id": "free", "legacy_discount": False,
                     "externally_managed": False},
        }
        self.zones[zid] = zone
        return zone

    def _seed_zone(self, name: str, status: str, i: int) -> None:
        zid = self.add_zone(name, status)["id"]
        for rtype, rname, content, prio, proxied in [
            ("A", name, f"203.0.113.{20 + i}", None, True),
            ("A", f"www.{name}", f"203.0.113.{20 + i}", None, True),
            ("AAAA", name, f"2001:db8:{i + 1:x}::1", None, True),
            ("CNAME", f"shop.{name}", "shops.myshopify.com", None, False),
            ("MX", name, f"mail.{name}", 10, False),
            ("MX", name, f"mail2.{name}", 20, False),
            ("TXT", name, "v=spf1 include:_spf.example -all", None, False),
            ("NS", f"sub.{name}", "ns1.nodepoint.eu", None, False),
        ]:
            self._store(zid, {"type": rtype, "name": rname, "content": content,
                              "priority": prio, "proxied": proxied,
                              "ttl": 1 if proxied else 3600})

    def _store(self, zid: str, fields: dict[str, Any], rid: str | None = None) -> dict[str, Any]:
        zone = self.zones[zid]
        now = iso(time.time())
        rtype = fields["type"]
        record = {
            "id": rid or self._id(), "zone_id": zid, "zone_name": zone["name"],
            "name": fields["name"], "type": rtype, "content": fields["content"],
            "proxiable": rtype in ("A", "AAAA", "CNAME"),
            "proxied": bool(fields.get("proxied")) and rtype in ("A", "AAAA", "CNAME"),
            "ttl": int(fields.get("ttl") or 1), "locked": False,
            "meta": {"auto_added": False, "managed_by_apps": False,
                     "managed_by_argo_tunnel": False},
            "tags": fields.get("tags") or [], "created_on": now, "modified_on": now,
        }
        if fields.get("comment") is not None:  # not nullable in the v4 document
            record["comment"] = fields["comment"]
        if fields.get("priority") is not None and rtype in ("MX", "URI"):
            record["priority"] = int(fields["priority"])
        if fields.get("data") is not None:
            record["data"] = fields["data"]
        self.records[record["id"]] = record
        return record

    # -- HTTP ---------------------------------------------------------------------------------
    def authorize(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return _fail(400, 6003, "Invalid request headers")
        if auth[len("Bearer "):] != self.api_token:
            return _fail(403, 9109, "Invalid access token")
        return None

    def rate_limited(self, retry_after: int) -> Response:
        return _fail(429, 971, "Please wait and consider throttling your request speed",
                     headers={"Retry-After": str(retry_after),
                              "Ratelimit": f'"default";r=0;t={retry_after}',
                              "Ratelimit-Policy": '"default";q=1200;w=300'})

    def server_error(self) -> Response:
        return _fail(500, 10001, "Internal server error")

    def routes(self) -> list[BaseRoute]:
        z = PREFIX + "/zones/{zid}"
        return [
            Route(PREFIX + "/zones", self.list_zones, methods=["GET"]),
            Route(PREFIX + "/zones", self.create_zone, methods=["POST"]),
            Route(z, self.get_zone, methods=["GET"]),
            Route(z, self.delete_zone, methods=["DELETE"]),
            Route(z + "/dns_records", self.list_records, methods=["GET"]),
            Route(z + "/dns_records", self.create_record, methods=["POST"]),
            Route(z + "/dns_records/batch", self.batch, methods=["POST"]),
            Route(z + "/dns_records/{rid}", self.get_record, methods=["GET"]),
            Route(z + "/dns_records/{rid}", self.update_record, methods=["PUT", "PATCH"]),
            Route(z + "/dns_records/{rid}", self.delete_record, methods=["DELETE"]),
        ]

    def _zone(self, request: Request) -> dict[str, Any]:
        zone = self.zones.get(request.path_params["zid"])
        if zone is None:
            raise CfError(404, 7003, f"Could not route to {request.url.path}, perhaps your "
                          "object identifier is invalid?")
        return zone

    @staticmethod
    def _page(request: Request, items: list[Any], cap: int) -> Response:
        page = max(1, int(request.query_params.get("page", 1)))
        per_page = min(cap, max(1, int(request.query_params.get("per_page", 20 if cap == 50
                                                                       else 100))))
        chunk = items[(page - 1) * per_page: page * per_page]
        # result_info as the document defines it (count, page, per_page, total_count).
        return _ok(chunk, {"page": page, "per_page": per_page, "count": len(chunk),
                           "total_count": len(items)})

    async def _guard(self, request: Request, handler: Any) -> Response:
        try:
            result: Response = await handler(request)
        except CfError as err:
            return _fail(err.status, err.code, err.message)
        return result

    # zones
    async def list_zones(self, request: Request) -> Response:
        name = request.query_params.get("name")
        status = request.query_params.get("status")
        items = [z for z in self.zones.values()
                 if (name is None or z["name"] == name) and (status is None or
                                                             z["status"] == status)]
        return self._page(request, items, 50)

    async def get_zone(self, request: Request) -> Response:
        return await self._guard(request, self._get_zone)

    async def _get_zone(self, request: Request) -> Response:
        return _ok(self._zone(request))

    async def create_zone(self, request: Request) -> Response:
        body = await json_body(request)
        name = str(body.get("name") or "").lower()
        account = body.get("account")
        account_id = account.get("id") if isinstance(account, dict) else None
        if "." not in name:
            return _fail(400, 1049, f"{name} is not a registered domain")
        if account_id != self.account_id:
            return _fail(403, 9109, "Unauthorized to access requested resource")
        if any(z["name"] == name for z in self.zones.values()):
            return _fail(400, 1061, f"{name} already exists")
        zone = self.add_zone(name, "pending")

        def activate() -> None:
            if zone["status"] == "pending":
                zone["status"], zone["activated_on"] = "active", iso(time.time())
        self.later(activate)
        return _ok(zone)

    async def delete_zone(self, request: Request) -> Response:
        return await self._guard(request, self._delete_zone)

    async def _delete_zone(self, request: Request) -> Response:
        zone = self._zone(request)
        del self.zones[zone["id"]]
        for rid in [rid for rid, r in self.records.items() if r["zone_id"] == zone["id"]]:
            del self.records[rid]
        return _ok({"id": zone["id"]})

    # records
    async def list_records(self, request: Request) -> Response:
        return await self._guard(request, self._list_records)

    async def _list_records(self, request: Request) -> Response:
        zone = self._zone(request)
        q = request.query_params
        items = [r for r in self.records.values() if r["zone_id"] == zone["id"]
                 and all(q.get(k) is None or str(r[k]).lower() == q[k].lower()
                         for k in ("type", "name", "content"))]
        return self._page(request, items, self.records_page_cap)

    async def get_record(self, request: Request) -> Response:
        return await self._guard(request, self._get_record)

    async def _get_record(self, request: Request) -> Response:
        return _ok(self._record(self._zone(request), request.path_params["rid"]))

    def _record(self, zone: dict[str, Any], rid: str) -> dict[str, Any]:
        record = self.records.get(rid)
        if record is None or record["zone_id"] != zone["id"]:
            raise CfError(404, 81044, "Record does not exist.")
        return record

    def _clean(self, zone: dict[str, Any], fields: dict[str, Any],
               exclude: str | None) -> dict[str, Any]:
        rtype = str(fields.get("type") or "").upper()
        if rtype not in RECORD_TYPES:
            raise CfError(400, 9020, "Invalid DNS record type")
        name = str(fields.get("name") or "").rstrip(".").lower()
        zname = zone["name"]
        if name in ("", "@"):
            name = zname
        elif name != zname and not name.endswith(f".{zname}"):
            name = f"{name}.{zname}"
        content = str(fields.get("content") or "")
        data = fields.get("data")
        if rtype in DATA_FIELDS:
            wanted = DATA_FIELDS[rtype]
            if not isinstance(data, dict) or any(data.get(k) is None for k in wanted
                                                 if k not in ("value", "size",
                                                              "precision_horz",
                                                              "precision_vert")):
                raise CfError(400, 1004, f"DNS Validation Error: {rtype} records need data "
                              f"with {', '.join(wanted)}")
            content = self._formatted(rtype, data)
            if rtype == "URI" and fields.get("priority") is None:
                raise CfError(400, 1004, "DNS Validation Error: URI records need a priority")
        else:
            data = None
            if rtype == "MX" and fields.get("priority") is None:
                raise CfError(400, 1004, "DNS Validation Error: MX records need a priority")
        if rtype in ("A", "AAAA"):
            try:
                ok = ipaddress.ip_address(content).version == (4 if rtype == "A" else 6)
            except ValueError:
                ok = False
            if not ok:
                code = 9005 if rtype == "A" else 9006
                version = "IPv4" if rtype == "A" else "IPv6"
                raise CfError(400, code,
                              f"Content for {rtype} record must be a valid {version} address.")
        ttl = int(fields.get("ttl") or 1)
        if ttl != 1 and not 60 <= ttl <= 86400:  # 30 only on Enterprise zones
            raise CfError(400, 9021, "Invalid TTL. Must be between 60 and 86,400 seconds, "
                          "or 1 for Automatic.")
        for other in self.records.values():
            if other["zone_id"] != zone["id"] or other["id"] == exclude or other["name"] != name:
                continue
            if other["type"] == rtype and other["content"] == content:
                raise CfError(400, 81058, "A record with the same settings already exists.")
            if "CNAME" in (rtype, other["type"]):
                raise CfError(400, 81053,
                              "An A, AAAA, or CNAME record with that host already exists.")
        return {**fields, "type": rtype, "name": name, "content": content, "ttl": ttl,
                "data": data}

    @staticmethod
    def _formatted(rtype: str, data: dict[str, Any]) -> str:
        """Cloudflare's read-only content of a data record (zone-file order of the parts)."""
        if rtype == "CAA":
            return f'{data["flags"]} {data["tag"]} "{data.get("value", "")}"'
        return " ".join(str(data[k]) for k in DATA_FIELDS[rtype] if data.get(k) is not None)

    async def create_record(self, request: Request) -> Response:
        return await self._guard(request, self._create_record)

    async def _create_record(self, request: Request) -> Response:
        zone = self._zone(request)
        fields = self._clean(zone, await json_body(request), None)
        return _ok(self._store(zone["id"], fields))

    async def update_record(self, request: Request) -> Response:
        return await self._guard(request, self._update_record)

    async def _update_record(self, request: Request) -> Response:
        zone = self._zone(request)
        record = self._record(zone, request.path_params["rid"])
        body = await json_body(request)
        merged = {**record, **body} if request.method == "PATCH" else body
        fields = self._clean(zone, merged, record["id"])
        stored = self._store(zone["id"], fields, rid=record["id"])
        stored["created_on"] = record["created_on"]
        return _ok(stored)

    async def delete_record(self, request: Request) -> Response:
        return await self._guard(request, self._delete_record)

    async def _delete_record(self, request: Request) -> Response:
        record = self._record(self._zone(request), request.path_params["rid"])
        del self.records[record["id"]]
        # cloudflare-v4.openapi.json @65061ff9, delete-dns-record 200: {"result": {"id": …}}.
        return JSONResponse({"result": {"id": record["id"]}})

    async def batch(self, request: Request) -> Response:
        return await self._guard(request, self._batch)

    async def _batch(self, request: Request) -> Response:
        """deletes → patches → puts → posts, all or nothing (one DB transaction upstream)."""
        zone = self._zone(request)
        body = await json_body(request)
        ops = {k: list(body.get(k) or []) for k in ("deletes", "patches", "puts", "posts")}
        if sum(len(v) for v in ops.values()) > 200:
            raise CfError(400, 81059, "Batch exceeds the limit of 200 records for this plan.")
        saved = {rid: dict(r) for rid, r in self.records.items()}
        result: dict[str, list[dict[str, Any]]] = {k: [] for k in ops}
        try:
            for item in ops["deletes"]:
                result["deletes"].append(self.records.pop(self._record(zone, item["id"])["id"]))
            for key in ("patches", "puts"):
                for item in ops[key]:
                    record = self._record(zone, item["id"])
                    merged = {**record, **item} if key == "patches" else item
                    fields = self._clean(zone, merged, record["id"])
                    result[key].append(self._store(zone["id"], fields, rid=record["id"]))
            for item in ops["posts"]:
                result["posts"].append(self._store(zone["id"], self._clean(zone, item, None)))
        except CfError:
            self.records = saved
            raise
        return _ok(result)

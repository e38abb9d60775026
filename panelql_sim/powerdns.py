"""Simulated PowerDNS Authoritative HTTP API, per PowerDNS/pdns
``docs/http-api/openapi/authoritative-api-openapi.yaml`` @20096dc7 (the referee validates it).

``X-API-Key`` auth, ``/api/v1/servers/{server_id}`` with the zone list (no rrsets), one zone with
all its rrsets, rrset ``PATCH`` (REPLACE/DELETE as 4.7.3 has them, every entry's ``disabled``
kept, all rrsets validated before any is applied, 204), zone ``POST`` (201) / ``DELETE`` (204),
and ``{"error": …}`` bodies (422 adds an ``errors`` list). Every PATCH bumps the SOA serial, as
``soa_edit_api`` does.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from panelql_sim import referee
from panelql_sim.framework import Knobs, SimPanel, json_body

TYPES = {"SOA", "A", "AAAA", "CNAME", "MX", "NS", "TXT", "SRV", "CAA", "PTR"}
KINDS = ["Native", "Native", "Master", "Native", "Slave", "Native"]


def _error(status: int, message: str, errors: list[str] | None = None) -> Response:
    body: dict[str, Any] = {"error": message}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status)


class PdnsError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _delete_rrsets_complete(body: Any) -> Any:
    """Referee quirk: the document's RRSet requires ttl and records, which a DELETE changetype
    does not carry (and the real server does not want)."""
    if isinstance(body, dict) and isinstance(body.get("rrsets"), list):
        for rrset in body["rrsets"]:
            if isinstance(rrset, dict) and str(rrset.get("changetype", "")).upper() == "DELETE":
                rrset.setdefault("ttl", 0)
                rrset.setdefault("records", [])
    return body


class PowerDNSSim(SimPanel):
    name = "powerdns"
    documents = ("powerdns-authoritative.openapi.yaml",)
    document_quirks = referee.Quirks(request_body=_delete_rrsets_complete)

    def __init__(
        self, *, api_key: str = "pdns_demo_key", server_id: str = "localhost", zones: int = 6,
        seed: int = 1, knobs: Knobs | None = None,
    ) -> None:
        super().__init__(seed=seed, knobs=knobs)
        self.api_key = api_key
        self.server_id = server_id
        self.zones: dict[str, dict[str, Any]] = {}
        for i in range(zones):
            kind = KINDS[i % len(KINDS)]
            fresh_secondary = kind == "Slave" and i % 2 == 0
            self._seed_zone(f"zone{i + 1}.example.", kind, i, empty=fresh_secondary)

    # -- data ---------------------------------------------------------------------------------
    def add_zone(self, name: str, kind: str = "Native", nameservers: list[str] | None = None,
                 account: str = "") -> dict[str, Any]:
        serial = 2024010101
        zone = {
            "id": name, "name": name, "type": "Zone", "url": f"/api/v1/servers/"
            f"{self.server_id}/zones/{name}", "kind": kind, "serial": serial,
            "notified_serial": serial if kind == "Master" else 0, "edited_serial": serial,
            "masters": ["192.0.2.53"] if kind == "Slave" else [], "dnssec": False,
            "nsec3param": "", "nsec3narrow": False, "presigned": False, "soa_edit": "",
            "soa_edit_api": "DEFAULT", "api_rectify": False, "account": account,
            "catalog": "", "last_check": 0,
            "rrsets": [self._rrset(name, "SOA", 3600, [
                f"ns1.nodepoint.eu. hostmaster.{name} {serial} 10800 3600 604800 3600"])],
        }
        for ns in nameservers or []:
            self._extend(zone, name, "NS", 3600, ns)
        self.zones[name] = zone
        return zone

    @staticmethod
    def _rrset(name: str, rtype: str, ttl: int, contents: list[str]) -> dict[str, Any]:
        return {"name": name, "type": rtype, "ttl": ttl, "comments": [],
                "records": [{"content": c, "disabled": False} for c in contents]}

    def _extend(self, zone: dict[str, Any], name: str, rtype: str, ttl: int,
                content: str) -> None:
        for rrset in zone["rrsets"]:
            if rrset["name"] == name and rrset["type"] == rtype:
                rrset["records"].append({"content": content, "disabled": False})
                return
        zone["rrsets"].append(self._rrset(name, rtype, ttl, [content]))

    def _seed_zone(self, name: str, kind: str, i: int, *, empty: bool) -> None:
        zone = self.add_zone(name, kind, ["ns1.nodepoint.eu.", "ns2.nodepoint.eu."],
                             account=f"customer-{1 + i % 3}")
        if empty:  # a secondary that has not transferred yet
            zone["serial"] = zone["edited_serial"] = 0
            zone["rrsets"] = []
            return
        for rname, rtype, content in [
            (name, "A", f"192.0.2.{10 + i}"), (name, "A", f"192.0.2.{110 + i}"),
            (f"www.{name}", "CNAME", name), (name, "AAAA", f"2001:db8::{i + 1:x}"),
            (name, "MX", f"10 mail.{name}"), (name, "MX", f"20 backup-mx.{name}"),
            (name, "TXT", '"v=spf1 a mx -all"'), (f"mail.{name}", "A", f"198.51.100.{i + 1}"),
            (f"_sip._tcp.{name}", "SRV", f"10 5 5060 sip.{name}"),
        ]:
            self._extend(zone, rname, rtype, 3600, content)

    # -- HTTP ---------------------------------------------------------------------------------
    def authorize(self, request: Request) -> Response | None:
        if request.headers.get("x-api-key") != self.api_key:
            return _error(401, "Unauthorized")
        return None

    def routes(self) -> list[BaseRoute]:
        s = "/api/v1/servers/{sid}"
        return [
            Route("/api/v1/servers", self.list_servers, methods=["GET"]),
            Route(s, self.get_server, methods=["GET"]),
            Route(s + "/zones", self.list_zones, methods=["GET"]),
            Route(s + "/zones", self.create_zone, methods=["POST"]),
            Route(s + "/zones/{zid}", self.get_zone, methods=["GET"]),
            Route(s + "/zones/{zid}", self.patch_zone, methods=["PATCH"]),
            Route(s + "/zones/{zid}", self.delete_zone, methods=["DELETE"]),
        ]

    def _server_json(self) -> dict[str, Any]:
        base = f"/api/v1/servers/{self.server_id}"
        return {"type": "Server", "id": self.server_id, "daemon_type": "authoritative",
                "version": "4.7.3", "url": base, "config_url": base + "/config{/config_setting}",
                "zones_url": base + "/zones{/zone}"}

    def _check_server(self, request: Request) -> Response | None:
        if request.path_params["sid"] != self.server_id:
            return _error(404, "Not Found")
        return None

    def _zone(self, request: Request) -> dict[str, Any] | Response:
        missing = self._check_server(request)
        if missing is not None:
            return missing
        zid = request.path_params["zid"]
        zone = self.zones.get(zid if zid.endswith(".") else f"{zid}.")
        if zone is None:
            return _error(404, f"Could not find domain '{zid}'")
        return zone

    async def list_servers(self, request: Request) -> Response:
        return JSONResponse([self._server_json()])

    async def get_server(self, request: Request) -> Response:
        return self._check_server(request) or JSONResponse(self._server_json())

    async def list_zones(self, request: Request) -> Response:
        missing = self._check_server(request)
        if missing is not None:
            return missing
        wanted = request.query_params.get("zone")
        return JSONResponse([{k: v for k, v in z.items() if k != "rrsets"}
                             for z in self.zones.values()
                             if wanted is None or z["name"] == wanted])

    async def get_zone(self, request: Request) -> Response:
        zone = self._zone(request)
        if isinstance(zone, Response):
            return zone
        if request.query_params.get("rrsets", "true") == "false":
            return JSONResponse({k: v for k, v in zone.items() if k != "rrsets"})
        return JSONResponse(zone)

    async def create_zone(self, request: Request) -> Response:
        missing = self._check_server(request)
        if missing is not None:
            return missing
        body = await json_body(request)
        name = str(body.get("name") or "").lower()
        if not name.endswith(".") or name.count(".") < 2:
            return _error(422, f"DNS Name '{name}' is not canonical")
        if name in self.zones:
            return _error(409, f"Domain '{name}' already exists")
        kind = str(body.get("kind") or "Native")
        if kind not in ("Native", "Master", "Slave", "Producer", "Consumer"):
            return _error(422, f"ZoneKind '{kind}' unknown")
        zone = self.add_zone(name, kind, [str(ns) for ns in body.get("nameservers") or []],
                             account=str(body.get("account") or ""))
        return JSONResponse(zone, status_code=201)

    async def delete_zone(self, request: Request) -> Response:
        zone = self._zone(request)
        if isinstance(zone, Response):
            return zone
        del self.zones[zone["name"]]
        return Response(status_code=204)

    async def patch_zone(self, request: Request) -> Response:
        zone = self._zone(request)
        if isinstance(zone, Response):
            return zone
        body = await json_body(request)
        rrsets = body.get("rrsets")
        if not isinstance(rrsets, list):
            return _error(400, "No rrsets given in update request")
        try:
            updated = self._apply(zone, rrsets)
        except PdnsError as err:
            return _error(err.status, err.message, [err.message] if err.status == 422 else None)
        zone["rrsets"] = updated
        zone["serial"] = zone["edited_serial"] = int(zone["serial"]) + 1
        return Response(status_code=204)

    def _apply(self, zone: dict[str, Any], changes: list[Any]) -> list[dict[str, Any]]:
        """Validate and apply on a copy, so one bad rrset changes nothing."""
        sets = {(r["name"], r["type"]): r for r in (dict(r) for r in zone["rrsets"])}
        for change in changes:
            if not isinstance(change, dict):
                raise PdnsError(400, "rrset is not an object")
            name, rtype = str(change.get("name", "")), str(change.get("type", ""))
            label = f"RRset {name} IN {rtype}"
            if not name.endswith("."):
                raise PdnsError(422, f"{label}: Name '{name}' is not canonical")
            if name != zone["name"] and not name.endswith(f".{zone['name']}"):
                raise PdnsError(422, f"{label}: Name is out of zone")
            if rtype not in TYPES:
                raise PdnsError(422, f"{label}: unknown type")
            changetype = str(change.get("changetype", "")).upper()
            if changetype == "DELETE":
                sets.pop((name, rtype), None)
                continue
            if changetype != "REPLACE":
                # ws-auth.cc @auth-4.7.3 knows DELETE and REPLACE only (EXTEND/PRUNE came in
                # 4.9.12 and 5.0.2), and this simulator answers as 4.7.3.
                raise PdnsError(422, "Changetype not understood")
            records = [r for r in change.get("records") or [] if isinstance(r, dict)]
            # ws-auth.cc gatherRecords @20096dc7: a missing "disabled" reads as false.
            wanted = {str(r.get("content", "")): r.get("disabled") is True for r in records}
            if len(wanted) != len(records):
                raise PdnsError(422, f"{label}: Duplicate record in RRset")
            for content in wanted:
                self._validate(name, rtype, content)
            ttl = change.get("ttl") or sets.get((name, rtype), {}).get("ttl") or 3600
            if not wanted:
                sets.pop((name, rtype), None)
            else:
                rrset = self._rrset(name, rtype, int(ttl), list(wanted))
                for entry in rrset["records"]:
                    entry["disabled"] = wanted[entry["content"]]
                sets[(name, rtype)] = rrset
        for name, rtype in sets:
            if rtype == "CNAME" and any(n == name and t != "CNAME" for n, t in sets):
                raise PdnsError(422, f"RRset {name} IN CNAME: Conflicts with pre-existing "
                                "RRset")
            if rtype == "CNAME" and len(sets[(name, rtype)]["records"]) > 1:
                raise PdnsError(422, f"RRset {name} IN CNAME has more than one record")
        return list(sets.values())

    @staticmethod
    def _validate(name: str, rtype: str, content: str) -> None:
        problem = f"Record {name}/{rtype} '{content}': Parsing record content (try " \
                  "'pdnsutil check-zone')"
        if rtype in ("A", "AAAA"):
            try:
                ok = ipaddress.ip_address(content).version == (4 if rtype == "A" else 6)
            except ValueError:
                ok = False
            if not ok:
                raise PdnsError(422, f"{problem}: invalid address")
        if rtype in ("CNAME", "NS") and not content.endswith("."):
            raise PdnsError(422, f"{problem}: Not in expected format (parsed as "
                            f"'{content}.{name}')")
        if rtype == "MX" and not content.partition(" ")[0].isdigit():
            raise PdnsError(422, f"{problem}: Data field in DNS should start with a digit")
        if rtype == "TXT" and not (content.startswith('"') and content.endswith('"')):
            raise PdnsError(422, f"{problem}: Data field in DNS should start with quote (\") "
                            "at position 0")

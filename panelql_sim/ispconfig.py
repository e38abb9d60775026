"""Simulated ISPConfig 3 remote JSON API (DNS module).

One endpoint, ``POST /remote/json.php?<method>``, with a JSON object of the PHP parameter names;
every answer is HTTP 200 with ``{"code","message","response"}``. Sessions come from ``login``
and expire (``session_timeout``, 30 minutes as in remoting.inc.php; :meth:`expire_sessions`
ends them at once). ``dns_<type>_get`` with ``primary_id: -1`` returns the whole ``dns_rr`` table,
as the real remoting_lib does. ``GET /dns-query`` is a small DNS-over-HTTPS (JSON) resolver over
``delegations``, so the nameserver verification can run against the demo too.
"""

from __future__ import annotations

import ipaddress
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from panelql_sim.framework import Knobs, SimPanel, json_body

RR_TYPES = ("a", "aaaa", "cname", "mx", "ns", "txt", "srv", "ptr", "alias")
PLATFORM_NS = ("ns1.nodepoint.eu", "ns2.nodepoint.eu")
ALL_FUNCTIONS = frozenset(
    {"dns_zone_get", "dns_zone_get_id", "dns_zone_add", "dns_zone_update", "dns_zone_delete",
     "dns_zone_set_status", "get_function_list"}
    | {f"dns_{t}_{op}" for t in RR_TYPES for op in ("get", "add", "update", "delete")}
)


class Fault(Exception):
    def __init__(self, message: str, code: str = "remote_fault") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _envelope(code: str, message: str, response: Any) -> Response:
    return JSONResponse({"code": code, "message": message, "response": response},
                        media_type='application/x-json; charset="utf-8"')


class ISPConfigSim(SimPanel):
    name = "ispconfig"

    def __init__(
        self, *, username: str = "remote", password: str = "isp_demo_pass", zones: int = 8,
        session_timeout: float = 1800.0, seed: int = 1, knobs: Knobs | None = None,
    ) -> None:
        super().__init__(seed=seed, knobs=knobs)
        self.username = username
        self.password = password
        self.session_timeout = session_timeout
        self.functions: set[str] = set(ALL_FUNCTIONS)  # the remote user's allowed functions
        self.sessions: dict[str, float] = {}
        self.zones: dict[int, dict[str, Any]] = {}
        self.records: dict[int, dict[str, Any]] = {}
        self.delegations: dict[str, list[str]] = {}
        self.resolver_status: int | None = None  # e.g. 2 (SERVFAIL): the resolver cannot tell
        self.logins = 0
        self._seed(zones)

    # -- data ---------------------------------------------------------------------------------
    def _seed(self, zones: int) -> None:
        for i in range(zones):
            origin = f"customer{i + 1}.example"
            zone = self.add_zone(origin, active="N" if i % 5 == 4 else "Y", group=2 + i % 3)
            zid = zone["id"]
            for ns in PLATFORM_NS:
                self.add_record(zid, f"{origin}.", "NS", f"{ns}.")
            self.add_record(zid, f"{origin}.", "A", "203.0.113.10")
            self.add_record(zid, "www", "CNAME", f"{origin}.")
            self.add_record(zid, "ipv6", "AAAA", f"2001:db8::{i + 1:x}")
            self.add_record(zid, f"{origin}.", "MX", f"mail.{origin}.", aux=10)
            self.add_record(zid, "mail", "A", f"198.51.100.{20 + i}")
            self.add_record(zid, f"{origin}.", "TXT", "v=spf1 mx -all")
            # Most customers point at the platform; some at another provider; one not at all.
            if i % 4 != 3:
                self.delegations[origin] = list(PLATFORM_NS)
            elif i % 8 == 3:
                self.delegations[origin] = ["ns1.otherhost.net", "ns2.otherhost.net"]

    def add_zone(self, origin: str, *, active: str = "Y", group: int = 1,
                 server_id: int = 1) -> dict[str, Any]:
        zid = max(self.zones, default=0) + 1
        zone = {
            "id": zid, "sys_userid": 1, "sys_groupid": group, "sys_perm_user": "riud",
            "sys_perm_group": "riud", "sys_perm_other": "", "server_id": server_id,
            "origin": origin if origin.endswith(".") else f"{origin}.",
            "ns": f"{PLATFORM_NS[0]}.", "mbox": f"hostmaster.{origin.rstrip('.')}.",
            "serial": int(time.strftime("%Y%m%d01")), "refresh": 7200, "retry": 540,
            "expire": 604800, "minimum": 3600, "ttl": 3600, "active": active, "xfer": "",
            "also_notify": "", "update_acl": "", "dnssec_initialized": "N",
            "dnssec_wanted": "N", "dnssec_info": "",
        }
        self.zones[zid] = zone
        return zone

    def add_record(self, zone_id: int, name: str, rtype: str, data: str, *, aux: int = 0,
                   ttl: int = 3600) -> dict[str, Any]:
        rid = max(self.records, default=0) + 1
        row = {
            "id": rid, "sys_userid": 1, "sys_groupid": self.zones[zone_id]["sys_groupid"],
            "server_id": self.zones[zone_id]["server_id"], "zone": zone_id, "name": name,
            "type": rtype, "data": data, "aux": aux, "ttl": ttl, "active": "Y",
            "stamp": time.strftime("%Y-%m-%d %H:%M:%S"), "serial": 1,
        }
        self.records[rid] = row
        return row

    def expire_sessions(self) -> None:
        """Every session times out (as after 30 idle minutes)."""
        self.sessions.clear()

    # -- HTTP ---------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return [
            Route("/remote/json.php", self.endpoint, methods=["POST"]),
            Route("/dns-query", self.dns_query, methods=["GET"]),
        ]

    async def endpoint(self, request: Request) -> Response:
        query = request.url.query
        method = query.split("&", 1)[0].split("=", 1)[0] if query else ""
        handler = self._handlers().get(method)
        if handler is None:
            return _envelope("invalid_method", f"Method {method} does not exist", False)
        params = await json_body(request)
        try:
            if method not in ("login", "logout"):
                self._check(params.get("session_id"), method)
            return _envelope("ok", "", handler(params))
        except Fault as fault:
            return _envelope(fault.code, fault.message, False)
        except (KeyError, TypeError, ValueError) as exc:
            return _envelope("invalid_data", f"Invalid or missing parameter: {exc}", False)

    def _check(self, session_id: Any, method: str) -> None:
        if not session_id:
            raise Fault("The SessionID is empty.")
        expires = self.sessions.get(str(session_id))
        if expires is None or expires < time.time():
            self.sessions.pop(str(session_id), None)
            raise Fault("The Session is expired or does not exist.")
        self.sessions[str(session_id)] = time.time() + self.session_timeout
        needed = "dns_zone_get" if method == "dns_rr_get_all_by_zone" else method
        if needed not in self.functions:
            raise Fault("You do not have the permissions to access this function.")

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "login": self.login, "logout": self.logout,
            "get_function_list": lambda p: sorted(self.functions | {"login", "logout"}),
            "dns_zone_get": self.zone_get, "dns_zone_get_id": self.zone_get_id,
            "dns_zone_add": self.zone_add, "dns_zone_update": self.zone_update,
            "dns_zone_delete": self.zone_delete, "dns_zone_set_status": self.zone_set_status,
            "dns_rr_get_all_by_zone": self.rr_get_all_by_zone,
        }
        for rtype in RR_TYPES:
            handlers[f"dns_{rtype}_get"] = lambda p: self._get(self.records, p["primary_id"])
            handlers[f"dns_{rtype}_add"] = self._rr_add(rtype.upper())
            handlers[f"dns_{rtype}_update"] = self._rr_update(rtype.upper())
            handlers[f"dns_{rtype}_delete"] = self._rr_delete
        return handlers

    # -- session ------------------------------------------------------------------------------
    def login(self, params: dict[str, Any]) -> str:
        if not params.get("username"):
            raise Fault("The login username is empty.")
        if not params.get("password"):
            raise Fault("The login password is empty.")
        if params["username"] != self.username or params["password"] != self.password:
            raise Fault("The login failed. Username or password wrong.")
        session = uuid.uuid4().hex
        self.sessions[session] = time.time() + self.session_timeout
        self.logins += 1
        return session

    def logout(self, params: dict[str, Any]) -> bool:
        if not params.get("session_id"):
            raise Fault("The SessionID is empty.")
        return self.sessions.pop(str(params["session_id"]), None) is not None

    # -- zones --------------------------------------------------------------------------------
    def _get(self, table: dict[int, dict[str, Any]], primary_id: Any) -> Any:
        """remoting_lib getDataRecord: id > 0 one row, -1 all rows, an object filters."""
        if isinstance(primary_id, dict):
            offset = int(primary_id.get("#OFFSET#", 0))
            limit = int(primary_id.get("#LIMIT#", 0))
            filters = {k: v for k, v in primary_id.items() if not k.startswith("#")}
            rows = [r for r in table.values()
                    if all(str(r.get(k)) == str(v) for k, v in filters.items())]
            return rows[offset: offset + limit] if limit > 0 else rows
        primary_id = int(primary_id)
        if primary_id == -1:
            return list(table.values())
        if primary_id <= 0:
            raise Fault("The ID has to be > 0 or -1.")
        return table.get(primary_id, [])  # PHP's empty record encodes as []

    def zone_get(self, params: dict[str, Any]) -> Any:
        return self._get(self.zones, params["primary_id"])

    def zone_get_id(self, params: dict[str, Any]) -> int:
        origin = str(params["origin"]).rstrip(".")
        for zone in self.zones.values():
            if zone["origin"].rstrip(".") == origin:
                return int(zone["id"])
        raise Fault("There is no domain ID with informed domain name.")

    def zone_add(self, params: dict[str, Any]) -> int:
        fields = params["params"]
        origin = str(fields.get("origin") or "")
        errors = []
        if not origin:
            errors.append("Zone (SOA) is empty.")
        if any(z["origin"] == (origin if origin.endswith(".") else f"{origin}.")
               for z in self.zones.values()):
            errors.append("There is already a record for this domain.")
        if not fields.get("ns"):
            errors.append("NS is empty.")
        if errors:
            raise Fault("<br />\r\n".join(errors) + "<br />\r\n")
        zone = self.add_zone(origin, active=str(fields.get("active", "Y")),
                             group=1 + int(params.get("client_id") or 0),
                             server_id=int(fields.get("server_id", 1)))
        zone.update({k: v for k, v in fields.items() if k in zone and k not in ("id", "origin")})
        return int(zone["id"])

    def zone_update(self, params: dict[str, Any]) -> int:
        zone = self.zones.get(int(params["primary_id"]))
        if zone is None:
            return 0
        zone.update({k: v for k, v in params["params"].items() if k != "id"})
        return 1

    def zone_delete(self, params: dict[str, Any]) -> int:
        zid = int(params["primary_id"])
        if self.zones.pop(zid, None) is None:
            return 0
        for rid in [rid for rid, r in self.records.items() if r["zone"] == zid]:
            del self.records[rid]
        return 1

    def zone_set_status(self, params: dict[str, Any]) -> int:
        status = params["status"]
        if status not in ("active", "inactive"):
            raise Fault("The status is not available")
        zone = self.zones.get(int(params["primary_id"]))
        if zone is None:
            return 0
        zone["active"] = "Y" if status == "active" else "N"
        return 1

    def rr_get_all_by_zone(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        zid = int(params["zone_id"])
        return [r for r in self.records.values() if r["zone"] == zid]

    # -- records ------------------------------------------------------------------------------
    def _validate(self, rtype: str, fields: dict[str, Any], exclude: int | None) -> None:
        data = str(fields.get("data") or "")
        zone_id = int(fields.get("zone") or 0)
        if zone_id not in self.zones:
            raise Fault("The zone does not exist.<br />\r\n")
        if not data:
            raise Fault("Data is empty.<br />\r\n")
        if rtype in ("A", "AAAA"):
            try:
                address = ipaddress.ip_address(data)
            except ValueError:
                raise Fault("IP-Address format invalid.<br />\r\n") from None
            if address.version != (4 if rtype == "A" else 6):
                raise Fault("IP-Address format invalid.<br />\r\n")
        name = str(fields.get("name") or "")
        for row in self.records.values():
            if row["zone"] != zone_id or row["id"] == exclude or row["name"] != name:
                continue
            if row["type"] == rtype and row["data"] == data:
                raise Fault("Duplicate record: the same name, type and data already exist."
                            "<br />\r\n")
            if "CNAME" in (rtype, row["type"]):
                raise Fault("There is already a record with this name; a CNAME must be alone."
                            "<br />\r\n")

    def _bump_serial(self, params: dict[str, Any], zone_id: int) -> None:
        if params.get("update_serial") and zone_id in self.zones:
            self.zones[zone_id]["serial"] = int(self.zones[zone_id]["serial"]) + 1

    def _rr_add(self, rtype: str) -> Callable[[dict[str, Any]], int]:
        def add(params: dict[str, Any]) -> int:
            fields = dict(params["params"])
            self._validate(rtype, fields, None)
            row = self.add_record(int(fields["zone"]), str(fields.get("name") or ""), rtype,
                                  str(fields["data"]), aux=int(fields.get("aux") or 0),
                                  ttl=int(fields.get("ttl") or 3600))
            row["active"] = fields.get("active", "Y")
            self._bump_serial(params, int(fields["zone"]))
            return int(row["id"])
        return add

    def _rr_update(self, rtype: str) -> Callable[[dict[str, Any]], int]:
        def update(params: dict[str, Any]) -> int:
            row = self.records.get(int(params["primary_id"]))
            if row is None:
                return 0
            merged = {**row, **params["params"], "type": rtype}
            self._validate(rtype, merged, int(row["id"]))
            row.update({k: v for k, v in merged.items() if k in row and k != "id"})
            self._bump_serial(params, int(row["zone"]))
            return 1
        return update

    def _rr_delete(self, params: dict[str, Any]) -> int:
        row = self.records.pop(int(params["primary_id"]), None)
        if row is None:
            return 0
        self._bump_serial(params, int(row["zone"]))
        return 1

    # -- DNS-over-HTTPS (JSON) for the nameserver check ---------------------------------------
    async def dns_query(self, request: Request) -> Response:
        name = request.query_params.get("name", "").rstrip(".").lower()
        qtype = request.query_params.get("type", "A").upper()
        delegated = self.delegations.get(name)
        status = 0 if delegated is not None else 3
        body: dict[str, Any] = {"Status": self.resolver_status or status, "TC": False,
                                "RD": True, "RA": True, "AD": False, "CD": False,
                                "Question": [{"name": f"{name}.", "type": 2}]}
        if delegated and qtype == "NS" and not self.resolver_status:
            body["Answer"] = [{"name": f"{name}.", "type": 2, "TTL": 3600, "data": f"{ns}."}
                              for ns in delegated]
        return JSONResponse(body, media_type="application/dns-json")

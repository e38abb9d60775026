"""Simulated DirectAdmin (legacy ``CMD_API_*`` API).

Speaks both dialects: url-encoded bodies (``list[]=a&list[]=b``, ``error=1&text=…&details=…`` with
HTTP 200, ``=`` inside values sent as the ``&#61;`` entity as DirectAdmin does) and, with
``json=yes``, JSON (arrays of names, config objects, ``{"error": …, "result": …}`` with HTTP 500
by default or 200 with ``json_error_status=200``, as versions differ). Basic auth with the admin's
password or login key, ``admin|user`` to act as a user. Unknown commands get the HTML UI.
DirectAdmin's operations are synchronous, so there are no delayed transitions here.
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote_plus

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from panelql_sim.framework import Knobs, SimPanel

Params = dict[str, str]
Command = Callable[[Params, str | None], Response]

DEMO_NAMES = ["alice", "bruno", "chloe", "dmitri", "elena", "farid", "greta", "hiro", "ines",
              "jonas", "kemal", "lucia", "marek", "nadia", "oscar", "priya"]
PACKAGES: dict[str, dict[str, str]] = {
    "starter": {"quota": "1024", "bandwidth": "10240", "vdomains": "1"},
    "business": {"quota": "10240", "bandwidth": "102400", "vdomains": "5"},
    "unlimited": {"quota": "unlimited", "bandwidth": "unlimited", "vdomains": "unlimited"},
}


def default_zone(domain: str, ip: str, *, with_dkim: bool) -> list[dict[str, str]]:
    """The zone DirectAdmin writes for a new domain (names relative, apex with its dot)."""
    apex = f"{domain}."
    rows = [("NS", apex, "ns1.da.test."), ("NS", apex, "ns2.da.test."), ("A", apex, ip),
            ("A", "www", ip), ("A", "mail", ip), ("A", "ftp", ip), ("MX", apex, "10 mail"),
            ("TXT", apex, '"v=spf1 a mx ip4:' + ip + ' ~all"')]
    if with_dkim:
        rows.append(("TXT", "x._domainkey", '"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4"'))
    return [{"type": t, "name": n, "value": v, "ttl": "3600"} for t, n, v in rows]


@dataclass
class DAUser:
    username: str
    email: str
    package: str
    password: str
    ip: str
    created: float
    domains: list[str] = field(default_factory=list)
    suspended: bool = False
    suspended_reason: str = ""
    databases: dict[str, str] = field(default_factory=dict)  # "user_db" -> "user_dbuser"

    def config(self) -> dict[str, str]:
        limits = PACKAGES[self.package]
        return {
            "username": self.username, "usertype": "user", "creator": "admin",
            "email": self.email, "package": self.package, "ip": self.ip,
            "domain": self.domains[0] if self.domains else "",
            "suspended": "yes" if self.suspended else "no",
            "suspended_reason": self.suspended_reason, "ns1": "ns1.da.test", "ns2": "ns2.da.test",
            "quota": limits["quota"], "bandwidth": limits["bandwidth"], "inode": "unlimited",
            "date_created": time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(self.created)),
            "language": "en", "skin": "evolution",
        }


class DirectAdminSim(SimPanel):
    name = "directadmin"

    def __init__(
        self, *, username: str = "admin", password: str = "da_demo_pass",
        login_key: str = "da_demo_login_key", users: int = 12, json_error_status: int = 500,
        seed: int = 1, knobs: Knobs | None = None,
    ) -> None:
        super().__init__(seed=seed, knobs=knobs)
        self.username, self.password, self.login_key = username, password, login_key
        self.json_error_status = json_error_status
        # Per-command counts: the shared stats collapse ``/CMD_API_…`` paths into one key.
        self.command_stats: Counter[str] = Counter()
        # The same per command, with the HTTP method ("POST /CMD_API_SELECT_USERS"): writes are
        # POSTs, so a test can tell whether a write reached the panel.
        self.method_stats: Counter[str] = Counter()
        self.ips = ["203.0.113.50", "203.0.113.51"]
        self.users: dict[str, DAUser] = {}
        self.zones: dict[str, list[dict[str, str]]] = {}
        self.public_url = "https://da.sim.test:2222"  # where customers' browsers reach it
        self.login_urls: list[str] = []  # users a login URL was created for
        self._seed(users)

    def _seed(self, count: int) -> None:
        packages = list(PACKAGES)
        for i in range(count):
            base = DEMO_NAMES[i % len(DEMO_NAMES)]
            name = base if i < len(DEMO_NAMES) else f"{base}{i}"
            user = self.add_user(name, f"{name}@mail.example", packages[i % len(packages)],
                                 f"{name}-site.test", password=f"{name}_pw_{i}")
            user.created = time.time() - 86400 * (400 - i * 17)
            if i % 3 == 1:
                self.add_domain(user, f"{name}-shop.test")
            if i % 4 == 3:
                user.suspended, user.suspended_reason = True, "billing"

    def add_user(self, name: str, email: str, package: str, domain: str, *,
                 password: str) -> DAUser:
        user = DAUser(name, email, package, password, self.ips[len(self.users) % 2], time.time())
        self.users[name] = user
        self.add_domain(user, domain)
        return user

    def add_domain(self, user: DAUser, domain: str) -> None:
        user.domains.append(domain)
        self.zones[domain] = default_zone(domain, user.ip, with_dkim=len(self.zones) % 2 == 0)

    def reset_stats(self) -> None:
        super().reset_stats()
        self.command_stats.clear()
        self.method_stats.clear()

    def owner_of(self, domain: str) -> DAUser | None:
        return next((u for u in self.users.values() if domain in u.domains), None)

    # -- wire ---------------------------------------------------------------------------------
    def _credentials(self, request: Request) -> tuple[str, str] | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            user, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return user, secret

    def acting_user(self, request: Request) -> str | None:
        creds = self._credentials(request)
        return creds[0].partition("|")[2] or None if creds else None

    def authorize(self, request: Request) -> Response | None:
        creds = self._credentials(request)
        if creds is not None:
            login, _, target = creds[0].partition("|")
            if (login == self.username and creds[1] in (self.password, self.login_key)
                    and (not target or target in self.users)):
                return None
        body = self._error_body(request.query_params.get("json") == "yes",
                                "Unauthorized", "Invalid username or password")
        return Response(body[0], status_code=401, media_type=body[1],
                        headers={"WWW-Authenticate": 'Basic realm="DirectAdmin"'})

    def rate_limited(self, retry_after: int) -> Response:
        return PlainTextResponse("Too Many Requests", status_code=429,
                                 headers={"Retry-After": str(retry_after)})

    def server_error(self) -> Response:
        return HTMLResponse("<html><body><h1>500 Internal Server Error</h1></body></html>",
                            status_code=500)

    def _error_body(self, json_mode: bool, text: str, details: str) -> tuple[str, str]:
        if json_mode:
            return json.dumps({"error": text, "result": details}), "application/json"
        return encode([("error", "1"), ("text", text), ("details", details)]), "text/plain"

    async def _params(self, request: Request) -> Params:
        params = dict(request.query_params)
        if request.method == "POST":
            params.update(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        return params

    def error(self, params: Params, text: str, details: str = "") -> Response:
        json_mode = params.get("json") == "yes"
        body, media = self._error_body(json_mode, text, details)
        return Response(body, status_code=self.json_error_status if json_mode else 200,
                        media_type=media)

    def ok(self, params: Params, text: str, details: str = "") -> Response:
        if params.get("json") == "yes":
            return Response(json.dumps({"success": text, "result": details}),
                            media_type="application/json")
        return self.reply(params, {"error": "0", "text": text, "details": details})

    def reply(self, params: Params, data: dict[str, str] | list[str]) -> Response:
        if params.get("json") == "yes":
            return Response(json.dumps(data), media_type="application/json")
        pairs = [("list[]", v) for v in data] if isinstance(data, list) else list(data.items())
        return PlainTextResponse(encode(pairs))

    # -- routes -------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [
            Route(f"/CMD_API_{command}", self._wrap(command, handler), methods=["GET", "POST"])
            for command, handler in self.commands().items()
        ]
        routes.append(Route("/{path:path}", self._html, methods=["GET", "POST"]))
        return routes

    def _wrap(self, command: str, handler: Command) -> Any:
        async def endpoint(request: Request) -> Response:
            self.command_stats[command] += 1
            self.method_stats[f"{request.method} /CMD_API_{command}"] += 1
            params = await self._params(request)
            response: Response = handler(params, self.acting_user(request))
            return response
        return endpoint

    def commands(self) -> dict[str, Command]:
        return {
            "LOGIN_TEST": lambda p, _: self.ok(p, "Login OK"),
            "SHOW_ALL_USERS": lambda p, _: self.reply(p, list(self.users)),
            "SHOW_USERS": lambda p, _: self.reply(p, list(self.users)),
            "SHOW_USER_CONFIG": self.show_user_config,
            "SHOW_USER_USAGE": self.show_user_usage,
            "SHOW_DOMAINS": self.show_domains,
            "PACKAGES_USER": self.packages,
            "SHOW_RESELLER_IPS": lambda p, _: self.reply(p, list(self.ips)),
            "ACCOUNT_USER": self.account_user,
            "SELECT_USERS": self.select_users,
            "MODIFY_USER": self.modify_user,
            "USER_PASSWD": self.user_passwd,
            "LOGIN_KEYS": self.login_keys,
            "DNS_CONTROL": self.dns_control,
            "DOMAIN": self.domain,
            "DATABASES": self.databases,
        }

    def _user(self, params: Params, key: str) -> DAUser | Response:
        user = self.users.get(params.get(key, ""))
        if user is None:
            return self.error(params, "Unable to show user",
                              f"User {params.get(key, '')} does not exist")
        return user

    def show_user_config(self, params: Params, _: str | None) -> Response:
        user = self._user(params, "user")
        return user if isinstance(user, Response) else self.reply(params, user.config())

    def show_user_usage(self, params: Params, _: str | None) -> Response:
        user = self._user(params, "user")
        if isinstance(user, Response):
            return user
        seed = sum(map(ord, user.username))
        return self.reply(params, {
            "quota": f"{seed % 900 + 12.5:.2f}", "bandwidth": f"{seed % 5000 + 100.0:.2f}",
            "inode": str(seed * 7), "vdomains": str(len(user.domains)), "email_deliveries": "12",
        })

    def show_domains(self, params: Params, acting: str | None) -> Response:
        user = self.users.get(acting or "")
        return self.reply(params, list(user.domains) if user else [])

    def databases(self, params: Params, acting: str | None) -> Response:
        """User level ``CMD_API_DATABASES``: no action lists the user's databases;
        ``action=create`` with name, user, passwd, passwd2 makes ``<user>_<name>`` and its
        user ``<user>_<user>`` (the legacy API as the DirectAdmin modules call it)."""
        user = self.users.get(acting or "")
        if user is None:
            return self.error(params, "Unable to create database", "Login as a user first")
        action = params.get("action")
        if action is None or action == "list":
            return self.reply(params, list(user.databases))
        if action != "create":
            return self.error(params, "Unknown action")
        missing = [k for k in ("name", "user", "passwd", "passwd2") if not params.get(k)]
        if missing:
            return self.error(params, "Unable to create database",
                              f"Missing fields: {', '.join(missing)}")
        if params["passwd"] != params["passwd2"]:
            return self.error(params, "Unable to create database", "Passwords do not match")
        name = f"{user.username}_{params['name']}"
        if name in user.databases:
            return self.error(params, "Unable to create database",
                              f"Database {name} already exists")
        user.databases[name] = f"{user.username}_{params['user']}"
        return self.ok(params, "Database Created", f"Database {name} created")

    def packages(self, params: Params, _: str | None) -> Response:
        name = params.get("package")
        if name is None:
            return self.reply(params, list(PACKAGES))
        if name not in PACKAGES:
            return self.error(params, "Invalid package", f"Package {name} is not defined")
        return self.reply(params, PACKAGES[name])

    def account_user(self, params: Params, _: str | None) -> Response:
        if params.get("action") != "create":
            return self.error(params, "Unknown action")
        missing = [k for k in ("username", "email", "passwd", "passwd2", "domain", "package",
                               "ip") if not params.get(k)]
        if missing:
            return self.error(params, "Unable to create user",
                              f"Missing fields: {', '.join(missing)}")
        name, domain = params["username"], params["domain"]
        problem = (
            "That username already exists on the system" if name in self.users
            else "That domain already exists on the system" if domain in self.zones
            else "Passwords do not match" if params["passwd"] != params["passwd2"]
            else f"Invalid package {params['package']}" if params["package"] not in PACKAGES
            else "Invalid IP" if params["ip"] not in self.ips else None
        )
        if problem:
            return self.error(params, "Unable to create user", problem)
        user = self.add_user(name, params["email"], params["package"], domain,
                             password=params["passwd"])
        user.ip = params["ip"]
        return self.ok(params, "User created", f"User {name} created")

    def select_users(self, params: Params, _: str | None) -> Response:
        names = [v for k, v in sorted(params.items()) if k.startswith("select")]
        if not names:
            return self.error(params, "No users selected")
        missing = [n for n in names if n not in self.users]
        if missing:
            return self.error(params, "Error", f"User {missing[0]} does not exist")
        selected = [self.users[n] for n in names]
        if params.get("delete") and params.get("confirmed"):
            for user in selected:
                for domain in user.domains:
                    self.zones.pop(domain, None)
                del self.users[user.username]
            return self.ok(params, "Users deleted")
        suspend = "dosuspend" in params or params.get("suspend") == "Suspend"
        unsuspend = "dounsuspend" in params or params.get("suspend") == "Unsuspend"
        if suspend == unsuspend:
            return self.error(params, "Unknown action")
        wrong = [u for u in selected if u.suspended == suspend]
        if wrong:
            state = "already suspended" if suspend else "not suspended"
            return self.error(params, "Error", f"User {wrong[0].username} is {state}")
        for user in selected:
            user.suspended = suspend
            user.suspended_reason = params.get("reason", "other") if suspend else ""
        return self.ok(params, "Success", "Users suspended" if suspend else "Users unsuspended")

    def modify_user(self, params: Params, _: str | None) -> Response:
        user = self._user(params, "user")
        if isinstance(user, Response):
            return user
        if params.get("action") != "package" or params.get("package") not in PACKAGES:
            return self.error(params, "Unable to modify user",
                              f"Invalid package {params.get('package', '')}")
        user.package = params["package"]
        return self.ok(params, "User modified")

    def user_passwd(self, params: Params, _: str | None) -> Response:
        user = self._user(params, "username")
        if isinstance(user, Response):
            return user
        password = params.get("passwd", "")
        if password != params.get("passwd2"):
            return self.error(params, "Unable to set password", "Passwords do not match")
        if len(password) < 6:
            return self.error(params, "Unable to set password", "Password is too short")
        user.password = password
        return self.ok(params, "Password changed")

    def login_keys(self, params: Params, acting: str | None) -> Response:
        """A one-time login URL for the user acted as (``admin|user``), as Upmind's
        DirectAdmin provider asks for it (action=create, type=one_time_url, expiry, clear_key)
        and the answer's ``result`` carries it; the URL form is the one ``directadmin
        --create-login-url`` prints (``/CMD_LOGIN_URL?hash=…``)."""
        if acting is None or acting not in self.users:
            return self.error(params, "Unable to create login key",
                              "Log in as the user (admin|user) to create their login URL")
        if params.get("action") != "create" or params.get("type") != "one_time_url":
            return self.error(params, "Unable to create login key", "Unknown action or type")
        digest = self.random.getrandbits(256).to_bytes(32, "big").hex()
        self.login_urls.append(acting)
        return self.ok(params, "Login URL created",
                       f"{self.public_url}/CMD_LOGIN_URL?hash={digest}")

    def dns_control(self, params: Params, acting: str | None) -> Response:
        domain = params.get("domain", "")
        if not domain:
            return self.error(params, "Cannot View Dns Record", "No domain provided")
        owner = self.owner_of(domain)
        if owner is None or owner.username != acting:
            return self.error(params, "Cannot View Dns Record", "You do not own that domain")
        zone = self.zones[domain]
        action = params.get("action")
        if action == "add":
            return self._dns_add(params, zone)
        if action == "select":
            return self._dns_delete(params, zone)
        if params.get("json") == "yes":
            records = [{**r, "combined": f"name={r['name']}&value={r['value']}"} for r in zone]
            return Response(json.dumps({"records": records, "dnssec": "no", "ttl": "3600"}),
                            media_type="application/json")
        return PlainTextResponse(zone_text(domain, zone))

    def _dns_add(self, params: Params, zone: list[dict[str, str]]) -> Response:
        rtype, name, value = (params.get(k, "") for k in ("type", "name", "value"))
        if not rtype or not name or not value:
            return self.error(params, "Cannot Add Record", "Missing type, name or value")
        if any(r["type"] == rtype and r["name"] == name and r["value"] == value for r in zone):
            return self.error(params, "Cannot Add Record", "That record already exists")
        zone.append({"type": rtype.upper(), "name": name, "value": value,
                     "ttl": params.get("ttl") or "3600"})
        return self.ok(params, "Record Added")

    def _dns_delete(self, params: Params, zone: list[dict[str, str]]) -> Response:
        doomed = []
        for key, combined in params.items():
            rtype, sep, index = key.partition("recs")
            if not sep or not index.isdigit():
                continue
            wanted = dict(parse_qsl(combined, keep_blank_values=True))
            match = [r for r in zone if r["type"] == rtype.upper()
                     and r["name"] == wanted.get("name") and r["value"] == wanted.get("value")]
            if not match:
                return self.error(params, "Cannot Delete Record", "Record does not exist")
            doomed.extend(match)
        for record in doomed:
            if record in zone:
                zone.remove(record)
        return self.ok(params, "Records Deleted")

    def domain(self, params: Params, acting: str | None) -> Response:
        user = self.users.get(acting or "")
        if user is None:
            return self.error(params, "Unable to manage domains", "Log in as the user")
        if params.get("action") == "create":
            domain = params.get("domain", "").lower()
            if not domain or "." not in domain:
                return self.error(params, "Unable to create domain", "Invalid domain name")
            if domain in self.zones:
                return self.error(params, "Unable to create domain",
                                  "That domain already exists on the system")
            self.add_domain(user, domain)
            return self.ok(params, "Domain Created")
        if params.get("action") == "select" and params.get("delete"):
            for key, domain in params.items():
                if key.startswith("select") and domain in user.domains:
                    user.domains.remove(domain)
                    self.zones.pop(domain, None)
            return self.ok(params, "Domains Deleted")
        return self.error(params, "Unknown action")

    async def _html(self, request: Request) -> Response:
        return HTMLResponse("<html><head><title>DirectAdmin Login</title></head>"
                            "<body><form>...</form></body></html>")


def zone_text(domain: str, zone: list[dict[str, str]]) -> str:
    """The legacy DNS_CONTROL answer: a BIND zone, tab-separated, SOA over several lines."""
    lines = ["$TTL 3600", f"{domain}.\t3600\tIN\tSOA\tns1.da.test.\thostmaster.{domain}. (",
             "\t\t2024010101 ; serial", "\t\t3600\t\t; refresh", "\t\t3600", "\t\t1209600",
             "\t\t86400 )", ""]
    lines += [f"{r['name']}\t{r['ttl']}\tIN\t{r['type']}\t{r['value']}" for r in zone]
    return "\n".join(lines) + "\n"


def encode(pairs: list[tuple[str, str]]) -> str:
    """DirectAdmin's url-encoding: keys raw, values encoded, ``=`` inside values as ``&#61;``."""
    return "&".join(f"{key}={quote_plus(value).replace('%3D', '&#61;')}" for key, value in pairs)

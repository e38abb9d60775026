"""Simulated NextPanel backend (FastAPI on port 9000 in seed 002), fronting several servers.

Routes follow the seed: ``/api/health``, ``/api/auth/login/json``, ``/api/api-keys/`` and the
billing operations of its endpoint table (servers, servers/status, provision, suspend,
unsuspend, delete, stats), plus the account list the gateway needs. Where the seed is silent the
shapes are the ones written down in docs/providers/nextpanel.md. Errors are FastAPI's
``{"detail": …}``; API keys travel as ``X-API-Key`` (key id) and ``X-API-Secret``.
A new account is ``provisioning`` and becomes ``active`` after ``transition_seconds``.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from panelql_sim.framework import Knobs, SimPanel, iso, json_body

PUBLIC = ("/api/health", "/api/auth/login/json")
SERVERS = [  # name, location, capacity, is_active, is_online
    ("np-fra-1", "Frankfurt", 15, True, True),
    ("np-ams-1", "Amsterdam", 10, True, True),
    ("np-nyc-1", "New York", 5, True, False),
]


@dataclass
class NPAccount:
    id: int
    server_id: int
    username: str
    email: str
    full_name: str
    billing_customer_id: str | None
    status: str
    created: float
    suspension_reason: str | None = None
    suspended_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "server_id": self.server_id, "nextpanel_user_id": 1000 + self.id,
            "username": self.username, "email": self.email, "full_name": self.full_name,
            "billing_customer_id": self.billing_customer_id, "status": self.status,
            "suspension_reason": self.suspension_reason,
            "suspended_at": iso(self.suspended_at) if self.suspended_at else None,
            "created_at": iso(self.created),
        }


def detail(message: str, status: int) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


class NextPanelSim(SimPanel):
    name = "nextpanel"

    def __init__(
        self, *, key_id: str = "np_demo_key_id", key_secret: str = "np_demo_key_secret",
        admin_password: str = "admin", accounts: int = 20, seed: int = 1,
        knobs: Knobs | None = None,
    ) -> None:
        super().__init__(seed=seed, knobs=knobs)
        self.key_id, self.key_secret, self.admin_password = key_id, key_secret, admin_password
        self.keys: dict[str, str] = {key_id: key_secret}
        self.tokens: set[str] = set()
        self.servers: dict[int, dict[str, Any]] = {}
        self.accounts: dict[int, NPAccount] = {}
        self._seed(accounts)

    def _seed(self, count: int) -> None:
        for i, (name, location, capacity, active, online) in enumerate(SERVERS, start=1):
            self.servers[i] = {
                "id": i, "name": name, "description": f"NextPanel server in {location}",
                "base_url": f"http://10.20.0.{10 + i}:9000", "location": location,
                "capacity": capacity, "is_active": active, "is_online": online,
            }
        for n in range(count):
            account = self.add_account(
                server_id=_spread(n, count), username=f"site{n + 1:03d}",
                email=f"owner{n + 1}@customer.example", billing_customer_id=str(5000 + n),
                status="active",
            )
            account.created = time.time() - 86400 * (90 - n)
            if n % 5 == 4:
                account.status, account.suspended_at = "suspended", time.time() - 3600
                account.suspension_reason = "Payment overdue"

    def add_account(self, *, server_id: int, username: str, email: str,
                    billing_customer_id: str | None, status: str,
                    full_name: str = "") -> NPAccount:
        account = NPAccount(len(self.accounts) + 1 if not self.accounts
                            else max(self.accounts) + 1, server_id, username, email,
                            full_name or username, billing_customer_id, status, time.time())
        self.accounts[account.id] = account
        return account

    def current_accounts(self, server_id: int) -> int:
        return sum(1 for a in self.accounts.values() if a.server_id == server_id)

    def _has_room(self, server: dict[str, Any]) -> bool:
        return bool(server["is_active"] and server["is_online"]
                    and self.current_accounts(server["id"]) < server["capacity"])

    # -- HTTP ---------------------------------------------------------------------------------
    def authorize(self, request: Request) -> Response | None:
        path = request.url.path
        if path in PUBLIC:
            return None
        if path.startswith("/api/api-keys"):
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            return None if token in self.tokens else detail("Not authenticated", 401)
        key_id = request.headers.get("x-api-key", "")
        if key_id not in self.keys or request.headers.get("x-api-secret") != self.keys[key_id]:
            return detail("Invalid API credentials", 401)
        return None

    def rate_limited(self, retry_after: int) -> Response:
        return JSONResponse({"detail": "Rate limit exceeded: 1000 requests per hour"},
                            status_code=429, headers={"Retry-After": str(retry_after)})

    def server_error(self) -> Response:
        return detail("Internal Server Error", 500)

    def routes(self) -> list[BaseRoute]:
        a = "/api/accounts/{aid:int}"
        return [
            Route("/api/health", self.health, methods=["GET"]),
            Route("/api/auth/login/json", self.login, methods=["POST"]),
            Route("/api/api-keys/", self.create_key, methods=["POST"]),
            Route("/api/servers", self.list_servers, methods=["GET"]),
            Route("/api/servers/status", self.servers_status, methods=["GET"]),
            Route("/api/provision", self.provision, methods=["POST"]),
            Route("/api/accounts", self.list_accounts, methods=["GET"]),
            Route(a, self.delete_account, methods=["DELETE"]),
            Route(a + "/suspend", self.suspend, methods=["POST"]),
            Route(a + "/unsuspend", self.unsuspend, methods=["POST"]),
            Route(a + "/stats", self.account_stats, methods=["GET"]),
        ]

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "healthy", "version": "1.0.0",
                             "timestamp": iso(time.time())})

    async def login(self, request: Request) -> Response:
        body = await json_body(request)
        if body.get("username") != "admin" or body.get("password") != self.admin_password:
            return detail("Incorrect username or password", 401)
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        return JSONResponse({"access_token": token, "token_type": "bearer"})

    async def create_key(self, request: Request) -> Response:
        body = await json_body(request)
        if not body.get("name"):
            return JSONResponse({"detail": [{"loc": ["body", "name"], "msg": "field required",
                                             "type": "value_error.missing"}]}, status_code=422)
        key_id, secret = f"np_{secrets.token_hex(8)}", secrets.token_urlsafe(32)
        self.keys[key_id] = secret
        return JSONResponse({
            "name": body["name"], "key_id": key_id, "key_secret": secret,
            "permission_level": body.get("permission_level", "billing"),
            "rate_limit_per_hour": body.get("rate_limit_per_hour", 1000),
            "rate_limit_per_day": body.get("rate_limit_per_day", 10000),
        }, status_code=201)

    def _server_json(self, server: dict[str, Any]) -> dict[str, Any]:
        current = self.current_accounts(server["id"])
        return {**server, "current_accounts": current,
                "utilization_percent": round(100.0 * current / server["capacity"], 1),
                "last_health_check": iso(time.time() - 30)}

    async def list_servers(self, request: Request) -> Response:
        return JSONResponse([self._server_json(s) for s in self.servers.values()])

    async def servers_status(self, request: Request) -> Response:
        servers = [self._server_json(s) for s in self.servers.values()]
        return JSONResponse({
            "servers": servers, "total_servers": len(servers),
            "online_servers": sum(1 for s in servers if s["is_online"]),
            "total_capacity": sum(s["capacity"] for s in servers),
            "total_accounts": sum(s["current_accounts"] for s in servers),
        })

    async def provision(self, request: Request) -> Response:
        body = await json_body(request)
        missing = [k for k in ("username", "email", "password") if not body.get(k)]
        if missing:
            return JSONResponse({"detail": [{"loc": ["body", k], "msg": "field required",
                                             "type": "value_error.missing"} for k in missing]},
                                status_code=422)
        if any(a.username == body["username"] for a in self.accounts.values()):
            return detail("Username already exists", 409)
        server = self._pick(body.get("server_id"))
        if isinstance(server, Response):
            return server
        account = self.add_account(
            server_id=server["id"], username=str(body["username"]), email=str(body["email"]),
            billing_customer_id=_opt_str(body.get("billing_customer_id")),
            status="provisioning", full_name=str(body.get("full_name") or ""),
        )

        def activate() -> None:
            if account.status == "provisioning":
                account.status = "active"
        self.later(activate)
        return JSONResponse({"success": True, "account": account.to_json(),
                             "server_id": server["id"], "server_url": server["base_url"]},
                            status_code=201)

    def _pick(self, server_id: Any) -> dict[str, Any] | Response:
        """The named server if it has room, else the least-loaded healthy one (the seed)."""
        if server_id is not None:
            server = self.servers.get(int(server_id)) if str(server_id).isdigit() else None
            if server is None:
                return detail("Server not found", 404)
            if not self._has_room(server):
                return detail("Server not available: offline or at capacity", 409)
            return server
        usable = [s for s in self.servers.values() if self._has_room(s)]
        if not usable:
            return detail("No server available", 503)
        return min(usable, key=lambda s: self.current_accounts(s["id"]) / s["capacity"])

    async def list_accounts(self, request: Request) -> Response:
        skip = max(0, int(request.query_params.get("skip", 0)))
        limit = min(100, max(1, int(request.query_params.get("limit", 50))))
        server_id = request.query_params.get("server_id")
        items = [a.to_json() for a in self.accounts.values()
                 if server_id is None or str(a.server_id) == server_id]
        return JSONResponse({"accounts": items[skip: skip + limit], "total": len(items),
                             "skip": skip, "limit": limit})

    def _account(self, request: Request) -> NPAccount | Response:
        account = self.accounts.get(request.path_params["aid"])
        return account if account is not None else detail("Account not found", 404)

    async def suspend(self, request: Request) -> Response:
        account = self._account(request)
        if isinstance(account, Response):
            return account
        if account.status != "active":
            return detail(f"Account is {account.status}, only active accounts can be suspended",
                          409)
        body = await json_body(request)
        account.status, account.suspended_at = "suspended", time.time()
        account.suspension_reason = str(body.get("reason") or "") or None
        return JSONResponse({"success": True, "message": "Account suspended",
                             "account": account.to_json()})

    async def unsuspend(self, request: Request) -> Response:
        account = self._account(request)
        if isinstance(account, Response):
            return account
        if account.status != "suspended":
            return detail("Account is not suspended", 409)
        account.status, account.suspended_at, account.suspension_reason = "active", None, None
        return JSONResponse({"success": True, "message": "Account unsuspended",
                             "account": account.to_json()})

    async def delete_account(self, request: Request) -> Response:
        account = self._account(request)
        if isinstance(account, Response):
            return account
        del self.accounts[account.id]
        return JSONResponse({"success": True, "message": "Account deleted"})

    async def account_stats(self, request: Request) -> Response:
        account = self._account(request)
        if isinstance(account, Response):
            return account
        seed = sum(map(ord, account.username))
        return JSONResponse({
            "account_id": account.id, "disk_usage_mb": round(seed % 2000 + 0.5, 1),
            "disk_limit_mb": 10240, "bandwidth_usage_mb": seed % 9000,
            "bandwidth_limit_mb": 102400, "domains": 1 + seed % 3, "databases": seed % 4,
            "email_accounts": seed % 6, "collected_at": iso(time.time()),
        })


def _spread(n: int, count: int) -> int:
    """Alternate the first two servers, the last 15% on the third: 9 / 8 / 3 for 20 accounts."""
    return 3 if n >= count - max(1, count * 15 // 100) else 1 + n % 2


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)

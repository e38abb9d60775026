"""Simulated NextPanel server: one server, the billing API its billing client calls.

NextPanel's source is not public. What is known of its API comes from the billing side
(saifulrony/nextpanel-bill @d511c847): ``billing-backend/app/services/nextpanel_service.py``
(@9aa18120) for routes, bodies and success codes, and that repository's notes for the answers
(FIX_API_KEY_NOW.md, NEXTPANEL_API_KEY_TROUBLESHOOTING.md @9aa18120; the stats fields in
NEXTPANEL_INTEGRATION_GUIDE.md @ace088b1; the admin login and key creation in
QUICK_START_INTEGRATION.md). Where none of them shows an answer, the choice
is marked *assumed* here and in docs/providers/nextpanel.md.

Capacity is not the panel's business (the billing side counts), so this server takes accounts
until the gateway stops sending them; it is "full" only in the gateway's ledger.
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

ACCOUNTS = "/api/v1/billing/accounts"
# test_nextpanel_api.sh @9aa18120: "Health Check (no auth required)".
PUBLIC = ("/api/health", "/api/auth/login/json")
SUPER_ADMIN = "super_admin"
# NEXTPANEL_API_KEY_TROUBLESHOOTING.md @9aa18120: creating accounts needs a SUPER_ADMIN key;
# a lower level gets this 403 (FIX_API_KEY_NOW.md @9aa18120 shows the body).
NOT_SUPER_ADMIN = "The user doesn't have super admin privileges"


@dataclass
class NPUser:
    id: int
    username: str
    email: str
    full_name: str | None
    phone: str | None
    company: str | None
    package_id: Any
    is_admin: bool
    billing_id: str | None
    metadata: dict[str, Any]
    created: float
    is_active: bool = True
    suspension_reason: str | None = None
    last_login: float | None = None

    def to_json(self) -> dict[str, Any]:
        # The 201 answer shows id, username, email (FIX_API_KEY_NOW.md @9aa18120); the rest of
        # the object is *assumed* (the request's fields, is_active, created_at).
        return {
            "id": self.id, "username": self.username, "email": self.email,
            "full_name": self.full_name, "phone": self.phone, "company": self.company,
            "package_id": self.package_id, "is_admin": self.is_admin,
            "billing_id": self.billing_id, "is_active": self.is_active,
            "created_at": iso(self.created),
        }


def detail(message: str, status: int) -> JSONResponse:
    """FastAPI's error body (the billing client reads ``response.json().get('detail')``)."""
    return JSONResponse({"detail": message}, status_code=status)


def missing_fields(body: dict[str, Any], names: tuple[str, ...]) -> JSONResponse | None:
    """FastAPI's 422 for missing required body fields (pydantic v2 wording)."""
    missing = [k for k in names if not isinstance(body.get(k), str) or not body[k]]
    if not missing:
        return None
    return JSONResponse({"detail": [{"type": "missing", "loc": ["body", k],
                                     "msg": "Field required", "input": None}
                                    for k in missing]}, status_code=422)


class NextPanelSim(SimPanel):
    name = "nextpanel"

    def __init__(
        self, *, api_key: str = "npk_demo_key", api_secret: str = "nps_demo_secret",
        admin_password: str = "admin", accounts: int = 0, seed: int = 1,
        knobs: Knobs | None = None,
    ) -> None:
        super().__init__(seed=seed, knobs=knobs)
        self.api_key, self.api_secret, self.admin_password = api_key, api_secret, admin_password
        self.keys: dict[str, tuple[str, str]] = {api_key: (api_secret, SUPER_ADMIN)}
        self.tokens: set[str] = set()
        self.users: dict[int, NPUser] = {}
        for n in range(accounts):  # accounts that were there before any gateway counted
            self._add(username=f"site{n + 1:03d}", email=f"owner{n + 1}@customer.example",
                      body={})

    def _add(self, *, username: str, email: str, body: dict[str, Any]) -> NPUser:
        user = NPUser(
            id=max(self.users, default=0) + 1, username=username, email=email,
            full_name=_opt(body.get("full_name")), phone=_opt(body.get("phone")),
            company=_opt(body.get("company")), package_id=body.get("package_id"),
            is_admin=body.get("is_admin") is True, billing_id=_opt(body.get("billing_id")),
            metadata=dict(body["metadata"]) if isinstance(body.get("metadata"), dict) else {},
            created=time.time())
        self.users[user.id] = user
        return user

    def add_key(self, level: str) -> tuple[str, str]:
        """A key at another permission level (BILLING, ADMIN…), as an operator might create."""
        key, secret = f"npk_{secrets.token_urlsafe(24)}", f"nps_{secrets.token_urlsafe(48)}"
        self.keys[key] = (secret, level)
        return key, secret

    # -- HTTP ---------------------------------------------------------------------------------
    def authorize(self, request: Request) -> Response | None:
        path = request.url.path
        if path in PUBLIC:
            return None
        if path.startswith("/api/api-keys"):
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            return None if token in self.tokens else detail("Not authenticated", 401)
        known = self.keys.get(request.headers.get("x-api-key", ""))
        if known is None or request.headers.get("x-api-secret") != known[0]:
            # FIX_API_KEY_NOW.md @9aa18120: 401 {"detail": "Invalid API key or secret"}.
            return detail("Invalid API key or secret", 401)
        return None

    def rate_limited(self, retry_after: int) -> Response:
        # Seed 002: 1,000 requests per hour per key. The body is *assumed*.
        return JSONResponse({"detail": "Rate limit exceeded"}, status_code=429,
                            headers={"Retry-After": str(retry_after)})

    def server_error(self) -> Response:
        return detail("Internal Server Error", 500)

    def routes(self) -> list[BaseRoute]:
        one = ACCOUNTS + "/{uid:int}"
        return [
            Route("/api/health", self.health, methods=["GET"]),
            Route("/api/auth/login/json", self.login, methods=["POST"]),
            Route("/api/api-keys/", self.create_key, methods=["POST"]),
            Route(ACCOUNTS, self.create_account, methods=["POST"]),
            Route(one, self.get_account, methods=["GET"]),
            Route(one, self.delete_account, methods=["DELETE"]),
            Route(one + "/suspend", self.suspend, methods=["POST"]),
            Route(one + "/unsuspend", self.unsuspend, methods=["POST"]),
            Route(one + "/stats", self.account_stats, methods=["GET"]),
        ]

    async def health(self, request: Request) -> Response:
        # NEXTPANEL_API_KEY_TROUBLESHOOTING.md @9aa18120 reads the panel's health as
        # "Status: Healthy, Database: Connected, Version: 1.0.0".
        return JSONResponse({"status": "healthy", "version": "1.0.0", "database": "connected",
                             "timestamp": iso(time.time())})

    async def login(self, request: Request) -> Response:
        # Seed 002 step 2: POST /api/auth/login/json {username, password} → access_token.
        body = await json_body(request)
        if body.get("username") != "admin" or body.get("password") != self.admin_password:
            return detail("Incorrect username or password", 401)
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        return JSONResponse({"access_token": token, "token_type": "bearer"})

    async def create_key(self, request: Request) -> Response:
        # Seed 002 step 2: POST /api/api-keys/ → key_id, key_secret (npk_/nps_ prefixes:
        # NEXTPANEL_ACCOUNT_PROVISIONING_GUIDE.md @9aa18120).
        body = await json_body(request)
        invalid = missing_fields(body, ("name",))
        if invalid is not None:
            return invalid
        level = str(body.get("permission_level") or "billing")
        key, secret = self.add_key(level)
        return JSONResponse({"name": body["name"], "key_id": key, "key_secret": secret,
                             "permission_level": level,
                             "rate_limit_per_hour": body.get("rate_limit_per_hour", 1000),
                             "rate_limit_per_day": body.get("rate_limit_per_day", 10000)},
                            status_code=201)

    def _level(self, request: Request) -> str:
        return self.keys[request.headers["x-api-key"]][1]

    async def create_account(self, request: Request) -> Response:
        # service @9aa18120 create_account: the body's fields; 201 with the account.
        if self._level(request) != SUPER_ADMIN:
            return detail(NOT_SUPER_ADMIN, 403)
        body = await json_body(request)
        invalid = missing_fields(body, ("username", "email", "password"))
        if invalid is not None:
            return invalid
        # NEXTPANEL_API_KEY_TROUBLESHOOTING.md @9aa18120: "400 Bad Request - … user exists";
        # the guides quote "Username already exists" (UI_PROVISIONING_GUIDE.md @9aa18120).
        if any(u.username == body["username"] for u in self.users.values()):
            return detail("Username already exists", 400)
        if any(u.email == body["email"] for u in self.users.values()):
            return detail("Email already exists", 400)  # *assumed* wording
        user = self._add(username=body["username"], email=body["email"], body=body)
        return JSONResponse(user.to_json(), status_code=201)

    def _user(self, request: Request) -> NPUser | Response:
        user = self.users.get(request.path_params["uid"])
        return user if user is not None else detail("Account not found", 404)  # *assumed*

    async def get_account(self, request: Request) -> Response:
        user = self._user(request)
        return user if isinstance(user, Response) else JSONResponse(user.to_json())

    async def suspend(self, request: Request) -> Response:
        # service @9aa18120 suspend_account: {"reason": …} → 200. Suspending a suspended
        # account answers 200 again (*assumed*: the client shows no other answer).
        user = self._user(request)
        if isinstance(user, Response):
            return user
        body = await json_body(request)
        user.is_active = False
        user.suspension_reason = _opt(body.get("reason"))
        return JSONResponse({"message": "Account suspended successfully"})  # body *assumed*

    async def unsuspend(self, request: Request) -> Response:
        user = self._user(request)
        if isinstance(user, Response):
            return user
        user.is_active, user.suspension_reason = True, None
        return JSONResponse({"message": "Account unsuspended successfully"})  # body *assumed*

    async def delete_account(self, request: Request) -> Response:
        # service @9aa18120 delete_account: DELETE → 200.
        user = self._user(request)
        if isinstance(user, Response):
            return user
        del self.users[user.id]
        return JSONResponse({"message": "Account deleted successfully"})  # body *assumed*

    async def account_stats(self, request: Request) -> Response:
        # The fields NEXTPANEL_INTEGRATION_GUIDE.md @ace088b1 §5 shows the billing side
        # passing through from GET …/{id}/stats; the values are made up per user.
        user = self._user(request)
        if isinstance(user, Response):
            return user
        seed = sum(map(ord, user.username))
        return JSONResponse({
            "user_id": user.id, "username": user.username, "email": user.email,
            "total_domains": seed % 4, "total_databases": seed % 6,
            "total_email_accounts": seed % 11, "total_ssl_certificates": seed % 3,
            "storage_used": seed % 900, "last_login": iso(user.last_login)
            if user.last_login else None,
            "account_age_days": int((time.time() - user.created) // 86400),
        })


def _opt(value: Any) -> str | None:
    return value if isinstance(value, str) else None

"""Recorded NextPanel exchanges, taken from the upstream's billing client and its notes.

NextPanel's own source is not public; the reference is saifulrony/nextpanel-bill at d511c847.
``service`` below is ``billing-backend/app/services/nextpanel_service.py`` (last changed in
9aa18120). Each exchange names the file and commit it comes from. The same list is replayed
against the adapter with respx (test_nextpanel.py) and sent over HTTP to the simulator, so the
simulator fails its own tests when it drifts from what the upstream shows.

``exact`` lists the answer's keys whose values must match; the other keys of ``answer`` must be
present (their values here are examples). ``key`` says which credentials the call carries:
"super" (a SUPER_ADMIN key), "billing" (a lower level), "wrong" (a bad secret) or None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ACCOUNTS = "/api/v1/billing/accounts"


@dataclass(frozen=True)
class Exchange:
    name: str
    source: str
    method: str
    path: str  # "{id}" stands for the account created by the "create" exchange
    status: int
    answer: Any
    request: dict[str, Any] | None = None
    key: str | None = "super"
    exact: tuple[str, ...] = ()
    request_keys: frozenset[str] = field(default_factory=frozenset)


CREATE_BODY = {
    "username": "acme5001", "email": "owner@acme.example", "password": "S3cure-pass!",
    "full_name": None, "phone": None, "company": None, "package_id": None, "is_admin": False,
    "billing_id": "whmcs:42",
    "metadata": {"created_from": "panelql", "billing_customer_id": "whmcs:42",
                 "account_type": "panel", "is_admin": False},
}

EXCHANGES: list[Exchange] = [
    # service @9aa18120 NextPanelServer.test_connection: GET /api/health, healthy on 200;
    # test_nextpanel_api.sh @9aa18120: "Health Check (no auth required)";
    # NEXTPANEL_API_KEY_TROUBLESHOOTING.md @9aa18120: "Status: Healthy … Version: 1.0.0".
    Exchange("health", "service @9aa18120 test_connection; test_nextpanel_api.sh @9aa18120",
             "GET", "/api/health", 200, {"status": "healthy", "version": "1.0.0"}, key=None,
             exact=("status",)),
    # service @9aa18120 create_account: the body's fields, success is 201 with account['id'];
    # FIX_API_KEY_NOW.md @9aa18120 "Success (201)": {"id", "username", "email"}.
    Exchange("create", "service @9aa18120 create_account; FIX_API_KEY_NOW.md @9aa18120",
             "POST", ACCOUNTS, 201,
             {"id": 123, "username": "acme5001", "email": "owner@acme.example"},
             request=CREATE_BODY, exact=("username", "email"),
             request_keys=frozenset(CREATE_BODY)),
    # FIX_API_KEY_NOW.md @9aa18120 "Authentication Failed (401)".
    Exchange("wrong secret", "FIX_API_KEY_NOW.md @9aa18120", "POST", ACCOUNTS, 401,
             {"detail": "Invalid API key or secret"}, request=CREATE_BODY, key="wrong",
             exact=("detail",)),
    # FIX_API_KEY_NOW.md @9aa18120 "Permission Denied (403)"; NEXTPANEL_API_KEY_
    # TROUBLESHOOTING.md @9aa18120: a key below SUPER_ADMIN cannot create accounts.
    Exchange("key below super admin", "FIX_API_KEY_NOW.md @9aa18120", "POST", ACCOUNTS, 403,
             {"detail": "The user doesn't have super admin privileges"},
             request={**CREATE_BODY, "username": "other1", "email": "o1@acme.example"},
             key="billing", exact=("detail",)),
    # NEXTPANEL_API_KEY_TROUBLESHOOTING.md @9aa18120: "400 Bad Request - … user exists";
    # UI_PROVISIONING_GUIDE.md @9aa18120 quotes the detail "Username already exists".
    Exchange("username taken", "NEXTPANEL_API_KEY_TROUBLESHOOTING.md, UI_PROVISIONING_GUIDE.md "
             "@9aa18120", "POST", ACCOUNTS, 400, {"detail": "Username already exists"},
             request={**CREATE_BODY, "email": "second@acme.example"}, exact=("detail",)),
    # service @9aa18120 get_account: GET …/{user_id}, 200 → the account as JSON.
    Exchange("get", "service @9aa18120 get_account", "GET", f"{ACCOUNTS}/{{id}}", 200,
             {"id": 123, "username": "acme5001", "email": "owner@acme.example"},
             exact=("username", "email")),
    # service @9aa18120 suspend_account: POST …/{user_id}/suspend {"reason"}, 200.
    Exchange("suspend", "service @9aa18120 suspend_account", "POST",
             f"{ACCOUNTS}/{{id}}/suspend", 200, {"message": "Account suspended successfully"},
             request={"reason": "Invoice 77 overdue"}),
    # *assumed*: upstream shows no state field on the account object; the simulator and the
    # adapter use FastAPI's usual user flag ``is_active`` (docs/providers/nextpanel.md).
    Exchange("get suspended", "assumed (no state field shown upstream)", "GET",
             f"{ACCOUNTS}/{{id}}",
             200, {"id": 123, "username": "acme5001", "is_active": False},
             exact=("is_active",)),
    # service @9aa18120 unsuspend_account: POST …/{user_id}/unsuspend without a body, 200.
    Exchange("unsuspend", "service @9aa18120 unsuspend_account", "POST",
             f"{ACCOUNTS}/{{id}}/unsuspend", 200,
             {"message": "Account unsuspended successfully"}),
    # service @9aa18120 get_account_stats: GET …/{user_id}/stats, 200; the fields are those
    # NEXTPANEL_INTEGRATION_GUIDE.md @ace088b1 §5 shows the billing side passing through.
    Exchange("stats", "service @9aa18120 get_account_stats; NEXTPANEL_INTEGRATION_GUIDE.md "
             "@ace088b1", "GET", f"{ACCOUNTS}/{{id}}/stats", 200,
             {"user_id": 123, "username": "acme5001", "email": "owner@acme.example",
              "total_domains": 3, "total_databases": 5, "total_email_accounts": 10,
              "total_ssl_certificates": 2, "storage_used": 0,
              "last_login": "2025-10-11T10:30:00", "account_age_days": 30},
             exact=("username", "email")),
    # service @9aa18120 delete_account: DELETE …/{user_id}, 200.
    Exchange("delete", "service @9aa18120 delete_account", "DELETE", f"{ACCOUNTS}/{{id}}", 200,
             {"message": "Account deleted successfully"}),
    # After the delete the account is gone; the service treats every non-200 as "not found".
    # The 404 and its detail are *assumed* (FastAPI's usual answer for a missing object).
    Exchange("get deleted", "service @9aa18120 get_account (non-200 → None)", "GET",
             f"{ACCOUNTS}/{{id}}", 404, {"detail": "Account not found"}),
]


def by_name(name: str) -> Exchange:
    return next(e for e in EXCHANGES if e.name == name)


def matches(exchange: Exchange, status: int, body: Any) -> list[str]:
    """What differs between a live answer and the recorded one (empty: it matches)."""
    problems = []
    if status != exchange.status:
        problems.append(f"status {status} != {exchange.status}")
    if isinstance(exchange.answer, dict):
        if not isinstance(body, dict):
            return [*problems, f"body {body!r} is not an object"]
        missing = sorted(set(exchange.answer) - set(body))
        if missing:
            problems.append(f"missing keys {missing}")
        problems += [f"{k}: {body.get(k)!r} != {exchange.answer[k]!r}" for k in exchange.exact
                     if body.get(k) != exchange.answer[k]]
    return problems

"""NextPanel raw values → normalised enums, and its error bodies → sentences.

NextPanel's own source is not public; what its answers look like is known from the billing
client (saifulrony/nextpanel-bill @d511c847) and that repository's notes. The account object's
state field is not shown anywhere there, so the adapter reads ``status`` if the panel sends one,
else ``is_active`` (the usual FastAPI user flag), else what the gateway last did to the account
(its ledger). docs/providers/nextpanel.md lists this as unverified.
"""

from __future__ import annotations

from typing import Any

from panelql.domain.status import AccountStatus

ACCOUNT_STATUS: dict[str, AccountStatus] = {
    "active": AccountStatus.ACTIVE,
    "suspended": AccountStatus.SUSPENDED,
    "pending": AccountStatus.PENDING,
    "terminated": AccountStatus.TERMINATED,
}


def account_raw_status(body: dict[str, Any], recorded: str) -> str:
    status = body.get("status")
    if isinstance(status, str) and status:
        return status
    active = body.get("is_active")
    if isinstance(active, bool):
        return "active" if active else "suspended"
    return recorded


def read_error(body: Any) -> str | None:
    """FastAPI errors: ``{"detail": "…"}`` (nextpanel-bill FIX_API_KEY_NOW.md @9aa18120 shows
    ``{"detail": "Invalid API key or secret"}`` on 401 and ``{"detail": "The user doesn't have
    super admin privileges"}`` on 403; the service reads ``response.json().get('detail')``), or
    a list of field problems on 422 (FastAPI's request validation)."""
    if not isinstance(body, dict):
        return None
    detail = body.get("detail")
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        msgs = [str(d.get("msg")) for d in detail if isinstance(d, dict) and d.get("msg")]
        return "; ".join(msgs) or None
    return None

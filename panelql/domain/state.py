"""The gateway's own records: customer links, API keys, operations and audit entries.

The database stores them (db/), the application works with them and the schema renders them;
like the rest of domain/, they import nothing of those layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Link:
    customer_ref: str
    connection: str
    resource_type: str  # "Account", "Server", "DnsZone" or "BillingCustomer"
    resource_id: str
    created_at: datetime | None = None


@dataclass(frozen=True)
class KeyInfo:
    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    customer_ref: str | None
    rate_limit_per_minute: int | None
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime | None

    @property
    def active(self) -> bool:
        now = datetime.now(UTC)
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass
class OperationRow:
    id: str
    action: str
    connection: str
    target_id: str
    status: str
    progress: float | None
    step: str | None
    error_code: str | None
    error_message: str | None
    result: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    owner: str | None = None
    lease_until: datetime | None = None
    follow: dict[str, Any] | None = None


@dataclass
class AuditRow:
    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    input_summary: dict[str, Any]
    outcome: str
    error_code: str | None
    upstream_request_id: str | None
    duration_ms: float | None

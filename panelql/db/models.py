"""Tables of the gateway's own state. Every schema change goes through a migration in
``migrations/versions``; tests check that the migrated schema matches these models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Index, Integer, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class ProviderConnection(Base):
    """Connections added at runtime (the TOML file's connections are not copied here)."""

    __tablename__ = "provider_connections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    base_url: Mapped[str] = mapped_column(String(512))
    credentials_encrypted: Mapped[str] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = _now()


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    scopes: Mapped[list[str]] = mapped_column(default=list)
    customer_ref: Mapped[str | None] = mapped_column(String(128))
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()


class StatusSnapshot(Base):
    """Last status the watcher saw per resource, so a restart does not re-announce everything."""

    __tablename__ = "status_snapshots"
    connection: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(191), primary_key=True)
    status: Mapped[str] = mapped_column(String(32))
    raw_status: Mapped[str | None] = mapped_column(String(64))
    observed_at: Mapped[datetime] = _now()


class Operation(Base):
    __tablename__ = "operations"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    action: Mapped[str] = mapped_column(String(64))
    connection: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[float | None] = mapped_column(Float)
    step: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    upstream_task: Mapped[str | None] = mapped_column(String(255))
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
    # The replica following it, which renews ``lease_until`` while alive; once that passes,
    # another replica takes the operation over (application/operations.py).
    owner: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    # How to resume following it elsewhere: the step and a description of its probe.
    follow: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)  # api key id or "anonymous"
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # in_progress | done
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class AuditEntry(Base):
    """Append-only: rows are inserted, never updated or deleted by the gateway."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = _now()
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(255), index=True)
    input_summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    outcome: Mapped[str] = mapped_column(String(16))  # ok | error
    error_code: Mapped[str | None] = mapped_column(String(32))
    upstream_request_id: Mapped[str | None] = mapped_column(String(128))
    duration_ms: Mapped[float | None] = mapped_column(Float)


class CustomerLink(Base):
    """A billing system's customer reference (``whmcs:42``) linked to one upstream resource."""

    __tablename__ = "customer_links"
    __table_args__ = (
        Index("ix_customer_links_resource", "connection", "resource_type", "resource_id",
              unique=True),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_ref: Mapped[str] = mapped_column(String(128), index=True)
    connection: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(16))
    resource_id: Mapped[str] = mapped_column(String(191))
    created_at: Mapped[datetime] = _now()


class WebhookEvent(Base):
    """Processed webhook event ids, so a replayed delivery is ignored."""

    __tablename__ = "webhook_events"
    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(191), primary_key=True)
    received_at: Mapped[datetime] = _now()


class AccountSlotCount(Base):
    """Slots taken per connection on panels that cannot count their accounts (NextPanel).

    ``used`` moves by conditional UPDATEs only (``used < capacity``), so two concurrent
    creates never both take the last slot; ``baseline`` is the ``current_accounts`` option
    the count started from (see panelql.providers.ledger)."""

    __tablename__ = "account_slot_counts"
    connection: Mapped[str] = mapped_column(String(64), primary_key=True)
    baseline: Mapped[int] = mapped_column(Integer)
    used: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = _now()


class LedgerAccount(Base):
    """An account the gateway created on a panel that cannot list accounts (NextPanel)."""

    __tablename__ = "ledger_accounts"
    connection: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(191), primary_key=True)
    username: Mapped[str] = mapped_column(String(191))
    email: Mapped[str | None] = mapped_column(String(255))
    external_ref: Mapped[str | None] = mapped_column(String(191))
    status: Mapped[str] = mapped_column(String(32))
    suspension_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()


class AutomationPolicy(Base):
    """A billing-driven rule: what to do to a customer's services when an invoice of theirs is
    overdue, fails, is disputed or paid, or the customer cancels (application/automation)."""

    __tablename__ = "automation_policies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    trigger: Mapped[str] = mapped_column(String(32))  # OVERDUE, PAYMENT_FAILED, DISPUTE…
    overdue_days: Mapped[int] = mapped_column(Integer, default=0)
    kinds: Mapped[list[str] | None] = mapped_column(JSON)  # provider kinds; None: every kind
    unsuspend_on_payment: Mapped[bool] = mapped_column(Boolean, default=True)
    terminate_after_days: Mapped[float | None] = mapped_column(Float)
    final_backup: Mapped[bool] = mapped_column(Boolean, default=True)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class AutomationRun(Base):
    """One policy acting on one customer for one cause; ``dedupe_key`` makes a replayed
    webhook, the watcher and a second replica all land on the same row."""

    __tablename__ = "automation_runs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    policy_id: Mapped[int] = mapped_column(Integer, index=True)
    policy_name: Mapped[str] = mapped_column(String(128))
    customer_ref: Mapped[str] = mapped_column(String(128), index=True)
    action: Mapped[str] = mapped_column(String(16))  # SUSPEND | UNSUSPEND | TERMINATE
    cause: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    invoice_connection: Mapped[str | None] = mapped_column(String(64))
    invoice_id: Mapped[str | None] = mapped_column(String(191))
    invoice_number: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    operation_id: Mapped[str | None] = mapped_column(String(36))
    error: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class AutomationStep(Base):
    """One service of a run: what was done to it, attempts, and the next retry."""

    __tablename__ = "automation_steps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(36), index=True)
    position: Mapped[int] = mapped_column(Integer)
    connection: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    resource_type: Mapped[str] = mapped_column(String(16))
    resource_id: Mapped[str] = mapped_column(String(191))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = _now()


class ServiceHold(Base):
    """Who keeps a service suspended: a policy for one invoice, or ``manual`` (an admin).
    A policy lifts only its own hold, and unsuspends only when no hold is left."""

    __tablename__ = "service_holds"
    connection: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(191), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255), primary_key=True)
    run_id: Mapped[str | None] = mapped_column(String(36))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()


class AutomationSwitch(Base):
    """Installation-wide switches of the automation (``paused``), shared by every replica."""

    __tablename__ = "automation_switches"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[bool] = mapped_column(Boolean)
    updated_by: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime] = _now()

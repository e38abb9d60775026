"""Data access for the gateway's own state. The only module that writes ORM queries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from panelql.db.models import AuditEntry, IdempotencyRecord, Operation


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    # SQLite hands datetimes back naive even for timezone=True columns.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


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

    @classmethod
    def of(cls, op: Operation) -> OperationRow:
        return cls(op.id, op.action, op.connection, op.target_id, op.status, op.progress,
                   op.step, op.error_code, op.error_message, dict(op.result or {}),
                   _aware(op.created_at), _aware(op.updated_at))


class Operations:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def create(self, action: str, connection: str, target_id: str,
                     status: str = "PENDING") -> OperationRow:
        now = utcnow()
        op = Operation(id=str(uuid.uuid4()), action=action, connection=connection,
                       target_id=target_id, status=status, result={}, created_at=now,
                       updated_at=now)
        async with self.sessions.begin() as session:
            session.add(op)
        return OperationRow.of(op)

    async def update(self, op_id: str, **values: Any) -> OperationRow:
        async with self.sessions.begin() as session:
            await session.execute(
                update(Operation).where(Operation.id == op_id).values(
                    **{"updated_at": utcnow(), **values}))
            op = await session.get(Operation, op_id)
            assert op is not None
            return OperationRow.of(op)

    async def get(self, op_id: str) -> OperationRow | None:
        async with self.sessions() as session:
            op = await session.get(Operation, op_id)
            return OperationRow.of(op) if op else None

    async def unfinished(self) -> list[OperationRow]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Operation).where(Operation.status.in_(("PENDING", "RUNNING"))))
            return [OperationRow.of(op) for op in rows]


@dataclass
class Claim:
    """Outcome of claiming an idempotency key."""

    state: str  # "new" (caller runs the action) | "done" (replay) | "busy" | "mismatch"
    response: dict[str, Any] | None = None


class Idempotency:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def claim(self, scope: str, key: str, request_hash: str, ttl: timedelta) -> Claim:
        now = utcnow()
        async with self.sessions.begin() as session:
            await session.execute(delete(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope, IdempotencyRecord.key == key,
                IdempotencyRecord.expires_at < now))
        try:
            async with self.sessions.begin() as session:
                session.add(IdempotencyRecord(scope=scope, key=key, request_hash=request_hash,
                                              state="in_progress", response=None,
                                              created_at=now, expires_at=now + ttl))
            return Claim("new")
        except IntegrityError:
            pass
        async with self.sessions() as session:
            record = await session.get(IdempotencyRecord, (scope, key))
        if record is None:  # expired and purged between the two steps: try once more
            return await self.claim(scope, key, request_hash, ttl)
        if record.request_hash != request_hash:
            return Claim("mismatch")
        if record.state == "done":
            return Claim("done", record.response)
        return Claim("busy")

    async def complete(self, scope: str, key: str, response: dict[str, Any]) -> None:
        async with self.sessions.begin() as session:
            await session.execute(update(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope, IdempotencyRecord.key == key,
            ).values(state="done", response=response))

    async def release(self, scope: str, key: str) -> None:
        """Forget a claim whose action failed before reaching the upstream, so a retry runs."""
        async with self.sessions.begin() as session:
            await session.execute(delete(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope, IdempotencyRecord.key == key))

    async def purge_expired(self) -> int:
        async with self.sessions.begin() as session:
            result = await session.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.expires_at < utcnow()))
            return int(getattr(result, "rowcount", 0) or 0)


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


class Audit:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def append(self, *, actor: str, action: str, target: str | None,
                     input_summary: dict[str, Any], outcome: str, error_code: str | None,
                     upstream_request_id: str | None, duration_ms: float) -> None:
        async with self.sessions.begin() as session:
            session.add(AuditEntry(at=utcnow(), actor=actor, action=action, target=target,
                                   input_summary=input_summary, outcome=outcome,
                                   error_code=error_code, upstream_request_id=upstream_request_id,
                                   duration_ms=duration_ms))

    async def search(self, *, action: str | None = None, target: str | None = None,
                     actor: str | None = None, outcome: str | None = None,
                     limit: int = 100, before_id: int | None = None) -> list[AuditRow]:
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if action:
            query = query.where(AuditEntry.action == action)
        if target:
            query = query.where(AuditEntry.target == target)
        if actor:
            query = query.where(AuditEntry.actor == actor)
        if outcome:
            query = query.where(AuditEntry.outcome == outcome)
        if before_id:
            query = query.where(AuditEntry.id < before_id)
        async with self.sessions() as session:
            rows = await session.scalars(query)
            return [AuditRow(r.id, _aware(r.at), r.actor, r.action, r.target,
                             dict(r.input_summary or {}), r.outcome, r.error_code,
                             r.upstream_request_id, r.duration_ms) for r in rows]

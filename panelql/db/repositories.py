"""Data access for the gateway's own state. The only module that writes ORM queries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from panelql.db.engine import Sessions
from panelql.db.models import AuditEntry, IdempotencyRecord, Operation
from panelql.domain.state import AuditRow, OperationRow

UNFINISHED = ("PENDING", "RUNNING")
AUTOMATION = "automation"  # Operation.connection of automation runs


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    # SQLite hands datetimes back naive even for timezone=True columns.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def operation_row(op: Operation) -> OperationRow:
    return OperationRow(op.id, op.action, op.connection, op.target_id, op.status, op.progress,
                        op.step, op.error_code, op.error_message, dict(op.result or {}),
                        _aware(op.created_at), _aware(op.updated_at), op.owner,
                        _aware(op.lease_until) if op.lease_until else None,
                        dict(op.follow) if op.follow else None)


class Operations:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def create(self, action: str, connection: str, target_id: str,
                     status: str = "PENDING", *, owner: str | None = None,
                     lease: timedelta | None = None) -> OperationRow:
        now = utcnow()
        op = Operation(id=str(uuid.uuid4()), action=action, connection=connection,
                       target_id=target_id, status=status, result={}, created_at=now,
                       updated_at=now, owner=owner,
                       lease_until=now + lease if lease is not None else None)
        async with self.sessions.write() as session:
            session.add(op)
        return operation_row(op)

    async def update(self, op_id: str, **values: Any) -> OperationRow:
        async with self.sessions.write() as session:
            await session.execute(
                update(Operation).where(Operation.id == op_id).values(
                    **{"updated_at": utcnow(), **values}))
            op = await session.get(Operation, op_id)
            assert op is not None
            return operation_row(op)

    async def get(self, op_id: str) -> OperationRow | None:
        async with self.sessions() as session:
            op = await session.get(Operation, op_id)
            return operation_row(op) if op else None

    async def unfinished(self) -> list[OperationRow]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Operation).where(Operation.status.in_(UNFINISHED)))
            return [operation_row(op) for op in rows]

    # -- leases: who follows an operation, and taking over from a replica that died ----------
    async def renew(self, owner: str, lease: timedelta) -> set[str]:
        """Extend the lease of every unfinished operation ``owner`` follows (one statement,
        whatever their number); returns their ids, so the owner notices any taken from it."""
        async with self.sessions.write() as session:
            await session.execute(
                update(Operation).where(Operation.owner == owner,
                                        Operation.status.in_(UNFINISHED))
                .values(lease_until=utcnow() + lease))
            ids = await session.scalars(select(Operation.id).where(
                Operation.owner == owner, Operation.status.in_(UNFINISHED)))
            return set(ids)

    async def orphaned(self) -> list[OperationRow]:
        """Unfinished operations whose follower stopped renewing (or never had one). Those of
        automation runs are not: the run keeps its own lease and is resumed by the automation
        pass (application/automation/runner.py)."""
        async with self.sessions() as session:
            rows = await session.scalars(select(Operation).where(
                Operation.status.in_(UNFINISHED), Operation.connection != AUTOMATION,
                or_(Operation.lease_until.is_(None), Operation.lease_until < utcnow())))
            return [operation_row(op) for op in rows]

    async def claim(self, op_id: str, owner: str, lease: timedelta) -> OperationRow | None:
        """Take an orphaned operation; None when it finished or another replica was quicker.
        The lease test sits in the UPDATE itself, so of two replicas claiming at once exactly
        one matches a row."""
        now = utcnow()
        async with self.sessions.write() as session:
            claimed = await session.execute(
                update(Operation).where(
                    Operation.id == op_id, Operation.status.in_(UNFINISHED),
                    or_(Operation.lease_until.is_(None), Operation.lease_until < now))
                .values(owner=owner, lease_until=now + lease))
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            op = await session.get(Operation, op_id)
            return operation_row(op) if op else None

    async def release(self, owner: str, op_ids: set[str]) -> None:
        """Hand operations back at shutdown: their lease ends now, so another replica (or this
        one's successor) takes them over at its next look instead of after the lease time."""
        if not op_ids:
            return
        async with self.sessions.write() as session:
            await session.execute(
                update(Operation).where(Operation.id.in_(op_ids), Operation.owner == owner,
                                        Operation.status.in_(UNFINISHED))
                .values(lease_until=utcnow() - timedelta(seconds=1)))


@dataclass
class Claim:
    """Outcome of claiming an idempotency key."""

    state: str  # "new" (caller runs the action) | "done" (replay) | "busy" | "mismatch"
    response: dict[str, Any] | None = None


class Idempotency:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def claim(self, scope: str, key: str, request_hash: str, ttl: timedelta) -> Claim:
        now = utcnow()
        async with self.sessions.write() as session:
            await session.execute(delete(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope, IdempotencyRecord.key == key,
                IdempotencyRecord.expires_at < now))
        try:
            async with self.sessions.write() as session:
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

    async def take_over(self, scope: str, key: str, request_hash: str,
                        older_than: timedelta) -> bool:
        """Claim an unfinished record whose run began before ``older_than`` ago, taken to have
        died with its process. The age test sits in the UPDATE, so of two retries taking over
        at once exactly one wins (the other sees the fresh claim and waits)."""
        now = utcnow()
        async with self.sessions.write() as session:
            result = await session.execute(update(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope, IdempotencyRecord.key == key,
                IdempotencyRecord.request_hash == request_hash,
                IdempotencyRecord.state == "in_progress",
                IdempotencyRecord.created_at < now - older_than,
            ).values(created_at=now))
            return int(getattr(result, "rowcount", 0) or 0) == 1

    async def complete(self, scope: str, key: str, response: dict[str, Any]) -> None:
        async with self.sessions.write() as session:
            await session.execute(update(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope, IdempotencyRecord.key == key,
            ).values(state="done", response=response))

    async def release(self, scope: str, key: str) -> None:
        """Forget a claim whose action failed before reaching the upstream, so a retry runs."""
        async with self.sessions.write() as session:
            await session.execute(delete(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope, IdempotencyRecord.key == key))

    async def purge_expired(self) -> int:
        async with self.sessions.write() as session:
            result = await session.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.expires_at < utcnow()))
            return int(getattr(result, "rowcount", 0) or 0)


class Audit:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def append(self, *, actor: str, action: str, target: str | None,
                     input_summary: dict[str, Any], outcome: str, error_code: str | None,
                     upstream_request_id: str | None, duration_ms: float) -> None:
        async with self.sessions.write() as session:
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

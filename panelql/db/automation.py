"""Stored state of billing automation: policies, runs and their steps, holds, switches.

Exactly-once comes from the database, not from who got an event first: a run is inserted with
a ``dedupe_key`` (policy, action, invoice) under a unique constraint, so a replayed webhook,
the watcher seeing the same change and a second replica receiving it over Redis all try the
same INSERT and only one succeeds. Whoever inserted it runs it, holding the run's lease; a run
whose lease ran out (its replica died) is claimed by a conditional UPDATE only one replica
can win, as operations are (repositories.Operations.claim).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.exc import IntegrityError

from panelql.db.engine import Sessions
from panelql.db.models import (
    AutomationPolicy,
    AutomationRun,
    AutomationStep,
    AutomationSwitch,
    ServiceHold,
)
from panelql.domain.automation import (
    OPEN_STEPS,
    UNFINISHED_RUNS,
    InvoiceCause,
    PolicyRow,
    PolicySpec,
    RunRow,
    RunStatus,
    ServiceRef,
    StepRow,
    StepStatus,
    Trigger,
)

PAUSED = "paused"


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _policy(row: AutomationPolicy) -> PolicyRow:
    return PolicyRow(row.id, row.name, row.enabled, Trigger(row.trigger), row.overdue_days,
                     list(row.kinds) if row.kinds is not None else None,
                     row.unsuspend_on_payment, row.terminate_after_days, row.final_backup,
                     row.dry_run, _aware(row.created_at) or utcnow(),
                     _aware(row.updated_at) or utcnow())


def _step(row: AutomationStep) -> StepRow:
    return StepRow(row.id, row.run_id, row.position, row.connection, row.kind,
                   row.resource_type, row.resource_id, row.status, row.attempts,
                   _aware(row.next_attempt_at), row.error, row.note, dict(row.detail or {}),
                   _aware(row.updated_at))


def _run(row: AutomationRun, steps: Sequence[AutomationStep] = ()) -> RunRow:
    invoice = (InvoiceCause(row.invoice_connection, row.invoice_id, row.invoice_number)
               if row.invoice_connection and row.invoice_id else None)
    return RunRow(row.id, row.policy_id, row.policy_name, row.customer_ref, row.action,
                  row.cause, row.source, row.status, row.dry_run, invoice, row.reason,
                  _aware(row.not_before), row.operation_id, row.error,
                  _aware(row.created_at) or utcnow(), _aware(row.updated_at) or utcnow(),
                  [_step(s) for s in steps])


class AutomationStore:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    # -- policies ---------------------------------------------------------------------------
    async def create_policy(self, spec: PolicySpec) -> PolicyRow:
        """Raises ValueError when the name is taken."""
        now = utcnow()
        row = AutomationPolicy(
            name=spec.name, enabled=spec.enabled, trigger=spec.trigger.value,
            overdue_days=spec.overdue_days, kinds=spec.kinds,
            unsuspend_on_payment=spec.unsuspend_on_payment,
            terminate_after_days=spec.terminate_after_days, final_backup=spec.final_backup,
            dry_run=spec.dry_run, created_at=now, updated_at=now)
        try:
            async with self.sessions.write() as session:
                session.add(row)
        except IntegrityError:
            raise ValueError(spec.name) from None
        return _policy(row)

    async def update_policy(self, policy_id: int, **values: Any) -> PolicyRow | None:
        if "trigger" in values and isinstance(values["trigger"], Trigger):
            values["trigger"] = values["trigger"].value
        try:
            async with self.sessions.write() as session:
                await session.execute(update(AutomationPolicy).where(
                    AutomationPolicy.id == policy_id).values(updated_at=utcnow(), **values))
                row = await session.get(AutomationPolicy, policy_id)
                return _policy(row) if row else None
        except IntegrityError:
            raise ValueError(str(values.get("name"))) from None

    async def delete_policy(self, policy_id: int) -> bool:
        async with self.sessions.write() as session:
            result = await session.execute(
                delete(AutomationPolicy).where(AutomationPolicy.id == policy_id))
            return bool(getattr(result, "rowcount", 0))

    async def policy(self, policy_id: int) -> PolicyRow | None:
        async with self.sessions() as session:
            row = await session.get(AutomationPolicy, policy_id)
            return _policy(row) if row else None

    async def policies(self) -> list[PolicyRow]:
        async with self.sessions() as session:
            rows = await session.scalars(select(AutomationPolicy).order_by(AutomationPolicy.id))
            return [_policy(r) for r in rows]

    # -- the global pause -------------------------------------------------------------------
    async def paused(self) -> bool:
        async with self.sessions() as session:
            row = await session.get(AutomationSwitch, PAUSED)
            return bool(row and row.value)

    async def set_paused(self, value: bool, by: str) -> None:
        async with self.sessions.write() as session:
            row = await session.get(AutomationSwitch, PAUSED)
            if row is None:
                session.add(AutomationSwitch(name=PAUSED, value=value, updated_by=by,
                                             updated_at=utcnow()))
            else:
                row.value, row.updated_by, row.updated_at = value, by, utcnow()

    # -- runs -------------------------------------------------------------------------------
    async def create_run(self, *, dedupe_key: str | None, policy: PolicyRow, customer_ref: str,
                         action: str, cause: str, source: str, status: str, dry_run: bool,
                         invoice: InvoiceCause | None, reason: str | None,
                         not_before: datetime | None, services: Sequence[ServiceRef],
                         statuses: Sequence[str], notes: Sequence[str | None] | None = None,
                         details: Sequence[dict[str, Any]] | None = None) -> RunRow | None:
        """Insert the run and its steps; None when a run with ``dedupe_key`` exists."""
        now = utcnow()
        run = AutomationRun(
            id=str(uuid.uuid4()), dedupe_key=dedupe_key, policy_id=policy.id,
            policy_name=policy.name, customer_ref=customer_ref, action=action, cause=cause,
            source=source, invoice_connection=invoice.connection if invoice else None,
            invoice_id=invoice.id if invoice else None,
            invoice_number=invoice.number if invoice else None, reason=reason, status=status,
            dry_run=dry_run, not_before=not_before, created_at=now, updated_at=now)
        steps = [AutomationStep(
            run_id=run.id, position=i, connection=s.connection, kind=s.kind,
            resource_type=s.resource_type, resource_id=s.resource_id, status=statuses[i],
            attempts=0, note=notes[i] if notes else None,
            detail=dict(details[i]) if details else {}, updated_at=now)
            for i, s in enumerate(services)]
        try:
            async with self.sessions.write() as session:
                session.add(run)
                await session.flush()  # the unique key decides here, before the steps
                session.add_all(steps)
        except IntegrityError:
            return None
        return _run(run, steps)

    async def run(self, run_id: str) -> RunRow | None:
        async with self.sessions() as session:
            row = await session.get(AutomationRun, run_id)
            if row is None:
                return None
            steps = await session.scalars(select(AutomationStep).where(
                AutomationStep.run_id == run_id).order_by(AutomationStep.position))
            return _run(row, list(steps))

    async def runs(self, *, customer_ref: str | None = None, policy_id: int | None = None,
                   statuses: Sequence[str] | None = None, limit: int = 50,
                   before: datetime | None = None) -> list[RunRow]:
        query = select(AutomationRun)
        if customer_ref is not None:
            query = query.where(AutomationRun.customer_ref == customer_ref)
        if policy_id is not None:
            query = query.where(AutomationRun.policy_id == policy_id)
        if statuses:
            query = query.where(AutomationRun.status.in_(list(statuses)))
        if before is not None:
            query = query.where(AutomationRun.created_at < before)
        query = query.order_by(AutomationRun.created_at.desc(), AutomationRun.id).limit(limit)
        async with self.sessions() as session:
            rows = list(await session.scalars(query))
            ids = [r.id for r in rows]
            steps = list(await session.scalars(select(AutomationStep).where(
                AutomationStep.run_id.in_(ids)).order_by(AutomationStep.position))) if ids else []
        by_run: dict[str, list[AutomationStep]] = {}
        for step in steps:
            by_run.setdefault(step.run_id, []).append(step)
        return [_run(r, by_run.get(r.id, [])) for r in rows]

    async def find_run(self, dedupe_key: str) -> RunRow | None:
        async with self.sessions() as session:
            row = await session.scalar(select(AutomationRun).where(
                AutomationRun.dedupe_key == dedupe_key))
        return await self.run(row.id) if row else None

    async def update_run(self, run_id: str, **values: Any) -> None:
        async with self.sessions.write() as session:
            await session.execute(update(AutomationRun).where(AutomationRun.id == run_id)
                                  .values(updated_at=utcnow(), **values))

    async def update_step(self, step_id: int, **values: Any) -> None:
        async with self.sessions.write() as session:
            await session.execute(update(AutomationStep).where(AutomationStep.id == step_id)
                                  .values(updated_at=utcnow(), **values))

    # -- who runs a run ---------------------------------------------------------------------
    async def claim(self, run_id: str, owner: str, lease: timedelta) -> bool:
        """Take the run unless another live replica holds it (one UPDATE decides)."""
        now = utcnow()
        async with self.sessions.write() as session:
            result = await session.execute(update(AutomationRun).where(
                AutomationRun.id == run_id,
                AutomationRun.status.in_([*UNFINISHED_RUNS, RunStatus.SCHEDULED.value]),
                or_(AutomationRun.lease_until.is_(None), AutomationRun.lease_until < now,
                    AutomationRun.owner == owner))
                .values(owner=owner, lease_until=now + lease))
            return bool(getattr(result, "rowcount", 0) == 1)

    async def release(self, run_id: str, owner: str) -> None:
        async with self.sessions.write() as session:
            await session.execute(update(AutomationRun).where(
                AutomationRun.id == run_id, AutomationRun.owner == owner)
                .values(lease_until=None))

    async def due(self, now: datetime | None = None) -> list[str]:
        """Runs that need someone: unfinished with a step to do now and nobody holding them,
        and terminations whose time has come."""
        now = now or utcnow()
        free = or_(AutomationRun.lease_until.is_(None), AutomationRun.lease_until < now)
        step_due = exists().where(
            AutomationStep.run_id == AutomationRun.id,
            or_(AutomationStep.status.in_([StepStatus.PENDING.value, StepStatus.ACTING.value]),
                and_(AutomationStep.status == StepStatus.RETRYING.value,
                     AutomationStep.next_attempt_at <= now)))
        async with self.sessions() as session:
            rows = await session.scalars(select(AutomationRun.id).where(free, or_(
                and_(AutomationRun.status.in_(list(UNFINISHED_RUNS)), step_due),
                and_(AutomationRun.status == RunStatus.SCHEDULED.value,
                     AutomationRun.not_before <= now))).order_by(AutomationRun.created_at))
            return list(rows)

    async def open_steps(self, run_id: str) -> int:
        async with self.sessions() as session:
            rows = await session.scalars(select(AutomationStep.id).where(
                AutomationStep.run_id == run_id, AutomationStep.status.in_(list(OPEN_STEPS))))
            return len(list(rows))

    # -- holds ------------------------------------------------------------------------------
    async def hold(self, service: ServiceRef, holder: str, run_id: str | None,
                   reason: str | None) -> None:
        try:
            async with self.sessions.write() as session:
                session.add(ServiceHold(
                    connection=service.connection, resource_type=service.resource_type,
                    resource_id=service.resource_id, holder=holder, run_id=run_id,
                    reason=reason, created_at=utcnow()))
        except IntegrityError:
            pass  # already held by the same holder: the goal holds

    async def lift(self, service: ServiceRef, holder: str | None = None) -> None:
        """Remove ``holder``'s hold (every hold when None: an admin unsuspended it)."""
        query = delete(ServiceHold).where(
            ServiceHold.connection == service.connection,
            ServiceHold.resource_type == service.resource_type,
            ServiceHold.resource_id == service.resource_id)
        if holder is not None:
            query = query.where(ServiceHold.holder == holder)
        async with self.sessions.write() as session:
            await session.execute(query)

    async def holders(self, service: ServiceRef) -> list[str]:
        async with self.sessions() as session:
            rows = await session.scalars(select(ServiceHold.holder).where(
                ServiceHold.connection == service.connection,
                ServiceHold.resource_type == service.resource_type,
                ServiceHold.resource_id == service.resource_id).order_by(ServiceHold.holder))
            return list(rows)

    async def held_by(self, holder: str) -> list[tuple[str, str, str]]:
        """(connection, resource_type, resource_id) of every service ``holder`` holds."""
        async with self.sessions() as session:
            rows = await session.execute(select(
                ServiceHold.connection, ServiceHold.resource_type, ServiceHold.resource_id)
                .where(ServiceHold.holder == holder).order_by(ServiceHold.created_at))
            return [(c, t, i) for c, t, i in rows]

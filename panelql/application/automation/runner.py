"""Runs one automation run: one Operation per run, a step per service, retries with backoff.

A run belongs to the replica that holds its lease (``automation_runs.owner``/``lease_until``,
renewed after every step). A step that fails is not the end of the run: the other services are
still handled, the failed one waits ``base * 2**(attempt-1)`` seconds (capped) and is tried
again by whichever replica runs the scheduled pass; after ``max_attempts`` it is FAILED and the
run with it, left visible in ``automationRuns`` and on the Operation, never dropped. A replica
that dies mid-run leaves steps PENDING or ACTING; the pass finds the run once the lease has
passed and resumes it (ACTING tells the step an earlier attempt may already have acted).

Every change is published on the bus: the run on ``automationRunUpdated``, the Operation on
``operationUpdated`` (its target is the customer reference).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from panelql.application.automation.steps import StepFailed, StepRunner
from panelql.application.errors import GatewayError
from panelql.application.gateway import Gateway
from panelql.db.automation import AutomationStore
from panelql.db.repositories import AUTOMATION
from panelql.domain.automation import (
    OPEN_STEPS,
    RunRow,
    RunStatus,
    StepRow,
    StepStatus,
)
from panelql.domain.state import OperationRow
from panelql.events.model import Source, StatusEvent, Topic
from panelql.observability import AUTOMATION_FAILURES, AUTOMATION_RUNS, AUTOMATION_STEPS
from panelql.providers.errors import NotFound, ProviderError
from panelql.settings import AutomationSettings

log = logging.getLogger("panelql.automation")
OPERATION_CONNECTION = AUTOMATION  # Operation.provider of automation runs
NOT_RETRIED = {"BAD_USER_INPUT", "NOT_SUPPORTED", "FORBIDDEN"}


def operation_action(action: str) -> str:
    return "automation" + action.capitalize()  # automationSuspend, …


@dataclass
class Backoff:
    base: float
    cap: float
    attempts: int

    def delay(self, attempt: int) -> float:
        return float(min(self.cap, self.base * 2 ** max(0, attempt - 1)))


class Runner:
    def __init__(self, gateway: Gateway, store: AutomationStore, settings: AutomationSettings,
                 owner: str) -> None:
        self.gateway = gateway
        self.store = store
        self.owner = owner
        self.lease = timedelta(seconds=settings.lease_seconds)
        self.backoff = Backoff(settings.retry_base_seconds, settings.retry_max_seconds,
                               settings.max_attempts)
        self.steps = StepRunner(gateway, store, gateway.settings.operation_poll_seconds)
        self._running: set[str] = set()

    async def execute(self, run_id: str) -> RunRow | None:
        """Run what is due of ``run_id`` unless another live replica holds it, or this one
        is already at it (the lease is per replica: the pass must not join a run it started)."""
        if run_id in self._running:
            return None
        self._running.add(run_id)
        try:
            if not await self.store.claim(run_id, self.owner, self.lease):
                return None
            try:
                return await self._execute(run_id)
            finally:
                await self.store.release(run_id, self.owner)
        finally:
            self._running.discard(run_id)

    async def _execute(self, run_id: str) -> RunRow | None:
        run = await self.store.run(run_id)
        if run is None:
            return None
        op = await self._operation(run)
        if run.status != RunStatus.RUNNING.value:
            await self.store.update_run(run.id, status=RunStatus.RUNNING.value)
            run.status = RunStatus.RUNNING.value
            await self.publish(run)
        total = max(len(run.steps), 1)
        for step in run.steps:
            if not _due(step):
                continue
            await self._op(op, "RUNNING", step=_label(step), progress=step.position / total)
            await self._step(run, step)
            await self.store.claim(run.id, self.owner, self.lease)  # renew
            await self.publish(await self.store.run(run.id) or run)
        return await self._settle(run.id, op)

    async def _step(self, run: RunRow, step: StepRow) -> None:
        try:
            outcome = await self.steps.run(run, step)
        except (GatewayError, ProviderError, StepFailed) as exc:
            await self._failed(run, step, exc)
            return
        except Exception as exc:  # a bug must not leave the step ACTING forever
            log.exception("automation step crashed", extra={"run": run.id})
            await self._failed(run, step, StepFailed(f"internal error ({type(exc).__name__})"))
            return
        await self.store.update_step(step.id, status=outcome.status.value, note=outcome.note,
                                     error=None, next_attempt_at=None)
        AUTOMATION_STEPS.labels(run.action, outcome.status.value.lower()).inc()

    async def _failed(self, run: RunRow, step: StepRow,
                      exc: GatewayError | ProviderError | StepFailed) -> None:
        code = getattr(exc, "code", "INTERNAL")
        message = getattr(exc, "message", None) or str(exc)
        AUTOMATION_FAILURES.labels(step.connection, code).inc()
        if isinstance(exc, NotFound) or code == "NOT_FOUND":
            await self.store.update_step(step.id, status=StepStatus.SKIPPED.value,
                                         note="the service no longer exists on the panel",
                                         error=None)
            AUTOMATION_STEPS.labels(run.action, "skipped").inc()
            return
        attempts = max(step.attempts, 1)
        if code in NOT_RETRIED or attempts >= self.backoff.attempts:
            await self.store.update_step(step.id, status=StepStatus.FAILED.value,
                                         error=f"{code}: {message}", next_attempt_at=None)
            AUTOMATION_STEPS.labels(run.action, "failed").inc()
            log.warning("automation step failed for good", extra={
                "run": run.id, "connection": step.connection, "code": code})
            return
        delay = self.backoff.delay(attempts)
        await self.store.update_step(
            step.id, status=StepStatus.RETRYING.value, error=f"{code}: {message}",
            next_attempt_at=datetime.now(UTC) + timedelta(seconds=delay))
        AUTOMATION_STEPS.labels(run.action, "retrying").inc()
        log.info("automation step will be retried", extra={
            "run": run.id, "connection": step.connection, "code": code, "in_seconds": delay})

    async def _settle(self, run_id: str, op: OperationRow) -> RunRow | None:
        run = await self.store.run(run_id)
        if run is None:
            return None
        waiting = [s for s in run.steps if s.status in OPEN_STEPS]
        failed = [s for s in run.steps if s.status == StepStatus.FAILED.value]
        if waiting:  # stays RUNNING; the scheduled pass retries when they are due
            error = "; ".join(f"{_label(s)}: {s.error}" for s in waiting if s.error) or None
            await self.store.update_run(run.id, error=error)
            await self._op(op, "RUNNING", step=_label(waiting[0]), error_message=error,
                           error_code="RETRYING" if error else None)
        else:
            status = RunStatus.FAILED if failed else RunStatus.SUCCEEDED
            error = "; ".join(f"{_label(s)}: {s.error}" for s in failed) or None
            await self.store.update_run(run.id, status=status.value, error=error)
            await self._op(op, status.value, progress=1.0, step=None,
                           error_code="STEP_FAILED" if failed else None, error_message=error)
            AUTOMATION_RUNS.labels(run.action, status.value.lower()).inc()
        settled = await self.store.run(run.id)
        if settled is not None:
            await self.publish(settled)
        return settled

    # -- the Operation and the bus ----------------------------------------------------------
    async def _operation(self, run: RunRow) -> OperationRow:
        if run.operation_id is not None:
            existing = await self.gateway.operations.get(run.operation_id)
            if existing is not None:
                return existing
        op = await self.gateway.operations.create(
            operation_action(run.action), OPERATION_CONNECTION, run.customer_ref,
            status="PENDING")
        await self.store.update_run(run.id, operation_id=op.id)
        run.operation_id = op.id
        return op

    async def _op(self, op: OperationRow, status: str, **values: object) -> None:
        before = op.status
        row = await self.gateway.operations.update(op.id, status=status, **values)
        op.status, op.step = row.status, row.step
        await self.gateway.bus.publish(StatusEvent(
            topic=Topic.OPERATION, connection=row.connection, resource_id=row.id,
            status=row.status, previous=before, source=Source.MUTATION,
            data={"action": row.action, "step": row.step, "progress": row.progress,
                  "target": row.target_id, "error": row.error_message,
                  "customer_ref": row.target_id}))

    async def publish(self, run: RunRow) -> None:
        await self.gateway.bus.publish(StatusEvent(
            topic=Topic.AUTOMATION, connection=OPERATION_CONNECTION, resource_id=run.id,
            status=run.status, previous=None, source=Source.MUTATION,
            data={"customer_ref": run.customer_ref, "policy": run.policy_name,
                  "action": run.action}))


def _due(step: StepRow) -> bool:
    if step.status in (StepStatus.PENDING.value, StepStatus.ACTING.value):
        return True
    return (step.status == StepStatus.RETRYING.value and step.next_attempt_at is not None
            and step.next_attempt_at <= datetime.now(UTC))


def _label(step: StepRow) -> str:
    # Operation.step holds 64 characters; the run's steps keep the full names.
    return f"{step.kind} {step.resource_type.lower()} {step.resource_id}"[:64]

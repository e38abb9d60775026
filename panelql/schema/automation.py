"""Billing automation in GraphQL: policies (admin), runs (billing.read, own customer only for
customer-bound keys), the global pause, and ``automationRunUpdated``.

Every mutation here runs through ``execution.execute`` (idempotencyKey, audit), like the
lifecycle mutations; the answers are re-read from the database, so a replay shows the current
state of what the first call created.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry

from panelql.application import ids
from panelql.application.automation import policies
from panelql.application.automation.subscriptions import watch_runs
from panelql.application.execution import ActionResult
from panelql.domain.automation import PolicyRow, PolicySpec, RunRow, StepRow, Trigger
from panelql.domain.records import Ref, ResourceType
from panelql.schema.actions import Key, run_action
from panelql.schema.enums import ProviderKind
from panelql.schema.types.common import Info


@strawberry.enum(description="What makes a policy act.")
class AutomationTrigger(enum.Enum):
    OVERDUE = "OVERDUE"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    DISPUTE = "DISPUTE"
    CANCELLATION = "CANCELLATION"


@strawberry.enum
class AutomationAction(enum.Enum):
    SUSPEND = "SUSPEND"
    UNSUSPEND = "UNSUSPEND"
    TERMINATE = "TERMINATE"


@strawberry.enum
class AutomationRunStatus(enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    PLANNED = "PLANNED"
    CANCELLED = "CANCELLED"


@strawberry.enum
class AutomationStepStatus(enum.Enum):
    PENDING = "PENDING"
    ACTING = "ACTING"
    DONE = "DONE"
    SKIPPED = "SKIPPED"
    RETRYING = "RETRYING"
    FAILED = "FAILED"
    PLANNED = "PLANNED"


@strawberry.type
class AutomationPolicy:
    row: strawberry.Private[PolicyRow]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field(description="False: the policy does nothing (its switch).")
    def enabled(self) -> bool:
        return self.row.enabled

    @strawberry.field
    def trigger(self) -> AutomationTrigger:
        return AutomationTrigger(self.row.trigger.value)

    @strawberry.field(description="OVERDUE: act once an open invoice is this many days past "
                                  "its due date.")
    def overdue_days(self) -> int:
        return self.row.overdue_days

    @strawberry.field(description="Only services on these kinds of panel; null: every kind.")
    def kinds(self) -> list[ProviderKind] | None:
        return [ProviderKind(k) for k in self.row.kinds] if self.row.kinds is not None else None

    @strawberry.field(description="Lift what this policy suspended once the invoice is paid.")
    def unsuspend_on_payment(self) -> bool:
        return self.row.unsuspend_on_payment

    @strawberry.field(description="CANCELLATION: terminate this long after the cancellation "
                                  "unless a time is given.")
    def terminate_after_days(self) -> float | None:
        return self.row.terminate_after_days

    @strawberry.field(description="Terminations back servers up first where the panel can.")
    def final_backup(self) -> bool:
        return self.row.final_backup

    @strawberry.field(description="Record what would happen (runs PLANNED) without acting.")
    def dry_run(self) -> bool:
        return self.row.dry_run

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field
    def updated_at(self) -> datetime:
        return self.row.updated_at


@strawberry.type(description="One service of a run.")
class AutomationStep:
    row: strawberry.Private[StepRow]

    @strawberry.field
    def position(self) -> int:
        return self.row.position

    @strawberry.field
    def provider(self) -> str:
        return self.row.connection

    @strawberry.field
    def kind(self) -> str:
        return self.row.kind

    @strawberry.field(description="Server or Account.")
    def resource_type(self) -> str:
        return self.row.resource_type

    @strawberry.field(description="Global ID of the service.")
    def resource(self) -> strawberry.ID:
        return strawberry.ID(ids.encode(Ref(self.row.connection,
                                            ResourceType(self.row.resource_type),
                                            self.row.resource_id)))

    @strawberry.field
    def status(self) -> AutomationStepStatus:
        return AutomationStepStatus(self.row.status)

    @strawberry.field
    def attempts(self) -> int:
        return self.row.attempts

    @strawberry.field(description="RETRYING: when the next attempt is due.")
    def next_attempt_at(self) -> datetime | None:
        return self.row.next_attempt_at

    @strawberry.field(description="The last failure (code: message).")
    def error(self) -> str | None:
        return self.row.error

    @strawberry.field(description="What was done, or why nothing was.")
    def note(self) -> str | None:
        return self.row.note


@strawberry.type(description="One policy acting on one customer for one cause.")
class AutomationRun:
    row: strawberry.Private[RunRow]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.row.id)

    @strawberry.field
    def policy_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.policy_id))

    @strawberry.field
    def policy_name(self) -> str:
        return self.row.policy_name

    @strawberry.field
    def customer_ref(self) -> str:
        return self.row.customer_ref

    @strawberry.field
    def action(self) -> AutomationAction:
        return AutomationAction(self.row.action)

    @strawberry.field(description="Why: overdue 4 day(s), invoice.paid, invoice.payment_failed, "
                                  "cancellation…")
    def cause(self) -> str:
        return self.row.cause

    @strawberry.field(description="What noticed it: WEBHOOK, WATCHER, SCHEDULE or MUTATION.")
    def source(self) -> str:
        return self.row.source

    @strawberry.field
    def status(self) -> AutomationRunStatus:
        return AutomationRunStatus(self.row.status)

    @strawberry.field
    def dry_run(self) -> bool:
        return self.row.dry_run

    @strawberry.field(description="Global ID of the invoice that caused it.")
    def invoice(self) -> strawberry.ID | None:
        cause = self.row.invoice
        if cause is None:
            return None
        return strawberry.ID(ids.encode(Ref(cause.connection, ResourceType.INVOICE, cause.id)))

    @strawberry.field
    def invoice_number(self) -> str | None:
        return self.row.invoice.number if self.row.invoice else None

    @strawberry.field(description="The suspension reason given to the panels.")
    def reason(self) -> str | None:
        return self.row.reason

    @strawberry.field(description="TERMINATE: not before this moment.")
    def not_before(self) -> datetime | None:
        return self.row.not_before

    @strawberry.field(description="The Operation following it (operation(id:)).")
    def operation(self) -> strawberry.ID | None:
        return strawberry.ID(self.row.operation_id) if self.row.operation_id else None

    @strawberry.field
    def error(self) -> str | None:
        return self.row.error

    @strawberry.field
    def steps(self) -> list[AutomationStep]:
        return [AutomationStep(row=s) for s in self.row.steps]

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field
    def updated_at(self) -> datetime:
        return self.row.updated_at


@strawberry.input
class AutomationPolicyInput:
    name: str
    trigger: AutomationTrigger
    overdue_days: int = 0
    kinds: list[ProviderKind] | None = strawberry.field(
        default=None, description="Only these kinds of panel; leave out for every kind.")
    unsuspend_on_payment: bool = True
    terminate_after_days: float | None = None
    final_backup: bool = True
    dry_run: bool = False
    enabled: bool = True

    def to_spec(self) -> PolicySpec:
        return PolicySpec(
            name=self.name, trigger=Trigger(self.trigger.value), overdue_days=self.overdue_days,
            kinds=[k.value for k in self.kinds] if self.kinds is not None else None,
            unsuspend_on_payment=self.unsuspend_on_payment,
            terminate_after_days=self.terminate_after_days, final_backup=self.final_backup,
            dry_run=self.dry_run, enabled=self.enabled)


@strawberry.input(description="Only the fields given change.")
class AutomationPolicyChanges:
    name: str | None = None
    enabled: bool | None = None
    overdue_days: int | None = None
    kinds: list[ProviderKind] | None = strawberry.UNSET
    unsuspend_on_payment: bool | None = None
    terminate_after_days: float | None = None
    final_backup: bool | None = None
    dry_run: bool | None = None

    def to_changes(self) -> dict[str, object]:
        changes: dict[str, object] = {
            "name": self.name, "enabled": self.enabled, "overdue_days": self.overdue_days,
            "unsuspend_on_payment": self.unsuspend_on_payment,
            "terminate_after_days": self.terminate_after_days,
            "final_backup": self.final_backup, "dry_run": self.dry_run}
        if self.kinds is not strawberry.UNSET:
            changes["kinds"] = [k.value for k in self.kinds] if self.kinds else None
        return changes


@strawberry.type
class AutomationPolicyPayload:
    policy: AutomationPolicy | None
    replayed: bool


@strawberry.type
class AutomationRunsPayload:
    runs: list[AutomationRun]
    replayed: bool


@strawberry.type
class AutomationQuery:
    @strawberry.field(description="Every billing automation policy.")
    async def automation_policies(self, info: Info) -> list[AutomationPolicy]:
        rows = await policies.store(info.context.gateway).policies()
        return [AutomationPolicy(row=r) for r in rows]

    @strawberry.field(description="True while the global pause holds every policy.")
    async def automation_paused(self, info: Info) -> bool:
        return await policies.store(info.context.gateway).paused()

    @strawberry.field(description="Automation runs, newest first. A customer-bound key sees "
                                  "only its own customer's.")
    async def automation_runs(self, info: Info, customer_ref: str | None = None,
                              policy: strawberry.ID | None = None,
                              status: list[AutomationRunStatus] | None = None,
                              first: int = 50) -> list[AutomationRun]:
        rows = await policies.runs(
            info.context, customer_ref,
            policies.policy_id(str(policy)) if policy is not None else None,
            [s.value for s in status] if status else None, first)
        return [AutomationRun(row=r) for r in rows]

    @strawberry.field
    async def automation_run(self, info: Info, id: strawberry.ID) -> AutomationRun:
        return AutomationRun(row=await policies.run(info.context, str(id)))


async def _runs(info: Info, run_ids: list[str]) -> list[AutomationRun]:
    out = []
    for run_id in run_ids:
        out.append(AutomationRun(row=await policies.run(info.context, run_id)))
    return out


@strawberry.type
class AutomationMutation:
    @strawberry.mutation(description="Create a billing automation policy.")
    async def create_automation_policy(self, info: Info, input: AutomationPolicyInput,
                                       idempotency_key: Key = None) -> AutomationPolicyPayload:
        async def run() -> ActionResult:
            row = await policies.create(info.context.gateway, input.to_spec())
            return ActionResult(target=f"policy:{row.id}", data={"policy": row.id})
        result = await run_action(info, None, idempotency_key,
                                  {"input": _plain(input.to_spec())}, run)
        return await _policy_payload(info, result)

    @strawberry.mutation(description="Change a policy; enabled: false is its off switch.")
    async def update_automation_policy(self, info: Info, id: strawberry.ID,
                                       changes: AutomationPolicyChanges,
                                       idempotency_key: Key = None) -> AutomationPolicyPayload:
        policy_id = policies.policy_id(str(id))

        async def run() -> ActionResult:
            row = await policies.update(info.context.gateway, policy_id, changes.to_changes())
            return ActionResult(target=f"policy:{row.id}", data={"policy": row.id})
        result = await run_action(info, f"policy:{id}", idempotency_key,
                                  {"id": str(id), "changes": changes.to_changes()}, run)
        return await _policy_payload(info, result)

    @strawberry.mutation(description="Delete a policy; its runs and holds stay on record.")
    async def delete_automation_policy(self, info: Info, id: strawberry.ID,
                                       idempotency_key: Key = None) -> bool:
        policy_id = policies.policy_id(str(id))

        async def run() -> ActionResult:
            await policies.get(info.context.gateway, policy_id)
            deleted = await policies.delete(info.context.gateway, policy_id)
            return ActionResult(target=f"policy:{id}", data={"deleted": deleted})
        result = await run_action(info, f"policy:{id}", idempotency_key, {"id": str(id)}, run)
        return bool(result.data.get("deleted"))

    @strawberry.mutation(description="The global pause: while true no policy acts (events "
                                     "are not queued; the scheduled pass catches up on "
                                     "invoice states once resumed).")
    async def set_automation_paused(self, info: Info, paused: bool,
                                    idempotency_key: Key = None) -> bool:
        async def run() -> ActionResult:
            await policies.store(info.context.gateway).set_paused(paused,
                                                                  info.context.viewer.name)
            return ActionResult(target="automation", data={"paused": paused})
        result = await run_action(info, "automation", idempotency_key, {"paused": paused}, run)
        return bool(result.data.get("paused"))

    @strawberry.mutation(description="Apply a policy to one invoice now: suspend for an open "
                                     "one, lift for a paid one. dryRun: only list what would "
                                     "happen (a PLANNED run).")
    async def run_automation_policy(self, info: Info, policy: strawberry.ID,
                                    invoice: strawberry.ID, dry_run: bool = False,
                                    idempotency_key: Key = None) -> AutomationRunsPayload:
        async def run() -> ActionResult:
            row = await policies.get(info.context.gateway, policies.policy_id(str(policy)))
            made = await policies.run_for_invoice(info.context, row, str(invoice), dry_run)
            return ActionResult(target=str(invoice), data={"runs": [r.id for r in made]})
        result = await run_action(info, str(invoice), idempotency_key,
                                  {"policy": str(policy), "invoice": str(invoice),
                                   "dry_run": dry_run}, run)
        return AutomationRunsPayload(runs=await _runs(info, result.data.get("runs", [])),
                                     replayed=result.replayed)

    @strawberry.mutation(description="A customer cancelled: suspend their services now and "
                                     "terminate them at terminateAt (default: the policy's "
                                     "terminateAfterDays from now), with a final backup where "
                                     "the panel has backups.")
    async def cancel_customer_services(self, info: Info, policy: strawberry.ID,
                                       customer_ref: str, terminate_at: datetime | None = None,
                                       dry_run: bool = False, idempotency_key: Key = None
                                       ) -> AutomationRunsPayload:
        async def run() -> ActionResult:
            row = await policies.get(info.context.gateway, policies.policy_id(str(policy)))
            made = await policies.cancel(info.context, row, customer_ref, terminate_at, dry_run)
            return ActionResult(target=f"customer:{customer_ref}",
                                data={"runs": [r.id for r in made]})
        result = await run_action(info, f"customer:{customer_ref}", idempotency_key,
                                  {"policy": str(policy), "customer_ref": customer_ref,
                                   "terminate_at": terminate_at.isoformat() if terminate_at
                                   else None, "dry_run": dry_run}, run)
        return AutomationRunsPayload(runs=await _runs(info, result.data.get("runs", [])),
                                     replayed=result.replayed)

    @strawberry.mutation(description="Retry the failed and waiting steps of a run now.")
    async def retry_automation_run(self, info: Info, id: strawberry.ID,
                                   idempotency_key: Key = None) -> AutomationRun:
        async def run() -> ActionResult:
            await policies.run(info.context, str(id))
            await policies.engine(info.context.gateway).retry_now(str(id))
            return ActionResult(target=f"run:{id}")
        await run_action(info, f"run:{id}", idempotency_key, {"id": str(id)}, run)
        return AutomationRun(row=await policies.run(info.context, str(id)))

    @strawberry.mutation(description="Call off a SCHEDULED termination (the customer stayed).")
    async def call_off_automation_run(self, info: Info, id: strawberry.ID,
                                      idempotency_key: Key = None) -> AutomationRun:
        async def run() -> ActionResult:
            await policies.call_off(info.context, str(id))
            return ActionResult(target=f"run:{id}")
        await run_action(info, f"run:{id}", idempotency_key, {"id": str(id)}, run)
        return AutomationRun(row=await policies.run(info.context, str(id)))


async def _policy_payload(info: Info, result: ActionResult) -> AutomationPolicyPayload:
    policy_id = result.data.get("policy")
    row = await policies.store(info.context.gateway).policy(int(policy_id)) \
        if policy_id is not None else None
    return AutomationPolicyPayload(policy=AutomationPolicy(row=row) if row else None,
                                   replayed=result.replayed)


def _plain(spec: PolicySpec) -> dict[str, object]:
    return {"name": spec.name, "trigger": spec.trigger.value, "overdue_days": spec.overdue_days,
            "kinds": spec.kinds, "unsuspend_on_payment": spec.unsuspend_on_payment,
            "terminate_after_days": spec.terminate_after_days,
            "final_backup": spec.final_backup, "dry_run": spec.dry_run,
            "enabled": spec.enabled}


@strawberry.type
class AutomationSubscription:
    @strawberry.subscription(description="Every change of an automation run (or of one run). "
                                         "A customer-bound key gets its own customer's only.")
    async def automation_run_updated(self, info: Info, id: strawberry.ID | None = None,
                                     customer_ref: str | None = None
                                     ) -> AsyncGenerator[AutomationRun, None]:
        async for row in watch_runs(info.context, str(id) if id else None, customer_ref):
            yield AutomationRun(row=row)

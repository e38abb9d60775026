"""Managing automation: policies, the global pause, reading runs, asking for runs by hand.

Used by the GraphQL schema (admin scope) and the CLI alike, so both validate the same way.
Reading runs is the only part a customer-bound key may use, and it only ever sees its own
customer's runs.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from panelql.application import ids
from panelql.application.automation.engine import Automation
from panelql.application.context import Context
from panelql.application.customers import valid_customer_ref
from panelql.application.errors import BadUserInput, NotFoundError, StateConflict
from panelql.application.gateway import Gateway
from panelql.db.automation import AutomationStore
from panelql.domain.automation import (
    InvoiceCause,
    PolicyRow,
    PolicySpec,
    RunRow,
    RunStatus,
    Trigger,
)
from panelql.domain.records import ResourceType
from panelql.domain.status import InvoiceStatus
from panelql.providers.contract import BillingProvider
from panelql.providers.registry import known_kinds

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:/()-]{0,127}$")
MAX_DAYS = 3650


def store(gateway: Gateway) -> AutomationStore:
    engine = gateway.automation
    if isinstance(engine, Automation):
        return engine.store
    return AutomationStore(gateway.sessions)


def engine(gateway: Gateway) -> Automation:
    found = gateway.automation
    if not isinstance(found, Automation):
        raise StateConflict("billing automation is switched off on this gateway "
                            "(PANELQL_AUTOMATION__ENABLED)", currentStatus="DISABLED")
    return found


def validate(spec: PolicySpec) -> PolicySpec:
    if not _NAME.match(spec.name):
        raise BadUserInput("name must be 1 to 128 letters, digits, spaces or _.:/()-",
                           field="name")
    if not 0 <= spec.overdue_days <= MAX_DAYS:
        raise BadUserInput(f"overdueDays must be 0 to {MAX_DAYS}", field="overdueDays")
    if spec.trigger is not Trigger.OVERDUE and spec.overdue_days:
        raise BadUserInput("overdueDays only applies to OVERDUE policies", field="overdueDays")
    if spec.terminate_after_days is not None and not 0 <= spec.terminate_after_days <= MAX_DAYS:
        raise BadUserInput(f"terminateAfterDays must be 0 to {MAX_DAYS}",
                           field="terminateAfterDays")
    if spec.terminate_after_days is not None and spec.trigger is not Trigger.CANCELLATION:
        raise BadUserInput("terminateAfterDays only applies to CANCELLATION policies",
                           field="terminateAfterDays")
    kinds = None
    if spec.kinds is not None:
        kinds = sorted({k.lower() for k in spec.kinds})
        unknown = sorted(set(kinds) - set(known_kinds()))
        if unknown or not kinds:
            raise BadUserInput(f"unknown kinds: {', '.join(unknown)}" if unknown
                               else "give at least one kind, or leave kinds out for all",
                               field="kinds", allowed=known_kinds())
    return replace(spec, kinds=kinds)


async def create(gateway: Gateway, spec: PolicySpec) -> PolicyRow:
    return await create_in(store(gateway), spec)


async def create_in(policies: AutomationStore, spec: PolicySpec) -> PolicyRow:
    spec = validate(spec)
    try:
        return await policies.create_policy(spec)
    except ValueError:
        raise StateConflict(f"a policy named {spec.name!r} exists",
                            currentStatus="EXISTS") from None


async def get(gateway: Gateway, policy_id: int) -> PolicyRow:
    return await get_in(store(gateway), policy_id)


async def get_in(policies: AutomationStore, policy_id: int) -> PolicyRow:
    found = await policies.policy(policy_id)
    if found is None:
        raise NotFoundError("no automation policy with this id")
    return found


async def update(gateway: Gateway, policy_id: int, changes: dict[str, Any]) -> PolicyRow:
    return await update_in(store(gateway), policy_id, changes)


async def update_in(policies: AutomationStore, policy_id: int, changes: dict[str, Any]
                    ) -> PolicyRow:
    current = await get_in(policies, policy_id)
    fields = {k: v for k, v in changes.items() if v is not None or k == "kinds"}
    spec = validate(PolicySpec(
        name=fields.get("name", current.name), trigger=current.trigger,
        overdue_days=fields.get("overdue_days", current.overdue_days),
        kinds=fields.get("kinds", current.kinds),
        unsuspend_on_payment=fields.get("unsuspend_on_payment", current.unsuspend_on_payment),
        terminate_after_days=fields.get("terminate_after_days", current.terminate_after_days),
        final_backup=fields.get("final_backup", current.final_backup),
        dry_run=fields.get("dry_run", current.dry_run),
        enabled=fields.get("enabled", current.enabled)))
    try:
        row = await policies.update_policy(
            policy_id, name=spec.name, overdue_days=spec.overdue_days, kinds=spec.kinds,
            unsuspend_on_payment=spec.unsuspend_on_payment,
            terminate_after_days=spec.terminate_after_days, final_backup=spec.final_backup,
            dry_run=spec.dry_run, enabled=spec.enabled)
    except ValueError:
        raise StateConflict(f"a policy named {spec.name!r} exists",
                            currentStatus="EXISTS") from None
    if row is None:
        raise NotFoundError("no automation policy with this id")
    return row


async def delete(gateway: Gateway, policy_id: int) -> bool:
    return await store(gateway).delete_policy(policy_id)


def policy_id(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise BadUserInput("not an automation policy id", field="policy") from None


# -- runs ------------------------------------------------------------------------------------
def visible_customer(ctx: Context, requested: str | None) -> str | None:
    """A customer-bound key sees its own customer's runs, whatever it asks for."""
    bound = ctx.viewer.customer_ref
    if bound is None:
        return requested
    return bound if requested in (None, bound) else "\x00nobody"


async def runs(ctx: Context, customer_ref: str | None, policy: int | None,
               statuses: list[str] | None, limit: int) -> list[RunRow]:
    if not 1 <= limit <= 200:
        raise BadUserInput("first must be 1 to 200", field="first")
    return await store(ctx.gateway).runs(
        customer_ref=visible_customer(ctx, customer_ref), policy_id=policy,
        statuses=statuses, limit=limit)


async def run(ctx: Context, run_id: str) -> RunRow:
    try:
        uuid.UUID(run_id)
    except ValueError:
        raise BadUserInput("not an automation run id", field="id") from None
    found = await store(ctx.gateway).run(run_id)
    bound = ctx.viewer.customer_ref
    if found is None or (bound is not None and found.customer_ref != bound):
        raise NotFoundError("no automation run with this id")
    return found


async def run_for_invoice(ctx: Context, policy: PolicyRow, invoice_id: str, dry_run: bool
                          ) -> list[RunRow]:
    """Apply one policy to one invoice now (``dryRun``: only say what would happen)."""
    if policy.trigger is Trigger.CANCELLATION:
        raise BadUserInput("CANCELLATION policies act through cancelCustomerServices",
                           field="policy")
    automation = engine(ctx.gateway)
    ref = ids.decode(invoice_id, ResourceType.INVOICE)
    provider = ctx.gateway.providers.get(ref.connection)
    if not isinstance(provider, BillingProvider):
        raise NotFoundError("invoice not found")
    invoice = (await provider.get_invoices([ref.id])).get(ref.id)
    if invoice is None:
        raise NotFoundError("invoice not found")
    customer = await automation.customer_of(invoice)
    if customer is None:
        raise StateConflict("the invoice's billing customer is linked to no customer "
                            "reference (linkCustomer with billingCustomer)",
                            currentStatus="UNLINKED")
    cause = InvoiceCause(invoice.connection, invoice.id, invoice.number)
    if invoice.status in (InvoiceStatus.PAID, InvoiceStatus.VOID):
        made = await automation.release(policy, cause, customer, "MUTATION",
                                        f"invoice.{invoice.status.value.lower()}",
                                        dry_run=dry_run)
    elif invoice.status is InvoiceStatus.OPEN:
        made = await automation.suspend(policy, cause, customer, "MUTATION", "asked by hand",
                                        dry_run=dry_run, dedupe=not dry_run)
    else:
        raise StateConflict("only open (to suspend) or paid/void (to lift) invoices make a "
                            "policy act", currentStatus=invoice.status.value)
    if made is None and not dry_run:
        existing = await automation.store.runs(customer_ref=customer, policy_id=policy.id,
                                               limit=5)
        return [r for r in existing if r.invoice is not None and r.invoice.id == invoice.id][:1]
    return [made] if made is not None else []


async def cancel(ctx: Context, policy: PolicyRow, customer_ref: str,
                 terminate_at: datetime | None, dry_run: bool) -> list[RunRow]:
    if policy.trigger is not Trigger.CANCELLATION:
        raise BadUserInput("the policy is not a CANCELLATION policy", field="policy")
    customer_ref = valid_customer_ref(customer_ref)
    now = datetime.now(UTC)
    if terminate_at is None:
        terminate_at = now + timedelta(days=policy.terminate_after_days or 0)
    if terminate_at.tzinfo is None:
        terminate_at = terminate_at.replace(tzinfo=UTC)
    suspended, terminating = await engine(ctx.gateway).cancel(
        policy, customer_ref, terminate_at, "MUTATION", dry_run=dry_run)
    return [r for r in (suspended, terminating) if r is not None]


async def call_off(ctx: Context, run_id: str) -> RunRow:
    """Cancel a scheduled termination before its time (the customer came back)."""
    found = await run(ctx, run_id)
    if found.status != RunStatus.SCHEDULED.value:
        raise StateConflict("only a SCHEDULED termination can be called off",
                            currentStatus=found.status)
    await store(ctx.gateway).update_run(found.id, status=RunStatus.CANCELLED.value)
    return await run(ctx, run_id)

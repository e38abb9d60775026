"""Triggers: what makes a policy act, and the one place that turns a cause into a run.

- **Bus events** (every replica taps its bus): invoice status changes from signed webhooks
  (Stripe, PayPal: at once), from the watcher's invoice polling (providers or events without
  webhooks) and from the gateway's own invoice mutations. PAID (or VOID) lifts what a policy
  put on for that invoice; an event whose type is a failed payment or an opened dispute
  starts the PAYMENT_FAILED or DISPUTE policies; an OPEN invoice past its due date by the
  policy's days starts the OVERDUE ones.
- **The scheduled pass**, every ``automation.pass_seconds`` on the one replica holding the
  ``automation-pass`` lease: reads the invoices of every linked billing customer (so "N days
  overdue" fires when the Nth day comes, with no event at all), resumes runs whose replica
  died, retries failed steps when due, and carries out terminations whose time has come.
- **Cancellations**, asked for through GraphQL or the CLI.

Every cause maps to one ``dedupe_key``; the INSERT of the run is where duplicates die (see
db/automation.py), so the three sources and any number of replicas act once per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from panelql.application.automation import services
from panelql.application.automation.runner import Runner
from panelql.application.customer_scope import BILLING_CUSTOMER
from panelql.application.gateway import Gateway
from panelql.db.automation import AutomationStore
from panelql.domain.automation import (
    InvoiceCause,
    PolicyRow,
    RunAction,
    RunRow,
    RunStatus,
    ServiceRef,
    StepStatus,
    Trigger,
    holder_for,
    suspend_key,
    unsuspend_key,
)
from panelql.domain.records import InvoiceRecord
from panelql.domain.status import InvoiceStatus, ServerStatus
from panelql.events import background
from panelql.events.bus import Tappable
from panelql.events.lease import Leases, LocalLeases, leases_for
from panelql.events.model import Source, StatusEvent, Topic
from panelql.observability import AUTOMATION_RUNS
from panelql.providers.contract import BillingProvider
from panelql.providers.errors import ProviderError

log = logging.getLogger("panelql.automation")
PASS_LEASE = "automation-pass"

# What makes PAYMENT_FAILED and DISPUTE policies act. The webhook receivers mark payment events
# with ``payment`` (SUCCEEDED, FAILED, REFUNDED; providers/*/receiver.py); a FAILED one on an open
# invoice is a failed payment. Event types besides, per the providers' own event lists: Stripe
# (docs.stripe.com/api/events/types: invoice.payment_failed, charge.failed,
# charge.dispute.created) and PayPal (developer.paypal.com/api/rest/webhooks/event-names:
# PAYMENT.CAPTURE.DENIED, PAYMENT.CAPTURE.REVERSED — a chargeback —, CUSTOMER.DISPUTE.CREATED).
PAYMENT_FAILED_TYPES = frozenset({
    "invoice.payment_failed", "charge.failed", "payment_intent.payment_failed",
    "PAYMENT.CAPTURE.DENIED", "PAYMENT.CAPTURE.DECLINED",
})
DISPUTE_TYPES = frozenset({"charge.dispute.created", "CUSTOMER.DISPUTE.CREATED",
                           "PAYMENT.CAPTURE.REVERSED"})
# A dispute may come after the money arrived (a chargeback): the invoice then reads paid or
# refunded, not open.
DISPUTABLE = (InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.PARTIALLY_REFUNDED,
              InvoiceStatus.REFUNDED)
SETTLED = (InvoiceStatus.PAID, InvoiceStatus.VOID)

REASONS = {
    Trigger.OVERDUE: "Payment overdue - Invoice #{}",
    Trigger.PAYMENT_FAILED: "Payment failed - Invoice #{}",
    Trigger.DISPUTE: "Payment disputed - Invoice #{}",
}


def days_overdue(invoice: InvoiceRecord, now: datetime) -> float | None:
    if invoice.status is not InvoiceStatus.OPEN or invoice.due_date is None:
        return None
    return (now - invoice.due_date).total_seconds() / 86400


class Automation:
    def __init__(self, gateway: Gateway, leases: Leases | None = None) -> None:
        self.gateway = gateway
        self.settings = gateway.settings.automation
        self.store = AutomationStore(gateway.sessions)
        self.owner = secrets.token_hex(8)
        self.runner = Runner(gateway, self.store, self.settings, self.owner)
        self.leases: Leases = leases or LocalLeases()
        self._events: asyncio.Queue[StatusEvent] = asyncio.Queue(10_000)
        self._tasks: set[asyncio.Task[object]] = set()
        self._untap: object = None
        self.passes = 0  # scheduled passes this replica ran (holding the lease)

    @classmethod
    def for_gateway(cls, gateway: Gateway) -> Automation:
        settings = gateway.settings
        return cls(gateway, leases_for(settings, settings.automation.lease_seconds))

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        if not self.settings.enabled:
            return
        bus = self.gateway.bus
        if isinstance(bus, Tappable):  # sees every event without counting as a watcher
            self._untap = bus.tap(self._note, raw=True)
        self._spawn(self._consume(), "automation-events")
        self._spawn(self._pass_forever(), "automation-pass")

    def _spawn(self, work: object, name: str) -> asyncio.Task[object]:
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(
            work, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def aclose(self) -> None:
        if callable(self._untap):
            self._untap()
        await background.stop(list(self._tasks), "automation loops")
        await self.leases.aclose()

    def _note(self, event: StatusEvent) -> None:
        if event.topic is Topic.INVOICE:
            try:
                self._events.put_nowait(event)
            except asyncio.QueueFull:  # the scheduled pass reads invoice states anyway
                log.warning("automation event queue full; the scheduled pass will catch up")

    async def _consume(self) -> None:
        while True:
            event = await self._events.get()
            try:
                await self.on_invoice_event(event)
            except Exception:  # one bad event must not stop the automation
                if background.being_cancelled():
                    raise asyncio.CancelledError from None
                log.exception("automation could not handle an invoice event")

    async def _pass_forever(self) -> None:
        while True:
            try:
                await self.scheduled_pass()
            except Exception:  # the database or a panel may be away; next pass
                if background.being_cancelled():
                    raise asyncio.CancelledError from None
                log.exception("automation pass failed")
            await asyncio.sleep(self.settings.pass_seconds)

    # -- triggers ---------------------------------------------------------------------------
    async def on_invoice_event(self, event: StatusEvent) -> list[RunRow]:
        if await self.store.paused():
            return []
        provider = self.gateway.providers.get(event.connection)
        if not isinstance(provider, BillingProvider):
            return []
        policies = [p for p in await self.store.policies() if p.enabled]
        if not policies:
            return []
        invoice = (await provider.get_invoices([event.resource_id])).get(event.resource_id)
        if invoice is None:
            return []
        customer = await self.customer_of(invoice)
        if customer is None:
            return []
        source = {Source.WEBHOOK: "WEBHOOK", Source.WATCHER: "WATCHER"}.get(
            event.source, "MUTATION")
        event_type, payment = event.data.get("event_type"), event.data.get("payment")
        return await self.evaluate(invoice, customer, source, policies,
                                   event_type=event_type if isinstance(event_type, str) else None,
                                   payment=payment if isinstance(payment, str) else None)

    async def customer_of(self, invoice: InvoiceRecord) -> str | None:
        if invoice.customer_id is None:
            return None
        link = await self.gateway.customer_links.owner_of(
            invoice.connection, BILLING_CUSTOMER, invoice.customer_id)
        return link.customer_ref if link is not None else None

    async def evaluate(self, invoice: InvoiceRecord, customer_ref: str, source: str,
                       policies: Sequence[PolicyRow], *, event_type: str | None = None,
                       payment: str | None = None, now: datetime | None = None
                       ) -> list[RunRow]:
        """Start what ``policies`` say about this invoice now; returns the runs created."""
        now = now or datetime.now(UTC)
        cause = InvoiceCause(invoice.connection, invoice.id, invoice.number)
        created: list[RunRow | None] = []
        for policy in policies:
            if policy.trigger is Trigger.CANCELLATION:
                continue
            fires = self.fires(policy, invoice, event_type, payment, now)
            if fires is None and invoice.status in SETTLED:
                # A dispute is not settled by the invoice reading paid: lifted by hand only.
                if policy.unsuspend_on_payment and policy.trigger is not Trigger.DISPUTE:
                    created.append(await self.release(policy, cause, customer_ref, source,
                                                      f"invoice.{invoice.status.value.lower()}"))
                continue
            if fires is not None:
                created.append(await self.suspend(policy, cause, customer_ref, source, fires))
        return [r for r in created if r is not None]

    @staticmethod
    def fires(policy: PolicyRow, invoice: InvoiceRecord, event_type: str | None,
               payment: str | None, now: datetime) -> str | None:
        """The cause this policy acts on for this invoice now, or None."""
        if policy.trigger is Trigger.OVERDUE:
            late = days_overdue(invoice, now)
            if late is not None and late > 0 and late >= policy.overdue_days:
                return f"overdue {int(late)} day(s)"
            return None
        if policy.trigger is Trigger.PAYMENT_FAILED:
            failed = payment == "FAILED" or event_type in PAYMENT_FAILED_TYPES
            return (event_type or "payment failed") if failed and \
                invoice.status is InvoiceStatus.OPEN else None
        if event_type in DISPUTE_TYPES and invoice.status in DISPUTABLE:
            return event_type
        return None

    # -- the runs ---------------------------------------------------------------------------
    async def suspend(self, policy: PolicyRow, invoice: InvoiceCause, customer_ref: str,
                      source: str, cause: str, *, dry_run: bool = False,
                      dedupe: bool = True) -> RunRow | None:
        dry = dry_run or policy.dry_run
        key = suspend_key(policy.id, invoice, dry) if dedupe else None
        if key is not None and await self.store.find_run(key) is not None:
            return None  # cheap early exit; the INSERT below decides races
        if not dry and await self.store.find_run(unsuspend_key(policy.id, invoice)):
            return None  # already paid and lifted: an old overdue read must not re-suspend
        found = await services.of_customer(self.gateway, customer_ref, policy)
        reason = REASONS.get(policy.trigger, "Suspended - Invoice #{}").format(invoice.label)
        return await self._create(
            policy, customer_ref, RunAction.SUSPEND, cause, source, dry, invoice, reason,
            None, key, [c.service for c in found], [c.cannot for c in found], [{}] * len(found))

    async def release(self, policy: PolicyRow, invoice: InvoiceCause, customer_ref: str,
                      source: str, cause: str, *, dry_run: bool = False) -> RunRow | None:
        """Lift what ``policy`` suspended for ``invoice``: nothing if it suspended nothing."""
        dry = dry_run or policy.dry_run
        if dry:
            suspended = await self.store.find_run(suspend_key(policy.id, invoice, True)) \
                or await self.store.find_run(suspend_key(policy.id, invoice, False))
        else:
            suspended = await self.store.find_run(suspend_key(policy.id, invoice, False))
        if suspended is None:
            return None
        key = None if dry_run else (f"dry:{unsuspend_key(policy.id, invoice)}" if dry
                                    else unsuspend_key(policy.id, invoice))
        if key is not None and await self.store.find_run(key) is not None:
            return None
        holder = holder_for(policy.id, invoice, customer_ref)
        if dry:  # what the suspension would have held
            held = [ServiceRef(s.connection, s.kind, s.resource_type, s.resource_id)
                    for s in suspended.steps if s.status in (StepStatus.PLANNED.value,
                                                             StepStatus.DONE.value)]
        else:
            held = [services.service_of(self.gateway, c, t, i)
                    for c, t, i in await self.store.held_by(holder)]
        running = {(s.connection, s.resource_type, s.resource_id) for s in suspended.steps
                   if s.detail.get("power_before") == ServerStatus.RUNNING.value}
        details = [{"holder": holder, "start": (h.connection, h.resource_type, h.resource_id)
                    in running} for h in held]
        return await self._create(
            policy, customer_ref, RunAction.UNSUSPEND, cause, source, dry, invoice, None, None,
            key, held, [None] * len(held), details)

    async def cancel(self, policy: PolicyRow, customer_ref: str, terminate_at: datetime,
                     source: str, *, dry_run: bool = False) -> tuple[RunRow | None,
                                                                     RunRow | None]:
        """Suspend now, terminate at ``terminate_at`` (cancellation at period end)."""
        dry = dry_run or policy.dry_run
        found = await services.of_customer(self.gateway, customer_ref, policy)
        stamp = terminate_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        base = f"{policy.id}:{customer_ref}:{stamp}"
        reason = f"Service cancelled - will be deleted at {stamp}"  # seed 000's words
        now_key = None if dry_run else f"{'dry:' if dry else ''}CANCEL-SUSPEND:{base}"
        later_key = None if dry_run else f"{'dry:' if dry else ''}TERMINATE:{base}"
        suspended = await self._create(
            policy, customer_ref, RunAction.SUSPEND, "cancellation", source, dry, None, reason,
            None, now_key, [c.service for c in found], [c.cannot for c in found],
            [{}] * len(found))
        terminating = await self._create(
            policy, customer_ref, RunAction.TERMINATE, "cancellation", source, dry, None, reason,
            terminate_at, later_key, [c.service for c in found],
            [None if c.cannot is None else c.cannot.replace("suspend", "terminate")
             for c in found], [{"final_backup": policy.final_backup}] * len(found))
        return suspended, terminating

    async def _create(self, policy: PolicyRow, customer_ref: str, action: RunAction,
                      cause: str, source: str, dry: bool, invoice: InvoiceCause | None,
                      reason: str | None, not_before: datetime | None, key: str | None,
                      targets: Sequence[ServiceRef], cannot: Sequence[str | None],
                      details: Sequence[dict[str, object]]) -> RunRow | None:
        statuses = [StepStatus.SKIPPED.value if c is not None else
                    StepStatus.PLANNED.value if dry else StepStatus.PENDING.value
                    for c in cannot]
        status = (RunStatus.PLANNED if dry else
                  RunStatus.SCHEDULED if not_before is not None else RunStatus.PENDING)
        run = await self.store.create_run(
            dedupe_key=key, policy=policy, customer_ref=customer_ref, action=action.value,
            cause=cause[:64], source=source, status=status.value, dry_run=dry,
            invoice=invoice, reason=reason, not_before=not_before, services=targets,
            statuses=statuses, notes=list(cannot), details=details)
        if run is None:
            return None  # another replica, or an earlier delivery, created it
        AUTOMATION_RUNS.labels(action.value, "planned" if dry else "created").inc()
        log.info("automation run created", extra={
            "run": run.id, "policy": policy.name, "customer": customer_ref,
            "action": action.value, "cause": cause, "dry_run": dry})
        await self.runner.publish(run)
        if status is RunStatus.PENDING:
            self._spawn(self.runner.execute(run.id), f"automation-run:{run.id}")
        return run

    # -- the scheduled pass -----------------------------------------------------------------
    async def scheduled_pass(self, now: datetime | None = None) -> None:
        if not await self.leases.hold(PASS_LEASE):
            return
        if await self.store.paused():
            return
        policies = [p for p in await self.store.policies() if p.enabled]
        if policies:
            await self._read_invoices(policies, now)
        for run_id in await self.store.due(now):
            await self.runner.execute(run_id)
        self.passes += 1

    async def _read_invoices(self, policies: list[PolicyRow], now: datetime | None) -> None:
        for provider in self.gateway.of_family(BillingProvider):
            links = await self.gateway.customer_links.of_connection(provider.name,
                                                                    (BILLING_CUSTOMER,))
            owners = {link.resource_id: link.customer_ref for link in links}
            if not owners:
                continue
            try:
                invoices = await provider.list_invoices(customer_ids=sorted(owners))
            except ProviderError as exc:
                log.warning("automation pass could not read invoices", extra={
                    "connection": provider.name, "code": exc.code})
                continue
            for invoice in invoices:
                customer = owners.get(invoice.customer_id or "")
                if customer is not None:
                    await self.evaluate(invoice, customer, "SCHEDULE", policies, now=now)

    async def retry_now(self, run_id: str) -> RunRow | None:
        """Make every RETRYING or FAILED step of the run due now and run it."""
        run = await self.store.run(run_id)
        if run is None or run.dry_run:
            return run
        for step in run.steps:
            if step.status in (StepStatus.RETRYING.value, StepStatus.FAILED.value):
                await self.store.update_step(step.id, status=StepStatus.RETRYING.value,
                                             next_attempt_at=datetime.now(UTC)
                                             - timedelta(seconds=1))
        if run.status == RunStatus.FAILED.value:
            await self.store.update_run(run.id, status=RunStatus.RUNNING.value)
        await self.runner.execute(run_id)
        return await self.store.run(run_id)

    async def drain(self) -> None:
        """Wait for the runs this replica started (tests, shutdown of the CLI)."""
        while True:
            running = [t for t in self._tasks if t.get_name().startswith("automation-run:")]
            if not running:
                return
            with contextlib.suppress(Exception):
                await asyncio.gather(*running, return_exceptions=True)

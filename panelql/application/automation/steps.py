"""What one step does to one service, and the holds that make payment lift only our own.

Every call goes through ``execution.execute`` as the policy (actor ``automation:policy:<id>``)
with a key per run, step and attempt, so it is audited like any mutation (input: the policy,
the invoice and the run) and a step replayed inside one attempt never calls the panel twice.

Suspend: put the hold on first, then suspend. A service that was already suspended before the
policy acted (by hand, or outside PanelQL) is not ours: the hold comes off again and the step is
SKIPPED, so the payment never lifts it. Already suspended by another policy's hold: ours is
added beside it (both invoices must be settled). Unsuspend: lift our hold; if another hold is
left (an admin's ``manual`` one, another invoice's) the service stays suspended; else unsuspend.
Terminate: delete (servers with a final backup where the panel can take one), wait for the
deletion to finish, drop every hold.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from panelql.application import account_actions, ids, server_actions
from panelql.application.context import Context, Viewer
from panelql.application.errors import GatewayError, StateConflict
from panelql.application.execution import ActionResult, execute
from panelql.application.gateway import Gateway
from panelql.application.probes import read_status
from panelql.db.automation import AutomationStore
from panelql.domain.automation import (
    ACTOR_PREFIX,
    MANUAL_HOLD,
    RunAction,
    RunRow,
    ServiceRef,
    StepRow,
    StepStatus,
    holder_for,
    unsuspend_key,
)
from panelql.domain.records import PowerAction, Ref, ResourceType
from panelql.domain.status import ServerStatus
from panelql.providers.contract import Capability, ComputeProvider
from panelql.providers.errors import ProviderError

UNFINISHED_OPS = ("PENDING", "RUNNING")


@dataclass(frozen=True)
class Outcome:
    status: StepStatus
    note: str


class StepFailed(Exception):
    """A step's upstream work ended badly (the deletion's operation failed)."""

    code = "PROVIDER_ERROR"
    retryable = True


def actor(run: RunRow) -> str:
    return f"{ACTOR_PREFIX}policy:{run.policy_id}"


def is_automation(viewer: Viewer) -> bool:
    return viewer.name.startswith(ACTOR_PREFIX)


def context_for(gateway: Gateway, run: RunRow) -> Context:
    return Context.create(gateway, viewer=Viewer(name=actor(run), scopes=frozenset({"admin"})))


def service(step: StepRow) -> ServiceRef:
    return ServiceRef(step.connection, step.kind, step.resource_type, step.resource_id)


def describe(holder: str) -> str:
    if holder == MANUAL_HOLD:
        return "an admin (suspended by hand)"
    parts = holder.split(":")
    if len(parts) >= 4 and parts[2] == "cancellation":
        return f"policy {parts[1]} (cancellation)"
    return f"policy {parts[1]} (invoice {parts[-1]})" if len(parts) >= 4 else holder


class StepRunner:
    def __init__(self, gateway: Gateway, store: AutomationStore, poll_seconds: float) -> None:
        self.gateway = gateway
        self.store = store
        self.poll_seconds = poll_seconds

    async def run(self, run: RunRow, step: StepRow) -> Outcome:
        action = RunAction(run.action)
        if action is RunAction.SUSPEND:
            return await self._suspend(run, step)
        if action is RunAction.UNSUSPEND:
            return await self._unsuspend(run, step)
        return await self._terminate(run, step)

    async def _call(self, run: RunRow, step: StepRow, verb: str, extra: dict[str, Any],
                    work: Any) -> ActionResult:
        ctx = context_for(self.gateway, run)
        gid = ids.encode(Ref(step.connection, ResourceType(step.resource_type),
                             step.resource_id))
        noun = "Server" if step.resource_type == ResourceType.SERVER.value else "Account"
        values = {"id": gid, "policy": run.policy_name, "policyId": run.policy_id,
                  "invoice": run.invoice.label if run.invoice else None,
                  "invoiceId": run.invoice.id if run.invoice else None,
                  "customerRef": run.customer_ref, "run": run.id, **extra}
        key = f"automation:{run.id}:{step.position}:{step.attempts}:{verb}"
        result: ActionResult = await execute(ctx, f"{verb}{noun}", gid, values, key,
                                             lambda: work(ctx, gid))
        return result

    async def _suspend(self, run: RunRow, step: StepRow) -> Outcome:
        target = service(step)
        holder = holder_for(run.policy_id, run.invoice, run.customer_ref)
        acted_before = step.attempts > 0  # an earlier attempt may have suspended it
        if not acted_before and await self.settled_meanwhile(run):
            return Outcome(StepStatus.SKIPPED, "the invoice was paid before this step ran")
        await self.store.hold(target, holder, run.id, run.reason)
        await self._acting(step)
        reason = run.reason
        if step.resource_type == ResourceType.SERVER.value:
            await self._note_power(step)
            result = await self._call(
                run, step, "suspend", {"reason": reason},
                lambda ctx, gid: server_actions.suspend(ctx, gid, reason, True))
        else:
            result = await self._call(
                run, step, "suspend", {"reason": reason},
                lambda ctx, gid: account_actions.suspend(ctx, gid, reason))
        if result.data.get("changed") is not False or acted_before:
            return Outcome(StepStatus.DONE, f"suspended: {reason}")
        others = [h for h in await self.store.holders(target) if h != holder]
        if any(h != MANUAL_HOLD for h in others):
            return Outcome(StepStatus.DONE, "already suspended by "
                           + ", ".join(describe(h) for h in others)
                           + "; this invoice holds it too")
        await self.store.lift(target, holder)
        return Outcome(StepStatus.SKIPPED, "already suspended before this policy acted (by "
                       "hand or outside PanelQL): left to whoever suspended it, and the "
                       "payment will not lift it")

    async def _unsuspend(self, run: RunRow, step: StepRow) -> Outcome:
        target = service(step)
        await self._acting(step)
        suspended_by = str(step.detail.get("holder") or "")
        if suspended_by:
            await self.store.lift(target, suspended_by)
        others = await self.store.holders(target)
        if others:
            return Outcome(StepStatus.SKIPPED, "left suspended: still held by "
                           + ", ".join(describe(h) for h in others))
        if step.resource_type == ResourceType.SERVER.value:
            result = await self._call(run, step, "unsuspend", {},
                                      lambda ctx, gid: server_actions.unsuspend(ctx, gid))
        else:
            result = await self._call(run, step, "unsuspend", {},
                                      lambda ctx, gid: account_actions.unsuspend(ctx, gid))
        if step.detail.get("start"):  # also on a retry whose unsuspend was done before
            return Outcome(StepStatus.DONE, await self._start(run, step))
        if result.data.get("changed") is False:
            return Outcome(StepStatus.DONE, "was no longer suspended")
        return Outcome(StepStatus.DONE, "unsuspended")

    async def _start(self, run: RunRow, step: StepRow) -> str:
        """Power a server back on that was running when the policy suspended it (suspending
        stops it; it is started again after payment)."""
        try:
            await self._call(run, step, "start", {},
                             lambda ctx, gid: server_actions.power(ctx, gid, PowerAction.START))
        except StateConflict:  # the panel started it itself (ProxmoxWP does)
            return "unsuspended (it started on its own)"
        except (GatewayError, ProviderError) as exc:
            # The suspension is lifted, which is what the payment asked; a server that will
            # not start is the panel's problem, reported here and in the audit log.
            return f"unsuspended; starting it again failed ({exc.code}: {exc.message})"
        return "unsuspended and started again (it was running)"

    async def _note_power(self, step: StepRow) -> None:
        """Remember whether the server was running, so the payment can start it again."""
        if "power_before" in step.detail:
            return
        provider = self.gateway.providers.get(step.connection)
        if not isinstance(provider, ComputeProvider):
            return
        status = await read_status(provider, step.resource_id)
        step.detail = {**step.detail, "power_before": status.value if status else None}
        await self.store.update_step(step.id, detail=step.detail)

    async def settled_meanwhile(self, run: RunRow) -> bool:
        """A suspension whose invoice was paid (and lifted) while it waited does nothing."""
        if run.invoice is None:
            return False
        return await self.store.find_run(unsuspend_key(run.policy_id, run.invoice)) is not None

    async def _terminate(self, run: RunRow, step: StepRow) -> Outcome:
        target = service(step)
        operation = step.detail.get("operation")
        if isinstance(operation, str) and await self._finished_ok(operation):
            await self.store.lift(target)
            return Outcome(StepStatus.DONE, "terminated")
        await self._acting(step)
        if step.resource_type == ResourceType.SERVER.value:
            provider = self.gateway.providers.get(step.connection)
            backup = bool(step.detail.get("final_backup", True)) and provider is not None \
                and provider.supports(Capability.BACKUP_CREATE)
            if backup and isinstance(provider, ComputeProvider) \
                    and await read_status(provider, step.resource_id) is ServerStatus.SUSPENDED:
                # Panels refuse to back up a suspended server (Catalyst 423, ProxmoxWP 401):
                # lift the suspension for the backup; the deletion stops it again first.
                await self._call(run, step, "unsuspend", {"for": "final backup"},
                                 lambda ctx, gid: server_actions.unsuspend(ctx, gid))
            result = await self._call(
                run, step, "delete", {"final_backup": backup},
                lambda ctx, gid: server_actions.delete(ctx, gid, backup))
            if result.operation_id is not None:
                await self.store.update_step(step.id, detail={**step.detail,
                                                              "operation": result.operation_id})
                await self._wait(result.operation_id)
            note = "terminated after a final backup" if backup else "terminated"
        else:
            await self._call(run, step, "delete", {},
                             lambda ctx, gid: account_actions.delete(ctx, gid))
            note = "terminated"
        await self.store.lift(target)
        return Outcome(StepStatus.DONE, note)

    async def _acting(self, step: StepRow) -> None:
        step.attempts += 1
        await self.store.update_step(step.id, status=StepStatus.ACTING.value,
                                     attempts=step.attempts)

    async def _finished_ok(self, operation_id: str) -> bool:
        row = await self.gateway.operations.get(operation_id)
        if row is None or row.status == "FAILED":
            return False
        if row.status in UNFINISHED_OPS:
            await self._wait(operation_id)
        return True

    async def _wait(self, operation_id: str) -> None:
        """Until the deletion's operation ends; a failed one fails the step (retried)."""
        while True:
            row = await self.gateway.operations.get(operation_id)
            if row is None or row.status not in UNFINISHED_OPS:
                break
            await asyncio.sleep(self.poll_seconds)
        if row is not None and row.status == "FAILED":
            raise StepFailed(row.error_message or "the termination failed")

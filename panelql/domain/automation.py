"""The vocabulary of billing-driven automation: policies, runs, steps and holds.

A *policy* says what to do to a customer's services when an invoice of theirs is overdue by N
days (or a payment fails, or a dispute opens), when it is paid, or when the customer cancels. A
*run* is one policy acting on one customer for one cause (an invoice, a cancellation), with a
*step* per service. A *hold* records who keeps a service suspended, so that a payment lifts
exactly what the policy put on, never what an admin suspended by hand.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Trigger(enum.Enum):
    OVERDUE = "OVERDUE"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    DISPUTE = "DISPUTE"
    CANCELLATION = "CANCELLATION"


class RunAction(enum.Enum):
    SUSPEND = "SUSPEND"
    UNSUSPEND = "UNSUSPEND"
    TERMINATE = "TERMINATE"


class RunStatus(enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"  # acting, or waiting to retry a step (see the steps)
    SCHEDULED = "SCHEDULED"  # a termination waiting for its time
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"  # a step failed for good; the others are done
    PLANNED = "PLANNED"  # a dry run: the steps say what would have happened
    CANCELLED = "CANCELLED"  # e.g. a termination called off, or the invoice paid first


UNFINISHED_RUNS = (RunStatus.PENDING.value, RunStatus.RUNNING.value)


class StepStatus(enum.Enum):
    PENDING = "PENDING"
    ACTING = "ACTING"  # the call may have reached the panel: a resume must not assume not
    DONE = "DONE"
    SKIPPED = "SKIPPED"  # nothing to do, or not ours to do (the note says why)
    RETRYING = "RETRYING"  # failed, tried again at next_attempt_at
    FAILED = "FAILED"  # gave up; left visible
    PLANNED = "PLANNED"  # dry run


OPEN_STEPS = (StepStatus.PENDING.value, StepStatus.ACTING.value, StepStatus.RETRYING.value)
MANUAL_HOLD = "manual"
ACTOR_PREFIX = "automation:"  # viewer name of a policy acting (audit actor, idempotency scope)


@dataclass(frozen=True)
class PolicyRow:
    id: int
    name: str
    enabled: bool
    trigger: Trigger
    overdue_days: int
    kinds: list[str] | None
    unsuspend_on_payment: bool
    terminate_after_days: float | None
    final_backup: bool
    dry_run: bool
    created_at: datetime
    updated_at: datetime

    def admits(self, kind: str) -> bool:
        return self.kinds is None or kind in self.kinds


@dataclass(frozen=True)
class PolicySpec:
    """What an admin sets; validated in the application layer."""

    name: str
    trigger: Trigger
    overdue_days: int = 0
    kinds: list[str] | None = None
    unsuspend_on_payment: bool = True
    terminate_after_days: float | None = None
    final_backup: bool = True
    dry_run: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class InvoiceCause:
    connection: str
    id: str
    number: str | None

    @property
    def label(self) -> str:
        return self.number or self.id


@dataclass
class StepRow:
    id: int
    run_id: str
    position: int
    connection: str
    kind: str
    resource_type: str
    resource_id: str
    status: str
    attempts: int = 0
    next_attempt_at: datetime | None = None
    error: str | None = None
    note: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None


@dataclass
class RunRow:
    id: str
    policy_id: int
    policy_name: str
    customer_ref: str
    action: str
    cause: str
    source: str
    status: str
    dry_run: bool
    invoice: InvoiceCause | None
    reason: str | None
    not_before: datetime | None
    operation_id: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    steps: list[StepRow] = field(default_factory=list)


@dataclass(frozen=True)
class ServiceRef:
    """A service a run acts on: a server or a hosting account on one connection."""

    connection: str
    kind: str
    resource_type: str  # "Server" | "Account"
    resource_id: str


def holder_for(policy_id: int, invoice: InvoiceCause | None, customer_ref: str) -> str:
    """The hold a policy puts on for one cause; the matching payment lifts only this one."""
    if invoice is not None:
        return f"policy:{policy_id}:{invoice.connection}:{invoice.id}"
    return f"policy:{policy_id}:cancellation:{customer_ref}"


# One cause, one key: the unique constraint on ``automation_runs.dedupe_key`` is where a
# replayed webhook, the watcher and a second replica meet (db/automation.py).
def suspend_key(policy_id: int, invoice: InvoiceCause, dry_run: bool) -> str:
    return f"{'dry:' if dry_run else ''}SUSPEND:{policy_id}:{invoice.connection}:{invoice.id}"


def unsuspend_key(policy_id: int, invoice: InvoiceCause) -> str:
    return f"UNSUSPEND:{policy_id}:{invoice.connection}:{invoice.id}"

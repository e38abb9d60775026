"""When a policy acts on an invoice: the trigger rules, without a database or a panel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from panelql.application.automation.engine import Automation, days_overdue
from panelql.domain.automation import (
    InvoiceCause,
    PolicyRow,
    Trigger,
    holder_for,
    suspend_key,
    unsuspend_key,
)
from panelql.domain.records import InvoiceRecord, Money
from panelql.domain.status import InvoiceStatus

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


def policy(trigger: Trigger, days: int = 3, kinds: list[str] | None = None) -> PolicyRow:
    return PolicyRow(1, "p", True, trigger, days, kinds, True, None, True, False, NOW, NOW)


def invoice(status: InvoiceStatus, due_days_ago: float | None) -> InvoiceRecord:
    zero = Money(Decimal("0"), "USD")
    due = NOW - timedelta(days=due_days_ago) if due_days_ago is not None else None
    return InvoiceRecord("stripe", "in_1", "SIM-1", status, None, zero, zero, zero,
                         due_date=due, customer_id="cus_1")


@pytest.mark.parametrize(("status", "late", "days", "fires"), [
    (InvoiceStatus.OPEN, 4, 3, True),
    (InvoiceStatus.OPEN, 3, 3, True),
    (InvoiceStatus.OPEN, 2.9, 3, False),
    (InvoiceStatus.OPEN, 0.1, 0, True),  # overdueDays 0: as soon as it is past due
    (InvoiceStatus.OPEN, -1, 0, False),  # not due yet
    (InvoiceStatus.OPEN, None, 0, False),  # no due date (charged automatically)
    (InvoiceStatus.PAID, 10, 3, False),
    (InvoiceStatus.DRAFT, 10, 3, False),
])
def test_overdue_policies_count_days_past_the_due_date(status: InvoiceStatus,
                                                        late: float | None, days: int,
                                                        fires: bool) -> None:
    got = Automation.fires(policy(Trigger.OVERDUE, days), invoice(status, late), None, None,
                           NOW)
    assert (got is not None) == fires


def test_payment_failed_needs_a_failed_payment_on_an_open_invoice() -> None:
    rule = policy(Trigger.PAYMENT_FAILED, 0)
    open_ = invoice(InvoiceStatus.OPEN, None)
    assert Automation.fires(rule, open_, "invoice.payment_failed", "FAILED", NOW) \
        == "invoice.payment_failed"
    assert Automation.fires(rule, open_, "PAYMENT.CAPTURE.DENIED", None, NOW) is not None
    assert Automation.fires(rule, open_, "invoice.finalized", None, NOW) is None
    assert Automation.fires(rule, invoice(InvoiceStatus.PAID, None), "invoice.payment_failed",
                            "FAILED", NOW) is None


def test_disputes_fire_also_on_paid_invoices_and_nothing_else_does() -> None:
    rule = policy(Trigger.DISPUTE, 0)
    reversed_ = invoice(InvoiceStatus.PARTIALLY_REFUNDED, None)
    assert Automation.fires(rule, reversed_, "PAYMENT.CAPTURE.REVERSED", "REFUNDED", NOW) \
        == "PAYMENT.CAPTURE.REVERSED"
    assert Automation.fires(rule, invoice(InvoiceStatus.PAID, None), "charge.dispute.created",
                            None, NOW) is not None
    # PayPal's receiver passes the dispute on with the invoice's own (paid) status, no mark.
    assert Automation.fires(rule, invoice(InvoiceStatus.PAID, None), "CUSTOMER.DISPUTE.CREATED",
                            None, NOW) == "CUSTOMER.DISPUTE.CREATED"
    assert Automation.fires(rule, invoice(InvoiceStatus.OPEN, 9), "invoice.overdue", None,
                            NOW) is None
    assert Automation.fires(rule, invoice(InvoiceStatus.VOID, None),
                            "charge.dispute.created", None, NOW) is None


def test_keys_and_holds_name_policy_and_invoice() -> None:
    cause = InvoiceCause("stripe", "in_1", "SIM-1")
    assert suspend_key(1, cause, False) != suspend_key(1, cause, True)
    assert suspend_key(1, cause, False) != suspend_key(2, cause, False)
    assert unsuspend_key(1, cause) != suspend_key(1, cause, False)
    assert holder_for(1, cause, "whmcs:1") == "policy:1:stripe:in_1"
    assert holder_for(1, None, "whmcs:1") == "policy:1:cancellation:whmcs:1"
    assert days_overdue(invoice(InvoiceStatus.OPEN, 2), NOW) == pytest.approx(2)
    assert policy(Trigger.OVERDUE, kinds=["catalyst"]).admits("catalyst")
    assert not policy(Trigger.OVERDUE, kinds=["catalyst"]).admits("directadmin")
    assert policy(Trigger.OVERDUE).admits("anything")

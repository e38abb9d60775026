"""The ledger's rules one by one; tests/e2e/test_event_order.py runs them through real sources."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from panelql.events.ledger import StatusLedger
from panelql.events.model import Source, StatusEvent, Topic

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ev(status: str, previous: str | None, source: Source = Source.MUTATION, *, seconds: float = 0,
       topic: Topic = Topic.SERVER) -> StatusEvent:
    return StatusEvent(topic=topic, connection="c", resource_id="s1", status=status,
                       previous=previous, source=source, at=T0 + timedelta(seconds=seconds))


def pairs(events: list[StatusEvent]) -> list[tuple[str | None, str]]:
    return [(e.previous, e.status) for e in events]


def test_previous_is_the_last_delivered_status() -> None:
    ledger = StatusLedger()
    assert pairs(ledger.chain(ev("STOPPING", "RUNNING"))) == [("RUNNING", "STOPPING")]
    assert pairs(ledger.chain(ev("STARTING", "STOPPING", Source.WATCHER, seconds=2))) == [
        ("STOPPING", "STARTING")]


def test_a_repeat_is_dropped() -> None:
    ledger = StatusLedger()
    ledger.chain(ev("STOPPED", "STOPPING"))
    assert ledger.chain(ev("STOPPED", "RUNNING", Source.WATCHER, seconds=1)) == []


def test_payment_news_is_not_a_repeat_but_its_confirmation_is() -> None:
    ledger = StatusLedger()

    def invoice(status: str, payment: str | None, seconds: float) -> StatusEvent:
        return StatusEvent(topic=Topic.INVOICE, connection="c", resource_id="in_1",
                           status=status, previous=None, source=Source.WEBHOOK,
                           at=T0 + timedelta(seconds=seconds),
                           data={"payment": payment} if payment else {})
    assert len(ledger.chain(invoice("OPEN", None, 0))) == 1
    failed = ledger.chain(invoice("OPEN", "FAILED", 1))  # a declined charge: still OPEN
    assert pairs(failed) == [("OPEN", "OPEN")]
    assert ledger.chain(invoice("OPEN", "FAILED", 2)) == []  # the same news again
    assert len(ledger.chain(invoice("PAID", "SUCCEEDED", 3))) == 1
    assert ledger.chain(invoice("PAID", "SUCCEEDED", 4)) == []  # the webhook confirming it
    assert ledger.chain(invoice("PAID", None, 5)) == []


def test_a_stale_watcher_read_is_dropped() -> None:
    ledger = StatusLedger()
    ledger.chain(ev("STOPPED", "STOPPING", seconds=5))
    assert ledger.chain(ev("STOPPING", "RUNNING", Source.WATCHER, seconds=4)) == []


def test_a_gap_the_source_saw_is_filled() -> None:
    ledger = StatusLedger()
    ledger.chain(ev("STOPPING", "RUNNING"))
    assert pairs(ledger.chain(ev("STARTING", "STOPPED", seconds=3))) == [
        ("STOPPING", "STOPPED"), ("STOPPED", "STARTING")]


def test_the_watchers_snapshot_is_no_gap_it_saw() -> None:
    ledger = StatusLedger()
    ledger.chain(ev("STARTING", "STOPPED"))  # a start, whose tracker the polls left alone
    assert pairs(ledger.chain(ev("RUNNING", "STOPPED", Source.WATCHER, seconds=1))) == [
        ("STARTING", "RUNNING")]


def test_operation_progress_is_not_a_repeat() -> None:
    ledger = StatusLedger()
    for _ in range(3):
        assert len(ledger.chain(ev("RUNNING", "PENDING", topic=Topic.OPERATION))) == 1


def test_capacity_bounds_memory() -> None:
    ledger = StatusLedger(capacity=2)
    for n in range(5):
        ledger.chain(StatusEvent(topic=Topic.SERVER, connection="c", resource_id=str(n),
                                 status="RUNNING", previous=None, source=Source.WATCHER))
    assert len(ledger._last) == 2

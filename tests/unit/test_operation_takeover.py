"""Operations outlive the replica following them: leases, takeover, hand-back, races.

Several trackers on one database stand for replicas. A replica "dies" by having its follower
task cancelled without the hand-back a clean shutdown does, and never renewing again. Runs on
a SQLite file, and on PostgreSQL too when PANELQL_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from panelql.application.operations import (
    NOT_RESUMABLE,
    OperationTracker,
    ProbeResult,
    Resumable,
    Step,
)
from panelql.db.engine import create_engine, session_factory
from panelql.db.migrate import upgrade
from panelql.db.repositories import Operations
from panelql.domain.state import OperationRow
from panelql.events.bus import InProcessBus
from panelql.events.model import StatusEvent, Topic

LEASE = 1.0


@pytest.fixture(params=["sqlite", "postgresql"])
async def operations(request: pytest.FixtureRequest, tmp_path: Path
                     ) -> AsyncIterator[Operations]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}"
        base = None
    else:
        base = os.environ.get("PANELQL_TEST_POSTGRES_URL")
        if not base:
            pytest.skip("PANELQL_TEST_POSTGRES_URL is not set; PostgreSQL takeover skipped")
        name = f"panelql_takeover_{uuid.uuid4().hex[:10]}"
        admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
        url = make_url(base).set(database=name).render_as_string(hide_password=False)
    await upgrade(url)
    engine = create_engine(url)
    try:
        yield Operations(session_factory(engine))
    finally:
        await engine.dispose()
        if base is not None:
            admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" '
                                        "WITH (FORCE)"))
            await admin.dispose()


class Upstream:
    """A job that finishes when the test says so; probes of every replica ask it."""

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.asked = 0

    async def probe(self) -> ProbeResult:
        self.asked += 1
        return ProbeResult(done=self.done.is_set())

    def resumable(self) -> Resumable:
        return Resumable(self.probe, {"kind": "test-job"})


def replica(operations: Operations, bus: InProcessBus, upstream: Upstream,
            name: str, lease: float = LEASE) -> OperationTracker:
    def resume(op: OperationRow, spec: dict[str, Any]) -> Resumable | None:
        return upstream.resumable() if spec == {"kind": "test-job"} else None
    return OperationTracker(operations, bus, poll_seconds=0.02, lease_seconds=lease,
                            heartbeat_seconds=0.1, owner=name, resumer=resume)


def waiting_step(upstream: Upstream, name: str = "wait") -> Step:
    async def run() -> Resumable:
        return upstream.resumable()
    return Step(name, run)


async def until_followed(operations: Operations, op_id: str) -> OperationRow:
    """Until the step's probe spec is stored (the follower is waiting on the upstream)."""
    async with asyncio.timeout(10):
        while True:
            row = await operations.get(op_id)
            assert row is not None
            if row.follow:
                return row
            await asyncio.sleep(0.01)


def kill(op_id: str) -> None:
    """The process died: its follower stops, nothing is written, nothing is handed back."""
    for task in asyncio.all_tasks():
        if task.get_name() == f"operation:{op_id}":
            task.cancel()


async def final(bus: InProcessBus, op_id: str, ready: asyncio.Event) -> StatusEvent:
    events = bus.subscribe({Topic.OPERATION})
    ready.set()
    async for event in events:
        if event.resource_id == op_id and event.status in ("SUCCEEDED", "FAILED"):
            await events.aclose()  # type: ignore[attr-defined]
            return event
    raise AssertionError("the bus closed")


async def watch_final(bus: InProcessBus, op_id: str) -> asyncio.Task[StatusEvent]:
    ready = asyncio.Event()
    task = asyncio.create_task(final(bus, op_id, ready))
    await ready.wait()
    await asyncio.sleep(0)  # the subscription is registered at its first step
    return task


async def test_a_dead_replicas_operation_is_followed_to_its_end_by_another(
        operations: Operations) -> None:
    bus, upstream = InProcessBus(), Upstream()
    # The dead replica's lease is long enough that "still running" below holds on a loaded
    # machine (at 1 s a CI run saw it run out first); the takeover then waits it out.
    first, second = (replica(operations, bus, upstream, "first", lease=4 * LEASE),
                     replica(operations, bus, upstream, "second"))
    op = await first.start("stopServer", "cat", "s1", [waiting_step(upstream)])
    await until_followed(operations, op.id)
    ended = await watch_final(bus, op.id)
    await first.heartbeat()  # its last renewal before it dies
    kill(op.id)
    assert await second.heartbeat() == []  # the lease is still running: nothing to take
    second.start_heartbeat()
    try:
        async with asyncio.timeout(10):
            while (row := await operations.get(op.id)) is None or row.owner != "second":
                await asyncio.sleep(0.02)
        upstream.done.set()
        event = await asyncio.wait_for(ended, 10)
        assert event.status == "SUCCEEDED"
        row = await operations.get(op.id)
        assert row is not None and row.status == "SUCCEEDED" and row.owner == "second"
    finally:
        await second.aclose()
        await first.aclose()


async def test_a_step_that_cannot_be_resumed_fails_with_the_reason(
        operations: Operations) -> None:
    bus, upstream = InProcessBus(), Upstream()
    first, second = (replica(operations, bus, upstream, "first"),
                     replica(operations, bus, upstream, "second"))
    # Two steps: the dead replica was waiting in the first; the second (a fresh upstream
    # call) exists only in its memory, so nobody else can run it.
    op = await first.start("updateServerResources", "cat", "s1",
                           [waiting_step(upstream, "stop"), waiting_step(upstream, "resize")])
    await until_followed(operations, op.id)
    ended = await watch_final(bus, op.id)
    kill(op.id)
    await asyncio.sleep(LEASE + 0.1)
    assert await second.heartbeat() == [op.id]
    event = await asyncio.wait_for(ended, 10)
    row = await operations.get(op.id)
    assert event.status == "FAILED"
    assert row is not None and row.status == "FAILED" and row.error_code == "INTERRUPTED"
    assert row.error_message == f"step stop: {NOT_RESUMABLE}"
    await second.aclose()
    await first.aclose()


async def test_a_live_replica_keeps_its_operations(operations: Operations) -> None:
    bus, upstream = InProcessBus(), Upstream()
    first, second = (replica(operations, bus, upstream, "first"),
                     replica(operations, bus, upstream, "second"))
    first.start_heartbeat()
    op = await first.start("startServer", "cat", "s1", [waiting_step(upstream)])
    await until_followed(operations, op.id)
    for _ in range(5):  # well past the lease: the heartbeat keeps renewing it
        await asyncio.sleep(LEASE / 2)
        assert await second.heartbeat() == []
    upstream.done.set()
    async with asyncio.timeout(10):
        while (row := await operations.get(op.id)) is None or row.status != "SUCCEEDED":
            await asyncio.sleep(0.02)
    assert row.owner == "first"
    await first.aclose()
    await second.aclose()


async def test_two_replicas_claiming_one_orphan_adopt_it_once(operations: Operations) -> None:
    bus, upstream = InProcessBus(), Upstream()
    dead = replica(operations, bus, upstream, "dead")
    survivors = [replica(operations, bus, upstream, f"survivor{i}") for i in range(3)]
    ops = [await dead.start("startServer", "cat", f"s{i}", [waiting_step(upstream)])
           for i in range(4)]
    for op in ops:
        await until_followed(operations, op.id)
        kill(op.id)
    await asyncio.sleep(LEASE + 0.1)
    adopted = await asyncio.gather(*(s.heartbeat() for s in survivors))
    taken = [op_id for ids in adopted for op_id in ids]
    assert sorted(taken) == sorted(op.id for op in ops)  # each exactly once
    upstream.done.set()
    for survivor in survivors:
        await survivor.aclose()
    await dead.aclose()


async def test_a_clean_shutdown_hands_operations_over_at_once(operations: Operations) -> None:
    bus, upstream = InProcessBus(), Upstream()
    first, second = (replica(operations, bus, upstream, "first"),
                     replica(operations, bus, upstream, "second"))
    first.lease_seconds = 3600  # were it not handed back, nobody could take it for an hour
    op = await first.start("startServer", "cat", "s1", [waiting_step(upstream)])
    await until_followed(operations, op.id)
    await first.aclose()
    row = await operations.get(op.id)
    assert row is not None and row.status == "RUNNING"  # not failed: only handed back
    assert await second.heartbeat() == [op.id]
    upstream.done.set()
    async with asyncio.timeout(10):
        while (row := await operations.get(op.id)) is None or row.status != "SUCCEEDED":
            await asyncio.sleep(0.02)
    await second.aclose()


async def test_a_replica_that_lost_its_lease_stops_following(operations: Operations) -> None:
    """A replica that was only slow (its lease ran out, another took over) must not follow
    the operation twice once it notices."""
    bus, upstream = InProcessBus(), Upstream()
    slow, second = (replica(operations, bus, upstream, "slow"),
                    replica(operations, bus, upstream, "second"))
    op = await slow.start("startServer", "cat", "s1", [waiting_step(upstream)])
    await until_followed(operations, op.id)
    await asyncio.sleep(LEASE + 0.1)
    assert await second.heartbeat() == [op.id]
    asked = upstream.asked
    await slow.heartbeat()  # notices the operation is no longer its own
    await asyncio.sleep(0.2)
    ours = [t for t in asyncio.all_tasks() if t.get_name() == f"operation:{op.id}"]
    assert len(ours) == 1  # only the new owner's follower is left
    assert upstream.asked > asked  # and that one keeps asking
    upstream.done.set()
    await second.aclose()
    await slow.aclose()


async def test_operations_from_before_leases_are_failed_with_a_reason(
        operations: Operations) -> None:
    """Rows written by a version without leases (no owner, no spec) are closed, not left."""
    bus, upstream = InProcessBus(), Upstream()
    legacy = await operations.create("startServer", "cat", "s1", status="RUNNING")
    await operations.update(legacy.id, step="wait")
    tracker = replica(operations, bus, upstream, "new")
    assert await tracker.heartbeat() == [legacy.id]
    async with asyncio.timeout(10):
        while (row := await operations.get(legacy.id)) is None or row.status != "FAILED":
            await asyncio.sleep(0.02)
    assert row.error_code == "INTERRUPTED" and row.error_message == f"step wait: {NOT_RESUMABLE}"
    await tracker.aclose()

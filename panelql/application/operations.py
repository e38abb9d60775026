"""Operations: long upstream work the gateway follows to completion in the background.

A lifecycle action that finishes later returns an Operation at once. The tracker then runs the
action's steps, each of which may hand back a :data:`Probe` (a fresh upstream read that says
whether the step is done), polls it with backoff until done, failed or timed out, stores every
change in the ``operations`` table and publishes it on the bus (``operationUpdated``).
Operations outlive the replica that started them: see :class:`OperationTracker`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from panelql.db.repositories import UNFINISHED, Operations
from panelql.domain.state import OperationRow
from panelql.events import background
from panelql.events.bus import EventBus
from panelql.events.model import Source, StatusEvent, Topic
from panelql.providers.errors import ProviderError

log = logging.getLogger("panelql.operations")


@dataclass
class ProbeResult:
    done: bool
    ok: bool = True
    progress: float | None = None
    error: str | None = None


Probe = Callable[[], Awaitable[ProbeResult]]


@dataclass
class Step:
    name: str
    run: Callable[[], Awaitable[Probe | None]]  # None: finished when run() returns


@dataclass(frozen=True)
class Resumable:
    """A probe plus a JSON description of what it waits for, from which another replica can
    rebuild it (``probes.probe_from_spec``) if this one dies while following the operation."""

    probe: Probe
    spec: dict[str, Any]

    async def __call__(self) -> ProbeResult:
        return await self.probe()


# Rebuilds the probe of an operation's last step from its spec; None when it cannot.
Resumer = Callable[[OperationRow, dict[str, Any]], Probe | None]
NOT_RESUMABLE = ("the gateway replica following this stopped before it finished, and this step "
                 "cannot be followed from another replica; check the target and retry")


@dataclass
class OperationTracker:
    """Runs and follows operations; with ``heartbeat`` running, also those of dead replicas.

    Every operation belongs to the replica following it (``owner``) and carries a lease that
    the owner's heartbeat extends, one UPDATE for all its operations, every
    ``heartbeat_seconds``. When a replica dies its leases run out after ``lease_seconds``, and
    the next heartbeat of any other replica claims each orphan (an UPDATE that only one
    claimant can win) and follows it from the stored probe spec, or fails it with a reason
    when the step it died in cannot be resumed (it was mid-call, or more steps follow).
    """

    operations: Operations
    bus: EventBus
    poll_seconds: float = 1.0
    timeout_seconds: float = 900.0
    lease_seconds: float = 15.0
    heartbeat_seconds: float = 5.0
    owner: str = field(default_factory=lambda: secrets.token_hex(8))
    resumer: Resumer | None = None
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _heartbeat: asyncio.Task[None] | None = None

    @property
    def _lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)

    async def start(self, action: str, connection: str, target_id: str,
                    steps: Sequence[Step]) -> OperationRow:
        op = await self.operations.create(action, connection, target_id, status="PENDING",
                                          owner=self.owner, lease=self._lease)
        self._launch(op.id, self._run(op, list(steps)))
        return op

    def _launch(self, op_id: str, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work, name=f"operation:{op_id}")
        self._tasks[op_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(op_id, None))

    async def _run(self, op: OperationRow, steps: list[Step]) -> None:
        async def work() -> None:
            for index, step in enumerate(steps):
                await self._set(op, status="RUNNING", step=step.name,
                                progress=index / max(len(steps), 1))
                probe = await step.run()
                if probe is None:
                    continue
                if isinstance(probe, Resumable):  # so another replica can take it over
                    await self.operations.update(op.id, follow={
                        "step": index, "steps": len(steps), "probe": probe.spec})
                await self._wait(op, probe, index, len(steps),
                                 time.monotonic() + self.timeout_seconds)
        await self._settle(op, lambda: op.step or (steps[0].name if steps else None), work())

    async def _settle(self, op: OperationRow, current: Callable[[], str | None],
                      work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` and record how it ended; a cancelled follower records nothing (the
        operation is handed back, see :meth:`aclose`, or another replica took it)."""
        try:
            await work
            await self._set(op, status="SUCCEEDED", progress=1.0)
        except ProviderError as exc:
            await self._fail(op, current(), exc.code, exc.message)
        except _StepFailed as exc:
            await self._fail(op, current(), exc.code, str(exc))
        except Exception as exc:  # a bug must not leave the operation RUNNING forever
            log.exception("operation %s crashed", op.id)
            await self._fail(op, current(), "INTERNAL", f"internal error ({type(exc).__name__})")

    async def _wait(self, op: OperationRow, probe: Probe, index: int, count: int,
                    deadline: float) -> None:
        delay = self.poll_seconds
        while True:
            result = await probe()
            if result.done:
                if not result.ok:
                    raise _StepFailed("PROVIDER_ERROR", result.error or "the upstream job failed")
                return
            if result.progress is not None:
                await self._set(op, progress=(index + result.progress) / count)
            if time.monotonic() > deadline:
                raise _StepFailed("TIMEOUT", "the upstream did not finish in time")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, self.poll_seconds * 5)

    async def _fail(self, op: OperationRow, step: str | None, code: str, message: str) -> None:
        await self._set(op, status="FAILED", error_code=code,
                        error_message=f"step {step}: {message}" if step else message)

    async def _set(self, op: OperationRow, **values: object) -> None:
        before = op.status
        row = await self.operations.update(op.id, **values)
        op.status, op.step = row.status, row.step
        await self.bus.publish(StatusEvent(
            topic=Topic.OPERATION, connection=row.connection, resource_id=row.id,
            status=row.status, previous=before, source=Source.MUTATION,
            data={"action": row.action, "step": row.step, "progress": row.progress,
                  "target": row.target_id, "error": row.error_message,
                  # When the operation began: the watcher tells the statuses it announced
                  # from those a later action on the same server did (events/watcher.py).
                  "created_at": _aware(row.created_at).isoformat()},
        ))

    # -- the heartbeat: keep our leases, take over the dead's operations --------------------
    def start_heartbeat(self) -> None:
        if self._heartbeat is None:
            self._heartbeat = asyncio.get_running_loop().create_task(
                self._beat_forever(), name="operations-heartbeat")

    async def _beat_forever(self) -> None:
        while True:
            try:
                await self.heartbeat()
            except Exception:  # the database may be away for a moment; try again next beat
                if background.being_cancelled():
                    raise asyncio.CancelledError from None
                log.exception("operation heartbeat failed")
            await asyncio.sleep(self.heartbeat_seconds)

    async def heartbeat(self) -> list[str]:
        """Renew this replica's leases and adopt orphaned operations; returns adopted ids."""
        # Nothing followed here, nothing to renew: an idle gateway writes nothing.
        mine = await self.operations.renew(self.owner, self._lease) if self._tasks else set()
        for op_id in set(self._tasks) - mine:
            row = await self.operations.get(op_id)
            if row is not None and row.owner != self.owner and row.status in UNFINISHED:
                log.warning("operation %s was taken over by another replica; no longer "
                            "following it here", op_id)
                self._tasks[op_id].cancel()
        adopted = []
        for orphan in await self.operations.orphaned():
            claimed = await self.operations.claim(orphan.id, self.owner, self._lease)
            if claimed is None or orphan.id in self._tasks:
                continue  # another replica won it, or it is ours and only renewed late
            log.warning("taking over operation %s (%s) from replica %s, which stopped "
                        "renewing its lease", orphan.id, orphan.action, orphan.owner or "?")
            self._launch(claimed.id, self._resume(claimed))
            adopted.append(claimed.id)
        return adopted

    async def _resume(self, op: OperationRow) -> None:
        follow = op.follow or {}
        count = int(follow.get("steps", 0))
        index = int(follow.get("step", -1))
        probe = None
        if self.resumer is not None and count and index == count - 1 \
                and op.step is not None and isinstance(follow.get("probe"), dict):
            probe = self.resumer(op, follow["probe"])
        if probe is None:
            await self._fail(op, op.step, "INTERRUPTED", NOT_RESUMABLE)
            return
        # The timeout counts from when the operation began, not from the takeover.
        remaining = (op.created_at + timedelta(seconds=self.timeout_seconds)
                     - datetime.now(UTC)).total_seconds()
        await self._settle(op, lambda: op.step,
                           self._wait(op, probe, index, count, time.monotonic() + remaining))

    async def aclose(self) -> None:
        """Stop following; the operations are handed back (their lease ends now) so another
        replica, or this one's successor, takes them over at its next heartbeat."""
        if self._heartbeat is not None:
            await background.stop([self._heartbeat], "operation heartbeat")
            self._heartbeat = None
        following = dict(self._tasks)
        for task in following.values():
            task.cancel()
        if following:
            await asyncio.gather(*following.values(), return_exceptions=True)
            try:
                await self.operations.release(self.owner, set(following))
            except Exception:  # they expire on their own after lease_seconds
                log.exception("could not hand back %d operation(s)", len(following))


class _StepFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)  # SQLite keeps naive UTC

"""Operations: long upstream work the gateway follows to completion in the background.

A lifecycle action that finishes later returns an Operation at once. The tracker then runs the
action's steps, each of which may hand back a :data:`Probe` (a fresh upstream read that says
whether the step is done), polls it with backoff until done, failed or timed out, stores every
change in the ``operations`` table and publishes it on the bus (``operationUpdated``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from panelql.db.repositories import OperationRow, Operations
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


@dataclass
class OperationTracker:
    operations: Operations
    bus: EventBus
    poll_seconds: float = 1.0
    timeout_seconds: float = 900.0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self, action: str, connection: str, target_id: str,
                    steps: Sequence[Step]) -> OperationRow:
        op = await self.operations.create(action, connection, target_id, status="PENDING")
        task = asyncio.get_running_loop().create_task(self._run(op, list(steps)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return op

    async def _run(self, op: OperationRow, steps: list[Step]) -> None:
        current = steps[0].name if steps else None
        try:
            for index, step in enumerate(steps):
                current = step.name
                await self._set(op, status="RUNNING", step=step.name,
                                progress=index / max(len(steps), 1))
                probe = await step.run()
                if probe is not None:
                    await self._wait(op, probe, index, len(steps))
            await self._set(op, status="SUCCEEDED", progress=1.0)
        except ProviderError as exc:
            await self._fail(op, current, exc.code, exc.message)
        except _StepFailed as exc:
            await self._fail(op, current, exc.code, str(exc))
        except asyncio.CancelledError:
            await asyncio.shield(self._fail(op, current, "INTERRUPTED",
                                            "the gateway stopped while following this"))
            raise
        except Exception as exc:  # a bug must not leave the operation RUNNING forever
            log.exception("operation %s crashed", op.id)
            await self._fail(op, current, "INTERNAL", f"internal error ({type(exc).__name__})")

    async def _wait(self, op: OperationRow, probe: Probe, index: int, count: int) -> None:
        deadline = time.monotonic() + self.timeout_seconds
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
        op.status = row.status
        await self.bus.publish(StatusEvent(
            topic=Topic.OPERATION, connection=row.connection, resource_id=row.id,
            status=row.status, previous=before, source=Source.MUTATION,
            data={"action": row.action, "step": row.step, "progress": row.progress,
                  "target": row.target_id, "error": row.error_message},
        ))

    async def interrupt_stale(self) -> int:
        """Operations nobody follows any more (their process died): any follower gives up
        after ``timeout_seconds``, so one untouched for twice that is certainly orphaned.
        The age test keeps other live replicas' operations alone."""
        cutoff = datetime.now(UTC) - timedelta(seconds=2 * self.timeout_seconds)
        stale = [op for op in await self.operations.unfinished() if op.updated_at < cutoff]
        for op in stale:
            await self.operations.update(op.id, status="FAILED", error_code="INTERRUPTED",
                                         error_message="the gateway restarted while following this")
        return len(stale)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class _StepFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

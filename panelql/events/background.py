"""Stopping background loops (the Redis relay, the watcher's per-connection loops, and the
application's heartbeat, housekeeping and automation loops): cancel, then wait a bounded time.

The bound is there because a cancellation can be lost inside the redis client (it may surface
as a connection error, which a loop that survives connection errors then logs and outlives);
each loop also checks a closing flag of its own, so it ends at its next turn, and a CI run that
once waited ten minutes for such a loop now moves on after ``STOP_SECONDS``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Any

STOP_SECONDS = 5.0

log = logging.getLogger("panelql.events.background")


async def stop(tasks: Collection[asyncio.Task[Any]], what: str) -> None:
    """Cancel ``tasks`` and wait at most :data:`STOP_SECONDS` for them; log any left running."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    _, stuck = await asyncio.wait(tasks, timeout=STOP_SECONDS)
    if stuck:
        log.warning("%s did not stop in time", what,
                    extra={"tasks": sorted(t.get_name() for t in stuck)})


def being_cancelled() -> bool:
    """True while the current task is being cancelled.

    A loop that survives errors asks this in its ``except Exception``: a client library may
    hand our own cancellation back as an error of its own (the redis client does), and a loop
    that logged it and went on would outlive the ``stop`` that cancelled it.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0

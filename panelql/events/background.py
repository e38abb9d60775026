"""Stopping the event layer's background loops (the Redis relay, the watcher's per-connection
loops): cancel, then wait a bounded time.

The bound is there because a cancellation can be lost inside the redis client (it may surface
as a connection error, which a loop that survives connection errors then logs and outlives);
each loop also checks a closing flag of its own, so it ends at its next turn, and a CI run that
once waited ten minutes for such a loop now moves on after ``STOP_SECONDS``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection

STOP_SECONDS = 5.0

log = logging.getLogger("panelql.events.background")


async def stop(tasks: Collection[asyncio.Task[None]], what: str) -> None:
    """Cancel ``tasks`` and wait at most :data:`STOP_SECONDS` for them; log any left running."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    _, stuck = await asyncio.wait(tasks, timeout=STOP_SECONDS)
    if stuck:
        log.warning("%s did not stop in time", what,
                    extra={"tasks": sorted(t.get_name() for t in stuck)})

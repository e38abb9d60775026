"""Start a page's nested loads before graphql-core walks the page.

graphql-core completes a list synchronously: for 100 servers it resolves every selected field
of every server (~15 ms of CPU) before the event loop runs again, and only then do the
dataloaders dispatch the node, owner and backup batches. Bench traces showed that time sitting
between the list calls' answers and the next upstream round, on the critical path. When the
root resolver already knows the page and which relations the query selects, it can ask the
loaders first and let their batches reach the panels; graphql-core's later ``load`` calls for
the same keys get the same (cached) futures, so nothing is fetched twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from panelql.application import relations
from panelql.application.context import Context
from panelql.domain.records import ServerRecord

LIVE_FIELDS = frozenset({"status", "rawStatus", "usage"})
# Loop turns from load() to bytes on the wire: the loader's dispatch callback, its batch task,
# the per-connection tasks the batch gathers, the adapter's per-server tasks, httpx's awaits.
# Measured with the bench traces: 3 turns sent nothing before graphql-core took the CPU back, 8
# let every panel's first round leave. An idle turn costs microseconds.
TURNS_TO_SEND = 8


async def server_relations(ctx: Context, servers: Sequence[ServerRecord],
                           fields: set[str]) -> None:
    """Ask the loaders for what ``fields`` (names selected on each server) will need."""
    if not ctx.gateway.settings.dataloaders:
        return  # unbatched loads would go out one by one anyway; keep that baseline pure
    # Per-server reads first: on panels without bulk endpoints they are the longest chain of
    # upstream rounds, so their batches should reach the wire before the one-call lookups.
    wanted = []
    if fields & LIVE_FIELDS:
        wanted.append(relations.live_state)
    if "backups" in fields:
        wanted.append(relations.backups)
    if "node" in fields:
        wanted.append(relations.node)
    if "owner" in fields:
        wanted.append(relations.owner)
    pending = [p for load in wanted for s in servers if (p := load(ctx, s)) is not None]
    if not pending:
        return
    _observe(pending)
    for _ in range(TURNS_TO_SEND):
        await asyncio.sleep(0)


def _observe(futures: Iterable[asyncio.Future[Any]]) -> None:
    # The field resolvers await these futures and report failures; this only keeps asyncio
    # from warning about an exception "never retrieved" when a page is cut short by an error.
    for future in futures:
        future.add_done_callback(lambda f: f.cancelled() or f.exception())

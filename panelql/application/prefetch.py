"""Load a page's nested relations before graphql-core walks the page.

graphql-core completes a list synchronously: for 100 servers it resolves every selected field
of every server before the event loop runs again, and only then would the dataloaders dispatch
the node, owner and backup batches. When the root resolver already knows the page and which
relations the query selects, it asks the loaders first, so their batches reach the panels at
once, and waits for them: graphql-core's later ``load`` calls for the same keys get the same,
now settled, futures, and the field resolvers (queries.*_soon) hand their values over without a
coroutine or a Task per field. Nothing is fetched twice, and the walk that follows is plain
function calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

from panelql.application import relations
from panelql.application.context import Context
from panelql.domain.records import ServerRecord

LIVE_FIELDS = frozenset({"status", "rawStatus", "usage"})


async def server_relations(ctx: Context, servers: Sequence[ServerRecord],
                           fields: set[str]) -> None:
    """Ask the loaders for what ``fields`` (names selected on each server) will need, and wait
    until every batch has answered (or failed: the fields report failures, not this)."""
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
    pending = {p for load in wanted for s in _distinct(load, servers)
               if (p := load(ctx, s)) is not None and not p.done()}
    if not pending:
        return
    _observe(pending)
    await asyncio.wait(pending)


# Relations whose load depends only on this much of a server: one load per distinct key
# (1,000 servers on 4 nodes ask the node loader 4 times, not 1,000).
_KEY_OF: dict[Callable[..., Any], Callable[[ServerRecord], Hashable]] = {
    relations.node: lambda s: (s.connection, s.node_id),
    relations.owner: lambda s: (s.connection, s.owner_id),
}


def _distinct(load: Callable[..., Any], servers: Sequence[ServerRecord]
              ) -> Iterable[ServerRecord]:
    key_of = _KEY_OF.get(load)
    if key_of is None:
        return servers
    firsts: dict[Hashable, ServerRecord] = {}
    for server in servers:
        firsts.setdefault(key_of(server), server)
    return firsts.values()


def _observe(futures: Iterable[asyncio.Future[Any]]) -> None:
    # The field resolvers read these futures and report failures; this only keeps asyncio
    # from warning about an exception "never retrieved" when a page is cut short by an error.
    for future in futures:
        future.add_done_callback(lambda f: f.cancelled() or f.exception())

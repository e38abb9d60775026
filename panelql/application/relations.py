"""Which loader call each of a server's related fields makes: one definition, used by the field
resolvers (queries.py) and by the page prefetch (prefetch.py), so a prefetch can never ask for
something the fields would not, or miss what they will."""

from __future__ import annotations

import asyncio
from typing import Any

from panelql.application.context import Context
from panelql.domain.records import Ref, ResourceType, ServerRecord
from panelql.providers.contract import HostingProvider

Pending = asyncio.Future[Any]


def live_state(ctx: Context, server: ServerRecord) -> Pending | None:
    """Only where the list call lacked the status (panels without it in their lists)."""
    if server.status is not None:
        return None
    return ctx.loaders.live_state.load(Ref(server.connection, ResourceType.SERVER, server.id))


def owner(ctx: Context, server: ServerRecord) -> Pending | None:
    """Only for kinds with panel users (ProxmoxWP sites have none)."""
    provider = ctx.gateway.providers.get(server.connection)
    if server.owner_id is None or not isinstance(provider, HostingProvider):
        return None
    return ctx.loaders.account.load(Ref(server.connection, ResourceType.ACCOUNT,
                                        server.owner_id))


def node(ctx: Context, server: ServerRecord) -> Pending | None:
    if server.node_id is None:
        return None
    return ctx.loaders.node.load(Ref(server.connection, ResourceType.NODE, server.node_id))


def backups(ctx: Context, server: ServerRecord) -> Pending:
    return ctx.loaders.backups.load(Ref(server.connection, ResourceType.SERVER, server.id))

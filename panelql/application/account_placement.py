"""``createAccount`` without a connection: the least-loaded healthy server of a kind, with
failover — the job the NextPanel billing client does by hand (nextpanel-bill
``nextpanel_service.py`` @9aa18120 ``get_available_server``: active, below capacity, fewest
accounts: of servers at 45/100, 78/100 and 92/100 it picks the first).

Every connection of the kind that has nodes with account slots takes part. Nodes are ranked by
:func:`panelql.application.placement.rank` (online, a free slot, lowest share used). The create
moves on to the next candidate when the server turns out full (another writer took the last
slot: :class:`CapacityExhausted`) or never answered (connection refused, 5xx). A timeout stops
the attempt instead: the account may exist on that server, and trying elsewhere could create it
twice; the error is retryable with the same idempotency key.
"""

from __future__ import annotations

import asyncio
import dataclasses

from panelql.application.context import Context
from panelql.application.errors import BadUserInput, StateConflict
from panelql.application.placement import PlacementRequest, rank
from panelql.domain.records import AccountRecord, AccountSpec, NodeRecord
from panelql.providers.contract import Capability, HostingProvider, NodeSource
from panelql.providers.errors import CapacityExhausted, ProviderError, Unavailable
from panelql.providers.resilience import never_sent


def pool(ctx: Context, kind: str) -> list[HostingProvider]:
    return [p for p in ctx.gateway.of_family(HostingProvider)
            if p.kind == kind and p.supports(Capability.ACCOUNT_CREATE)
            and isinstance(p, NodeSource)]


async def _nodes(provider: HostingProvider) -> list[NodeRecord]:
    assert isinstance(provider, NodeSource)
    try:
        return await provider.list_nodes()
    except ProviderError:  # a connection that cannot even say how full it is takes no part
        return []


def _moves_on(error: ProviderError) -> bool:
    if isinstance(error, CapacityExhausted):
        return True
    if isinstance(error, Unavailable):
        # 5xx, or the request never reached the panel; not a timeout (see the module doc).
        return (error.upstream_status or 0) >= 500 or never_sent(error)
    return False


async def create_placed(ctx: Context, kind: str,
                        spec: AccountSpec) -> tuple[HostingProvider, AccountRecord, list[str]]:
    """The provider used, the account, and why earlier candidates were passed over."""
    providers = {p.name: p for p in pool(ctx, kind)}
    if not providers:
        raise BadUserInput(f"no {kind} connection can create accounts", field="kind")
    found = await asyncio.gather(*(_nodes(p) for p in providers.values()))
    ranked = rank([n for nodes in found for n in nodes if n.account_slots is not None],
                  PlacementRequest())
    skipped: list[str] = []
    for candidate in ranked:
        provider = providers[candidate.node.connection]
        try:
            account = await provider.create_account(
                dataclasses.replace(spec, node_id=candidate.node.id))
        except ProviderError as exc:
            if not _moves_on(exc):
                raise
            skipped.append(f"{provider.name}: {exc.message}")
            continue
        return provider, account, skipped
    raise StateConflict(f"no healthy {kind} server has room for another account",
                        **({"tried": skipped} if skipped else {}))

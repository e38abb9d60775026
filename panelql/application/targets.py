"""Resolve a mutation's target: decode the ID, find the adapter of the right family, check the
capability. Shared by every lifecycle action."""

from __future__ import annotations

from typing import TypeVar

from panelql.application import ids
from panelql.application.context import Context
from panelql.application.errors import NotFoundError, NotSupported
from panelql.application.queries import get
from panelql.domain.records import Ref, ResourceType
from panelql.providers.contract import Capability, Provider

P = TypeVar("P", bound=Provider)


def adapter_for(ctx: Context, connection: str, family: type[P], capability: Capability) -> P:
    provider = ctx.gateway.providers.get(connection)
    if not isinstance(provider, family):
        raise NotFoundError("not found")
    if not provider.supports(capability):
        raise NotSupported(f"{provider.kind} connections cannot do {capability.name}",
                           provider=provider.name)
    return provider


async def target(ctx: Context, global_id: str, kind: ResourceType, family: type[P],
                 capability: Capability) -> tuple[Ref, P]:
    """The target's Ref and adapter. A customer-bound viewer acting on something it does not
    own gets NOT_FOUND, exactly as for an id that does not exist."""
    ref = ids.decode(global_id, kind)
    provider = adapter_for(ctx, ref.connection, family, capability)
    if ctx.viewer.customer_ref is not None:
        await get(ctx, ref)
    return ref, provider

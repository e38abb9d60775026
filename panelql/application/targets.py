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
    provider = _of_family(ctx, connection, family)
    _require(provider, capability)
    return provider


def _of_family(ctx: Context, connection: str, family: type[P]) -> P:
    provider = ctx.gateway.providers.get(connection)
    if not isinstance(provider, family):
        raise NotFoundError("not found")
    return provider


def _require(provider: Provider, capability: Capability) -> None:
    if not provider.supports(capability):
        why = provider.unsupported_reasons.get(capability)
        raise NotSupported(f"{provider.kind} connections cannot do {capability.name}"
                           + (f": {why}" if why else ""), provider=provider.name)


async def target(ctx: Context, global_id: str, kind: ResourceType, family: type[P],
                 capability: Capability) -> tuple[Ref, P]:
    """The target's Ref and adapter. A customer-bound viewer acting on something it does not
    own gets NOT_FOUND, exactly as for an id that does not exist (checked before the
    capability, so not even NOT_SUPPORTED tells it anything about another's resource)."""
    ref = ids.decode(global_id, kind)
    provider = _of_family(ctx, ref.connection, family)
    if ctx.viewer.customer_ref is not None:
        await get(ctx, ref)
    _require(provider, capability)
    return ref, provider

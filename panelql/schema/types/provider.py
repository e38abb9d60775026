"""The Provider type: a configured connection, what it can do, and whether it is healthy."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from panelql.providers.contract import Capability, Family
from panelql.providers.contract import Provider as ProviderAdapter
from panelql.schema.enums import ProviderCapability, ProviderFamily, ProviderKind
from panelql.schema.types.common import Info

if TYPE_CHECKING:
    from panelql.schema.types.catalogue import Catalogue


@strawberry.type
class ProviderHealth:
    ok: bool
    latency_ms: float | None
    checked_at: datetime
    error: str | None
    code: str | None


@strawberry.type
class Provider:
    _adapter: strawberry.Private[ProviderAdapter]

    @strawberry.field(description="The connection name from the configuration.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(self._adapter.name)

    @strawberry.field
    def name(self) -> str:
        return self._adapter.name

    @strawberry.field
    def kind(self) -> ProviderKind:
        return ProviderKind(self._adapter.kind)

    @strawberry.field
    def region(self) -> str | None:
        return self._adapter.config.region

    @strawberry.field
    def families(self) -> list[ProviderFamily]:
        order = list(Family)
        return [ProviderFamily(f.value) for f in sorted(self._adapter.families, key=order.index)]

    @strawberry.field(description="Actions and reads this kind supports; others are NOT_SUPPORTED.")
    def capabilities(self) -> list[ProviderCapability]:  # type: ignore[valid-type]
        order = list(Capability)
        return sorted(self._adapter.capabilities, key=order.index)

    @strawberry.field(description="A live check, cached for a few seconds.")
    async def health(self, info: Info) -> ProviderHealth:
        h = await info.context.gateway.health(self._adapter)
        return ProviderHealth(ok=h.ok, latency_ms=h.latency_ms, checked_at=h.checked_at,
                              error=h.error, code=h.code)


    @strawberry.field(description="What this connection offers (as the root catalogue query); "
                                  "null for kinds without a catalogue.")
    async def catalogue(self, info: Info) -> Annotated[
            Catalogue, strawberry.lazy("panelql.schema.types.catalogue")] | None:
        from panelql.application import catalogues
        from panelql.schema.types.catalogue import Catalogue

        if not catalogues.supports(self._adapter):
            return None
        entries = await info.context.loaders.catalogue.load(self._adapter.name)
        return Catalogue(entries_=entries, provider=self._adapter.name)


def provider_by_name(info: Info, name: str) -> Provider:
    return Provider(_adapter=info.context.gateway.provider(name))

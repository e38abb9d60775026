"""The root ``catalogue`` query (kept apart from schema/query.py; Query inherits it)."""

from __future__ import annotations

import strawberry

from panelql.application.errors import NotFoundError
from panelql.schema.types.catalogue import Catalogue
from panelql.schema.types.common import Info


async def load(info: Info, name: str) -> Catalogue:
    if name not in info.context.gateway.providers:
        raise NotFoundError(f"no provider connection named {name!r}")
    entries = await info.context.loaders.catalogue.load(name)
    return Catalogue(entries_=entries, provider=name)


@strawberry.type
class CatalogueQuery:
    @strawberry.field(description="What a connection offers: plans/packages, images/templates/"
                                  "eggs/OS, locations, storages, with the mutation arguments "
                                  "each id fits. NOT_SUPPORTED for kinds without one.")
    async def catalogue(self, info: Info, provider: str) -> Catalogue:
        return await load(info, provider)



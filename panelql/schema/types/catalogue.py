"""The catalogue types: what a connection offers to choose from (plans, images, locations)."""

from __future__ import annotations

import strawberry

from panelql.domain.catalogue import CatalogueEntry as EntryRecord
from panelql.domain.catalogue import EntryKind
from panelql.schema.types.compute import Resources

CatalogueEntryKind = strawberry.enum(EntryKind, name="CatalogueEntryKind")


@strawberry.type(description="One choice a panel offers. Pass `id` to the arguments named in "
                             "`usableAs` (e.g. reinstallServer.image).")
class CatalogueEntry:
    r: strawberry.Private[EntryRecord]
    id: str
    name: str
    kind: CatalogueEntryKind  # type: ignore[valid-type]
    description: str | None
    group: str | None = strawberry.field(
        description="What the panel files it under: Pterodactyl nest, Catalyst nest, Proxmox "
                    "storage, OS family.")
    usable_as: list[str] = strawberry.field(
        description='"mutation.argument" pairs that take this id.')

    @strawberry.field(description="What a plan gives, or what an image asks for.")
    def resources(self) -> Resources | None:
        return Resources.of(self.r.resources) if self.r.resources else None

    def __init__(self, r: EntryRecord) -> None:
        self.r = r
        self.id = r.id
        self.name = r.name
        self.kind = r.kind
        self.description = r.description
        self.group = r.group
        self.usable_as = list(r.usable_as)


@strawberry.type(description="What one connection offers, read from its panel and cached "
                             "briefly (a minute by default).")
class Catalogue:
    entries_: strawberry.Private[list[EntryRecord]]
    provider: str = strawberry.field(description="The connection name.")

    def _of(self, kind: EntryKind | None) -> list[CatalogueEntry]:
        return [CatalogueEntry(e) for e in self.entries_ if kind is None or e.kind is kind]

    @strawberry.field
    def entries(self, kind: CatalogueEntryKind | None = None  # type: ignore[valid-type]
                ) -> list[CatalogueEntry]:
        return self._of(kind)

    @strawberry.field(description="Plans and packages (sizes).")
    def plans(self) -> list[CatalogueEntry]:
        return self._of(EntryKind.PLAN)

    @strawberry.field(description="Templates, eggs, OS images.")
    def images(self) -> list[CatalogueEntry]:
        return self._of(EntryKind.IMAGE)

    @strawberry.field
    def locations(self) -> list[CatalogueEntry]:
        return self._of(EntryKind.LOCATION)

    @strawberry.field
    def storages(self) -> list[CatalogueEntry]:
        return self._of(EntryKind.STORAGE)

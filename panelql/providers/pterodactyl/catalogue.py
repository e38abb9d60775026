"""Pterodactyl's catalogue: nests with their eggs, and locations, two list calls.

``GET /api/application/nests?include=eggs`` (routes/api-application.php @706db62c; NestTransformer
includes ``eggs`` rendered by EggTransformer: id, nest, name, description, docker_image(s),
startup) and ``GET /api/application/locations`` (LocationTransformer: id, short, long). An egg's
entry id is ``"<nest>/<egg>"``, the form createServer's template takes to read the egg's defaults
and reinstallServer's image takes to switch the server to that egg.
"""

from __future__ import annotations

import asyncio
from typing import Any

from panelql.domain.catalogue import CatalogueEntry, EntryKind
from panelql.providers.catalogue import CREATE_TEMPLATE, PLACEMENT_REGION, REINSTALL_IMAGE
from panelql.providers.pterodactyl.client import PterodactylApi


async def read(api: PterodactylApi) -> list[CatalogueEntry]:
    nests, locations = await asyncio.gather(api.app_list("/nests", include="eggs"),
                                            api.app_list("/locations"))
    entries: list[CatalogueEntry] = []
    for nest in nests:
        eggs = api.related(nest, "eggs")
        for egg in eggs if isinstance(eggs, list) else []:
            entries.append(_egg(nest, egg))
    entries.extend(_location(loc) for loc in locations if loc.get("id") is not None)
    return entries


def _egg(nest: dict[str, Any], egg: dict[str, Any]) -> CatalogueEntry:
    images = egg.get("docker_images")
    image = egg.get("docker_image") or (next(iter(images.values()), None)
                                        if isinstance(images, dict) and images else None)
    return CatalogueEntry(
        kind=EntryKind.IMAGE, id=f"{egg.get('nest', nest.get('id'))}/{egg.get('id')}",
        name=str(egg.get("name") or egg.get("id")),
        description=_text(egg.get("description")) or _text(image),
        group=_text(nest.get("name")), usable_as=(CREATE_TEMPLATE, REINSTALL_IMAGE))


def _location(raw: dict[str, Any]) -> CatalogueEntry:
    # The adapter's Node.region is the location's short code, so placement takes that.
    return CatalogueEntry(
        kind=EntryKind.LOCATION, id=str(raw["id"]), name=str(raw.get("short") or raw["id"]),
        description=_text(raw.get("long")), usable_as=(PLACEMENT_REGION,))


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value else None

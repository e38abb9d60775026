"""Catalyst's catalogue: server templates and locations, two list calls.

``GET /api/templates`` (routes/templates.ts @747660b5: every ServerTemplate with its nest) and
``GET /api/locations`` (routes/locations.ts @747660b5: every Location with its node count).
Template ids go to createServer's ``template``; Catalyst's reinstall (routes/servers/power.ts
``POST /:serverId/reinstall`` @747660b5) reinstalls the server's own template and no route
changes it afterwards, so reinstallServer(image:) is not offered.
"""

from __future__ import annotations

import asyncio
from typing import Any

from panelql.domain.catalogue import CatalogueEntry, EntryKind
from panelql.domain.records import Resources
from panelql.providers.catalogue import CREATE_LOCATION, CREATE_TEMPLATE, PLACEMENT_REGION
from panelql.providers.http import Upstream, expect


class CatalystCatalogue:
    api: Upstream
    name: str

    async def _listed(self, path: str, what: str) -> list[dict[str, Any]]:
        body = await self.api.json("GET", path)
        expect(isinstance(body, dict) and isinstance(body.get("data"), list), self.name, what)
        return [item for item in body["data"] if isinstance(item, dict) and item.get("id")]

    async def catalogue(self) -> list[CatalogueEntry]:
        templates, locations = await asyncio.gather(
            self._listed("/api/templates", "template list"),
            self._listed("/api/locations", "location list"))
        return [*map(_template, templates), *map(_location, locations)]


def _template(raw: dict[str, Any]) -> CatalogueEntry:
    nest: dict[str, Any] = raw["nest"] if isinstance(raw.get("nest"), dict) else {}
    memory, cpu = raw.get("allocatedMemoryMb"), raw.get("allocatedCpuCores")
    return CatalogueEntry(
        kind=EntryKind.IMAGE, id=str(raw["id"]), name=str(raw.get("name") or raw["id"]),
        description=_text(raw.get("description")) or _text(raw.get("image")),
        group=_text(nest.get("name")),
        resources=Resources(memory_mb=memory if isinstance(memory, int) else None,
                            cpu_cores=float(cpu) if isinstance(cpu, int | float) else None),
        usable_as=(CREATE_TEMPLATE,))


def _location(raw: dict[str, Any]) -> CatalogueEntry:
    count = raw.get("nodeCount")
    return CatalogueEntry(
        kind=EntryKind.LOCATION, id=str(raw["id"]), name=str(raw.get("name") or raw["id"]),
        description=_text(raw.get("description"))
        or (f"{count} nodes" if isinstance(count, int) else None),
        usable_as=(CREATE_LOCATION, PLACEMENT_REGION))


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value else None

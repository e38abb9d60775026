"""VirtFusion's catalogue: packages, and the OS templates each package can install.

``GET /packages`` (the unit servers are created and resized by) and
``GET /media/templates/fromServerPackageSpec/{packageId}`` per enabled package (templates grouped
``[{name, templates: [{id, name, version, variant}]}]``), concurrently and merged: one call plus
one per enabled package, cached by the gateway. Package ids go to updateServerResources(package:)
(``PUT /servers/{id}/package/{packageId}``); template ids to createServer's template and to
reinstallServer(image:) (``POST /servers/{id}/build {operatingSystemId}``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from panelql.domain.catalogue import CatalogueEntry, EntryKind
from panelql.providers.catalogue import CREATE_TEMPLATE, REINSTALL_IMAGE, RESIZE_PACKAGE
from panelql.providers.http import Upstream, expect
from panelql.providers.virtfusion.packages import Package

CREATE_PACKAGE = "createServer.options.packageId"


async def templates_for(api: Upstream, package_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(group name, template) pairs a package can install."""
    body = await api.json("GET", f"/media/templates/fromServerPackageSpec/{package_id}")
    expect(isinstance(body, dict) and isinstance(body.get("data"), list), api.provider,
           "template list")
    found: list[tuple[str, dict[str, Any]]] = []
    for group in body["data"]:
        if not isinstance(group, dict) or not isinstance(group.get("templates"), list):
            continue
        name = str(group.get("name") or "")
        found += [(name, t) for t in group["templates"] if isinstance(t, dict) and "id" in t]
    return found


async def read(api: Upstream, packages: list[Package]) -> list[CatalogueEntry]:
    enabled = [p for p in packages if p.enabled]
    per_package = await asyncio.gather(*(templates_for(api, p.id) for p in enabled))
    images: dict[str, CatalogueEntry] = {}
    for found in per_package:
        for group, raw in found:
            images.setdefault(str(raw["id"]), _image(group, raw))
    plans = [CatalogueEntry(
        kind=EntryKind.PLAN, id=p.id, name=p.name, resources=p.resources,
        usable_as=(RESIZE_PACKAGE, CREATE_PACKAGE)) for p in enabled]
    return [*plans, *images.values()]


def _image(group: str, raw: dict[str, Any]) -> CatalogueEntry:
    name = " ".join(str(raw[k]) for k in ("name", "version") if raw.get(k))
    variant = raw.get("variant")
    return CatalogueEntry(
        kind=EntryKind.IMAGE, id=str(raw["id"]), name=name or str(raw["id"]),
        description=str(variant) if variant else None, group=group or None,
        usable_as=(CREATE_TEMPLATE, REINSTALL_IMAGE))

"""Proxmox VE's catalogue: storages, and the container templates and ISO images on them.

Storages come from the ``GET /cluster/resources`` list the adapter already reads (type
``storage``: storage, node, content, shared). Templates and ISOs are listed per storage that
holds them, ``GET /nodes/{node}/storage/{storage}/content?content=vztmpl|iso`` (pve-storage
src/PVE/API2/Storage/Content.pm @0c56bad8: items {volid, format, size, ctime, content}); a
shared storage is read once, each node's local one once per node, a volid listed on several
nodes is one entry. Template volids go to createServer's template (``ostemplate`` for a
container, the CD-ROM of a VM); storage names to createServer's ``options.storage``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from panelql.domain.catalogue import CatalogueEntry, EntryKind
from panelql.providers.catalogue import CREATE_STORAGE, CREATE_TEMPLATE

IMAGE_CONTENT = {"vztmpl": "container template", "iso": "ISO image"}
DISK_CONTENT = {"images", "rootdir"}
ListContent = Callable[[str, str, str], Awaitable[list[dict[str, Any]]]]


def _content(entry: dict[str, Any]) -> set[str]:
    return {c for c in str(entry.get("content", "")).split(",") if c}


async def read(entries: list[dict[str, Any]], list_content: ListContent
               ) -> list[CatalogueEntry]:
    storages = [e for e in entries if e.get("type") == "storage" and e.get("storage")]
    catalogue: dict[tuple[EntryKind, str], CatalogueEntry] = {}
    where: dict[str, list[str]] = {}
    reads: list[tuple[str, str, str]] = []
    shared_seen: set[str] = set()
    for e in storages:
        name, node = str(e["storage"]), str(e.get("node"))
        where.setdefault(name, []).append(node)
        if e.get("status") != "available" or (e.get("shared") and name in shared_seen):
            continue
        if e.get("shared"):
            shared_seen.add(name)
        reads += [(node, name, kind) for kind in sorted(_content(e) & set(IMAGE_CONTENT))]
    for e in storages:
        name = str(e["storage"])
        if (EntryKind.STORAGE, name) in catalogue:
            continue
        content = _content(e)
        nodes = "all nodes" if e.get("shared") else ", ".join(sorted(set(where[name])))
        catalogue[(EntryKind.STORAGE, name)] = CatalogueEntry(
            kind=EntryKind.STORAGE, id=name, name=name, group=str(e.get("plugintype") or "")
            or None, description=f"{', '.join(sorted(content))} on {nodes}",
            usable_as=(CREATE_STORAGE,) if content & DISK_CONTENT else ())
    listings = await asyncio.gather(*(list_content(n, s, k) for n, s, k in reads))
    for (_, storage, kind), items in zip(reads, listings, strict=True):
        for item in items:
            volid = str(item["volid"])
            catalogue.setdefault((EntryKind.IMAGE, volid), CatalogueEntry(
                kind=EntryKind.IMAGE, id=volid, name=volid.rsplit("/", 1)[-1],
                description=IMAGE_CONTENT[kind], group=storage, usable_as=(CREATE_TEMPLATE,)))
    return sorted(catalogue.values(), key=lambda c: (c.kind.value, c.id))

"""What a connection offers to choose from: plans, images, locations, storages.

A billing system configures its products from these (a site backend's plans, a VirtFusion package,
a Pterodactyl egg); each entry says which mutation arguments take its ``id``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from panelql.domain.records import Resources


class EntryKind(enum.Enum):
    PLAN = "plan"  # a size or package: VirtFusion package, DirectAdmin package, ProxmoxWP plan
    IMAGE = "image"  # what gets installed: template, egg, OS template, container template
    LOCATION = "location"  # where: Catalyst/Pterodactyl location
    STORAGE = "storage"  # Proxmox storage a guest's disk or template lives on


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    kind: EntryKind
    id: str
    name: str
    description: str | None = None
    group: str | None = None  # Pterodactyl nest, Catalyst nest, Proxmox storage, OS family
    resources: Resources | None = None  # what a plan gives (or an image asks for)
    usable_as: tuple[str, ...] = ()  # "mutation.argument" pairs that take ``id``

"""The catalogue contract: adapters that can list what their panel offers implement
:class:`CatalogueSource` and declare ``Capability.CATALOGUE_READ``.

Each adapter reads its panel's own list routes (cited beside each mapping); the application
layer caches the answer briefly (application/catalogues.py), since panels change these lists
by hand and rarely.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from panelql.domain.catalogue import CatalogueEntry

# Mutation arguments a catalogue entry's id fits, named as in the schema.
CREATE_TEMPLATE = "createServer.template"
REINSTALL_IMAGE = "reinstallServer.image"
RESIZE_PACKAGE = "updateServerResources.package"
PLAN = "changeServerPlan.plan"
ACCOUNT_PACKAGE = "changeAccountPackage.package"
CREATE_ACCOUNT_PACKAGE = "createAccount.package"
PLACEMENT_REGION = "createServer.placement.region"
CREATE_LOCATION = "createServer.options.locationId"
CREATE_STORAGE = "createServer.options.storage"


@runtime_checkable
class CatalogueSource(Protocol):
    async def catalogue(self) -> list[CatalogueEntry]:
        """Everything the connection offers, in as few upstream calls as its API allows."""

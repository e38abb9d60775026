"""DirectAdmin's catalogue: the reseller's user packages.

``CMD_API_PACKAGES_USER`` lists the package names and, with ``package=<name>``, one package's
limits (DirectAdmin legacy API): one call plus one per package,
concurrently. Names go to changeAccountPackage and createAccount's package.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from panelql.domain.catalogue import CatalogueEntry, EntryKind
from panelql.domain.records import Resources
from panelql.providers.catalogue import ACCOUNT_PACKAGE, CREATE_ACCOUNT_PACKAGE
from panelql.providers.directadmin import wire

Call = Callable[..., Awaitable[Any]]


async def read(call: Call, provider: str) -> list[CatalogueEntry]:
    names = wire.names(await call("PACKAGES_USER"), provider, "package list")
    details = await asyncio.gather(*(call("PACKAGES_USER", params={"package": n})
                                     for n in names))
    return [_package(n, d if isinstance(d, dict) else {}) for n, d in zip(names, details,
                                                                          strict=True)]


def _package(name: str, raw: dict[str, Any]) -> CatalogueEntry:
    quota, bandwidth, domains = (raw.get(k) for k in ("quota", "bandwidth", "vdomains"))
    parts = [f"{quota} MB disk" if quota else None,
             f"{bandwidth} MB bandwidth" if bandwidth else None,
             f"{domains} domains" if domains else None]
    return CatalogueEntry(
        kind=EntryKind.PLAN, id=name, name=name,
        description=", ".join(p for p in parts if p) or None,
        resources=Resources(disk_mb=int(str(quota)) if str(quota).isdigit() else None),
        usable_as=(ACCOUNT_PACKAGE, CREATE_ACCOUNT_PACKAGE))

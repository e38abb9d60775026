"""VirtFusion packages: the unit servers are created and resized by.

``PUT /servers/{id}/package/{packageId}`` is the only whole-server resize the API offers, so a
request for resources has to become a package. :func:`pick_package` chooses the smallest enabled
package that covers every resource asked for (memory first, then CPU, then disk).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from panelql.domain.records import Resources
from panelql.providers.http import expect


@dataclass(frozen=True, slots=True)
class Package:
    id: str
    name: str
    enabled: bool
    resources: Resources

    @classmethod
    def from_json(cls, raw: Any, provider: str) -> Package:
        expect(isinstance(raw, dict) and "id" in raw, provider, "package object")
        storage_gb = _int(raw.get("primaryStorage"))  # packages size disks in GB
        return cls(
            id=str(raw["id"]), name=str(raw.get("name") or raw["id"]),
            enabled=raw.get("enabled") is not False,
            resources=Resources(
                memory_mb=_int(raw.get("memory")),
                cpu_cores=_int(raw.get("cpuCores")),
                disk_mb=storage_gb * 1024 if storage_gb is not None else None,
            ),
        )

    def covers(self, wanted: Resources) -> bool:
        have = self.resources
        pairs = ((wanted.memory_mb, have.memory_mb), (wanted.cpu_cores, have.cpu_cores),
                 (wanted.disk_mb, have.disk_mb))
        return all(want is None or (got is not None and got >= want) for want, got in pairs)

    def _size(self) -> tuple[float, float, float]:
        r = self.resources
        return (r.memory_mb or 0, r.cpu_cores or 0, r.disk_mb or 0)


def pick_package(packages: list[Package], wanted: Resources) -> Package | None:
    fitting = [p for p in packages if p.enabled and p.covers(wanted)]
    return min(fitting, key=Package._size, default=None)


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)

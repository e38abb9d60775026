"""What a site backend (ProxmoxWP) adds to a server: custom domains, proxy, plan quotas.

Seed 004 shows these to the customer as "used/allowed" (backups "2/3", domains with the
remaining quota), so quotas are kept as the two numbers and rendered the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Quota:
    used: int
    allowed: int

    @property
    def remaining(self) -> int:
        return max(0, self.allowed - self.used)

    @property
    def exhausted(self) -> bool:
        return self.used >= self.allowed

    def __str__(self) -> str:
        return f"{self.used}/{self.allowed}"


@dataclass(frozen=True, slots=True)
class SiteInfo:
    plan: str | None = None
    domains: list[str] = field(default_factory=list)
    domain_quota: Quota | None = None
    backup_quota: Quota | None = None
    proxy_enabled: bool | None = None

"""Site backend fields of a Server (ProxmoxWP): custom domains, proxy, plan quotas."""

from __future__ import annotations

import strawberry

from panelql.domain.sites import Quota as QuotaRecord
from panelql.domain.sites import SiteInfo


@strawberry.type(description="A plan quota as the customer sees it: used of allowed.")
class Quota:
    used: int
    allowed: int
    remaining: int
    display: str = strawberry.field(description='"used/allowed", e.g. "2/3".')

    @staticmethod
    def of(q: QuotaRecord | None) -> Quota | None:
        if q is None:
            return None
        return Quota(used=q.used, allowed=q.allowed, remaining=q.remaining, display=str(q))


@strawberry.type(description="What a site backend adds to a server (its customer area).")
class Site:
    plan: str | None = strawberry.field(description="The plan name; changeServerPlan takes "
                                                    "another one from the catalogue.")
    domains: list[str] = strawberry.field(description="Custom domains, proxied to the site.")
    domain_quota: Quota | None
    backup_quota: Quota | None
    proxy_enabled: bool | None = strawberry.field(
        description="Whether the reverse proxy sends traffic to the site (setSiteProxy).")

    @staticmethod
    def of(s: SiteInfo | None) -> Site | None:
        if s is None:
            return None
        return Site(plan=s.plan, domains=list(s.domains), domain_quota=Quota.of(s.domain_quota),
                    backup_quota=Quota.of(s.backup_quota), proxy_enabled=s.proxy_enabled)

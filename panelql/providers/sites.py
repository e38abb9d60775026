"""What a site backend does besides the compute contract (its customer actions).

ProxmoxWP is the one kind today. The site's domains, proxy state and quotas are read with the
server itself (``ServerRecord.site``), so only the writes are here; an adapter declares them in
``capabilities`` (SITE_DOMAINS, SITE_PROXY, SERVER_PLAN) as for every other action.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class SiteHost(Protocol):
    async def add_domain(self, server_id: str, domain: str) -> None:
        """Verify the domain points at the proxy, create the proxy host, take one quota."""

    async def remove_domain(self, server_id: str, domain: str) -> None: ...

    async def toggle_proxy(self, server_id: str) -> bool:
        """Flip the site's reverse proxy; returns whether it is now enabled."""

    async def change_plan(self, server_id: str, plan: str) -> None:
        """Move the site to the named plan (resources and quotas follow it)."""

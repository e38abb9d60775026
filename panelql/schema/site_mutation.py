"""Mutations of a site backend's customer area: domains, proxy, plan.

Kept apart from schema/mutation.py; the root Mutation inherits them. Each runs through
``schema.actions.run_action`` (idempotency key, audit; the action is the field's name) like
every other mutation.
"""

from __future__ import annotations

import strawberry

from panelql.application import site_actions
from panelql.schema.actions import Key, run_action, values
from panelql.schema.payloads import ServerPayload
from panelql.schema.types.common import Info


@strawberry.type
class SiteMutation:
    @strawberry.mutation(description="Add a custom domain to a site. The backend checks that "
                                     "the domain points at its proxy (BAD_USER_INPUT on "
                                     "domain with its message when not); a full domain quota "
                                     "is CONFLICT with reason QUOTA_EXCEEDED.")
    async def add_site_domain(self, info: Info, server: strawberry.ID, domain: str,
                              idempotency_key: Key = None) -> ServerPayload:
        result = await run_action(info, server, idempotency_key,
                                  values(server=server, domain=domain),
                                  lambda: site_actions.add_domain(info.context, server, domain))
        return ServerPayload(result=result)

    @strawberry.mutation(description="Remove a custom domain (its quota is given back).")
    async def remove_site_domain(self, info: Info, server: strawberry.ID, domain: str,
                                 idempotency_key: Key = None) -> ServerPayload:
        result = await run_action(info, server, idempotency_key,
                                  values(server=server, domain=domain),
                                  lambda: site_actions.remove_domain(info.context, server, domain))
        return ServerPayload(result=result)

    @strawberry.mutation(description="Turn the site's reverse proxy on or off (off stops its "
                                     "traffic without touching the site).")
    async def set_site_proxy(self, info: Info, server: strawberry.ID, enabled: bool,
                             idempotency_key: Key = None) -> ServerPayload:
        result = await run_action(info, server, idempotency_key,
                                  values(server=server, enabled=enabled),
                                  lambda: site_actions.set_proxy(info.context, server, enabled))
        return ServerPayload(result=result)

    @strawberry.mutation(description="Move a site to another plan by name (ProxmoxWP: basic, "
                                     "standard, premium; see catalogue). Resources and quotas "
                                     "follow the plan.")
    async def change_server_plan(self, info: Info, id: strawberry.ID, plan: str,
                                 idempotency_key: Key = None) -> ServerPayload:
        result = await run_action(info, id, idempotency_key, values(id=id, plan=plan),
                                  lambda: site_actions.change_plan(info.context, id, plan))
        return ServerPayload(result=result)

"""``automationRunUpdated``: run changes from the bus, each read back from the database.

The bus event carries the run's customer, so a customer-bound key's subscription drops other
customers' runs before any read; what it yields is the run as stored, steps included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from panelql.application import auth
from panelql.application.automation.policies import store, visible_customer
from panelql.application.context import Context
from panelql.application.subscriptions import checked
from panelql.domain.automation import RunRow
from panelql.events.model import Topic

FIELD = "automationRunUpdated"


async def watch_runs(ctx: Context, run_id: str | None, customer_ref: str | None
                     ) -> AsyncIterator[RunRow]:
    auth.check(ctx.viewer, "Subscription", FIELD)
    events = ctx.gateway.bus.subscribe({Topic.AUTOMATION})
    async for event in checked(ctx, FIELD, events):
        wanted = visible_customer(ctx, customer_ref)
        if run_id is not None and event.resource_id != run_id:
            continue
        if wanted is not None and event.data.get("customer_ref") != wanted:
            continue
        row = await store(ctx.gateway).run(event.resource_id)
        if row is not None:
            yield row

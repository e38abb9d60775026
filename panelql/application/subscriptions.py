"""Subscription use-cases: read the bus, keep what the subscriber's filter asks for.

The bus already gives each subscriber a bounded queue; these generators only filter and must
leave no trace when the client disconnects (the bus's own ``finally`` drops the queue).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from panelql.application import auth, ids, queries
from panelql.application.context import Context
from panelql.application.errors import GatewayError
from panelql.domain.records import Ref, ResourceType
from panelql.events.model import StatusEvent, Topic
from panelql.providers.errors import ProviderError

log = logging.getLogger("panelql.subscriptions")

TOPIC_TYPES = {
    Topic.SERVER: ResourceType.SERVER,
    Topic.NODE: ResourceType.NODE,
    Topic.BACKUP: ResourceType.BACKUP,
    Topic.ACCOUNT: ResourceType.ACCOUNT,
    Topic.INVOICE: ResourceType.INVOICE,
}


@dataclass
class EventFilter:
    ids: list[str] | None = None  # global IDs
    providers: list[str] | None = None
    statuses: list[str] | None = None

    def refs(self, topic: Topic) -> set[Ref] | None:
        if self.ids is None:
            return None
        kind = TOPIC_TYPES.get(topic)
        return {ids.decode(i, kind) for i in self.ids}


def event_ref(event: StatusEvent) -> Ref | None:
    kind = TOPIC_TYPES.get(event.topic)
    return Ref(event.connection, kind, event.resource_id) if kind else None


FIELDS = {Topic.SERVER: "serverStatusChanged", Topic.NODE: "nodeStatusChanged",
          Topic.BACKUP: "backupStatusChanged", Topic.ACCOUNT: "accountStatusChanged",
          Topic.INVOICE: "invoiceStatusChanged", Topic.OPERATION: "operationUpdated"}


async def watch(ctx: Context, topic: Topic, f: EventFilter) -> AsyncIterator[StatusEvent]:
    auth.check(ctx.viewer, "Subscription", FIELDS[topic])
    wanted = f.refs(topic)  # decoded up front: a bad ID fails the subscription at once
    async for event in _masked(ctx.gateway.bus.subscribe({topic})):
        if f.providers is not None and event.connection not in f.providers:
            continue
        if f.statuses is not None and event.status not in f.statuses:
            continue
        if wanted is not None and event_ref(event) not in wanted:
            continue
        if not await visible(ctx, event):
            continue
        yield event


async def watch_operation(ctx: Context, operation_id: str | None) -> AsyncIterator[StatusEvent]:
    auth.check(ctx.viewer, "Subscription", FIELDS[Topic.OPERATION])
    async for event in _masked(ctx.gateway.bus.subscribe({Topic.OPERATION})):
        wanted = operation_id is None or event.resource_id == operation_id
        if wanted and await visible(ctx, event):
            yield event


async def _masked(events: AsyncIterator[StatusEvent]) -> AsyncIterator[StatusEvent]:
    """Subscriptions bypass the HTTP error shaping, so unexpected failures are masked here."""
    try:
        async for event in events:
            yield event
    except (GatewayError, ProviderError):
        raise
    except Exception as exc:
        error_id = uuid.uuid4().hex[:12]
        log.error("subscription failed %s", error_id, exc_info=exc)
        raise GatewayError(f"Internal error (id {error_id})", errorId=error_id) from None


async def visible(ctx: Context, event: StatusEvent) -> bool:
    """Customer-bound subscribers see events of their own resources only. The ownership check
    is a lookup through the connection's loaders, so it is paid once per resource, not per
    event."""
    if ctx.viewer.customer_ref is None:
        return True
    ref = event_ref(event)
    if ref is None:  # operations: visible when their target server is
        target = event.data.get("target")
        if not isinstance(target, str):
            return False
        ref = Ref(event.connection, ResourceType.SERVER, target)
    try:
        await queries.get(ctx, ref)
    except (GatewayError, ProviderError):
        return False
    return True
